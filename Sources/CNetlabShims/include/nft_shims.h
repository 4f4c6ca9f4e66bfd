#ifndef NETLAB_NFT_SHIMS_H
#define NETLAB_NFT_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

/// setns(fd, CLONE_NEWNET) on the calling thread; returns 0 or -errno.
int netlab_nft_setns_net(int fd);

/// unshare(CLONE_NEWNET) for the calling process (used by nft-bench to get its own netns).
int netlab_nft_unshare_net(void);

#endif
