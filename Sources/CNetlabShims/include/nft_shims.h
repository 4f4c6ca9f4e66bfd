#ifndef NETLAB_NFT_SHIMS_H
#define NETLAB_NFT_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

/// setns(fd, CLONE_NEWNET) on the calling thread; returns 0 or -errno.
int netlab_nft_setns_net(int fd);

#endif
