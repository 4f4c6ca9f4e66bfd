// C helpers for what Swift cannot import or cannot do safely: static inline functions and
// macros of libnl/libnftnl/kernel headers, and process creation (clone/unshare before exec).
// Every symbol is prefixed `netlab_`. One header per area, each owned by one Swift module:
//   netlink_shims.h  -> Netlink     nft_shims.h -> NFTables     process_shims.h -> Runtime
#ifndef CNETLABSHIMS_H
#define CNETLABSHIMS_H

#include "netlink_shims.h"
#include "nft_shims.h"
#include "process_shims.h"

#endif
