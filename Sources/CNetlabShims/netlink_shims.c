#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "netlink_shims.h"

int netlab_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }
int netlab_unshare_net(void) { return unshare(CLONE_NEWNET); }
pid_t netlab_gettid(void) { return (pid_t)syscall(SYS_gettid); }

#include <sys/vfs.h>
int netlab_fs_type(const char *path, long *type) {
    struct statfs st;
    if (statfs(path, &st) != 0) return -1;
    *type = (long)st.f_type;
    return 0;
}
