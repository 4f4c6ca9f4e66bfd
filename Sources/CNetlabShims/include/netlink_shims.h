#ifndef NETLAB_NETLINK_SHIMS_H
#define NETLAB_NETLINK_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

#endif
