#define _GNU_SOURCE
#include <sched.h>
#include <spawn.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include "system_shims.h"

_Static_assert(NETLAB_CLONE_NEWNET == CLONE_NEWNET, "CLONE_NEWNET");
_Static_assert(NETLAB_CLONE_NEWNS == CLONE_NEWNS, "CLONE_NEWNS");
_Static_assert(NETLAB_CLONE_NEWUTS == CLONE_NEWUTS, "CLONE_NEWUTS");
_Static_assert(NETLAB_CLONE_NEWIPC == CLONE_NEWIPC, "CLONE_NEWIPC");
_Static_assert(NETLAB_CLONE_NEWPID == CLONE_NEWPID, "CLONE_NEWPID");
_Static_assert(NETLAB_POSIX_SPAWN_SETSID == POSIX_SPAWN_SETSID, "POSIX_SPAWN_SETSID");

int netlab_setns(int fd, int nstype) { return setns(fd, nstype); }
int netlab_unshare(int flags) { return unshare(flags); }
pid_t netlab_gettid(void) { return (pid_t)syscall(SYS_gettid); }
int netlab_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int netlab_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int netlab_fs_type(const char *path, long *type) {
    struct statfs st;
    if (statfs(path, &st) != 0) return -1;
    *type = (long)st.f_type;
    return 0;
}

int netlab_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
