#ifndef NETLAB_PROCESS_SHIMS_H
#define NETLAB_PROCESS_SHIMS_H

// Process creation for the netlab runtime: what must happen between clone and exec (the
// container's init, the `exec` helper) and in signal handlers runs here, in C, using only
// async-signal-safe calls (the Swift process is multi-threaded). Waiting for processes and
// decoding their statuses is Swift (SystemKit's Processes and WaitStatus).

#include <stdint.h>
#include <sys/types.h>

/// How the container's network namespace is chosen.
enum netlab_netns_mode {
    NETLAB_NETNS_NEW = 0,     ///< a fresh netns (modes none and NAME)
    NETLAB_NETNS_INHERIT = 1, ///< the caller's netns (mode host on the machine itself)
    NETLAB_NETNS_JOIN = 2,    ///< setns into `netns_fd` (container:NAME, or a simulated host)
};

struct netlab_spawn_opts {
    /// The command, NULL-terminated; NULL or empty: the init just waits for a signal (pause).
    char *const *argv;
    /// The command's environment, NULL-terminated (NULL: an empty environment).
    char *const *envp;
    const char *hostname;     ///< NULL: keep the inherited one
    const char *rootfs;       ///< NULL: no chroot
    int netns_mode;           ///< enum netlab_netns_mode
    int netns_fd;             ///< for NETLAB_NETNS_JOIN
    int stdin_fd, stdout_fd, stderr_fd; ///< -1: inherit
    /// Where the init writes the command's exit status ("%d\n") before it exits; -1: nowhere.
    /// Opened by the caller (so it works after chroot); made close-on-exec for the command.
    int exit_status_fd;
    int new_session;          ///< non-zero: setsid() in the init (detached containers)
};

struct netlab_spawn_result {
    pid_t pid;      ///< the init's pid in the caller's pid namespace
    int go_fd;      ///< write end of the sync pipe: netlab_spawn_release() lets the command run
    int failed_errno;   ///< set when the function returns -1
    char failed_step[32];
};

/// Clones the container's init in new mount, uts, ipc, pid (and net, unless told otherwise)
/// namespaces, prepares it (hostname, private mounts, chroot, /proc) and returns once it is
/// ready and blocked on the sync pipe. Returns 0, or -1 with failed_errno/failed_step set and
/// nothing left running.
int netlab_spawn_container(const struct netlab_spawn_opts *opts, struct netlab_spawn_result *result);

/// Lets a spawned container's init start its command (writes one byte and closes go_fd).
/// Closing go_fd without releasing makes the init exit without running anything.
int netlab_spawn_release(int go_fd);

/// Runs argv inside the namespaces (net, uts, ipc, pid, mnt and root) of process `pid`: forks
/// a helper that joins them and forks again so the pid namespace applies. Returns the helper's
/// pid (the caller waits for it: its exit status is the command's), or -1 with errno.
pid_t netlab_exec_in_container(pid_t pid, char *const *argv, char *const *envp,
                               int stdin_fd, int stdout_fd, int stderr_fd);

/// Installs handlers that forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to
/// `pid` (0: stop forwarding and restore default dispositions).
void netlab_forward_signals(pid_t pid);

#endif
