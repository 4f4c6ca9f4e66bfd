#ifndef NETLAB_NETLINK_SHIMS_H
#define NETLAB_NETLINK_SHIMS_H

#include <stdint.h>
#include <sys/types.h>

// setns/unshare/gettid are declared by glibc only under _GNU_SOURCE, which Swift's import
// of <sched.h> does not define; these wrappers give the Netlink module access to them.

/// setns(fd, CLONE_NEWNET); returns 0 or -1 with errno set.
int netlab_setns_net(int fd);
/// unshare(CLONE_NEWNET); returns 0 or -1 with errno set.
int netlab_unshare_net(void);
/// The calling thread's kernel thread id.
pid_t netlab_gettid(void);
/// The file system magic of `path` (statfs f_type) in *type; returns 0 or -1 with errno set.
int netlab_fs_type(const char *path, long *type);

#endif
