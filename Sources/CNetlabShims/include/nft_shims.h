#ifndef NETLAB_NFT_SHIMS_H
#define NETLAB_NFT_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

#endif
