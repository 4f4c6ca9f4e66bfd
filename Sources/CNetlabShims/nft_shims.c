#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include "nft_shims.h"

int netlab_nft_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

int netlab_nft_unshare_net(void) {
    return unshare(CLONE_NEWNET) == 0 ? 0 : -errno;
}
