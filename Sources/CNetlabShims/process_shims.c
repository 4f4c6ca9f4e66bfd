// Process creation for the netlab runtime. Everything between clone/fork and exec uses only
// async-signal-safe calls: the calling Swift process has many threads, and the child is a copy
// of just one of them (other threads may have held malloc's locks when it was made). That is
// why errors are reported from a static table below (strerror is not async-signal-safe) and
// numbers are formatted by hand (no snprintf in a child).
#define _GNU_SOURCE
#include "process_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>   // snprintf, only in the parent before fork
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
#define N_FORWARDED (int)(sizeof(forwarded_signals) / sizeof(forwarded_signals[0]))

// ---- small async-signal-safe helpers ------------------------------------------------------

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; return; }
        p += n; len -= (size_t)n;
    }
}

static size_t str_len(const char *s) { size_t n = 0; while (s && s[n]) n++; return n; }

static void put_str(int fd, const char *s) { write_all(fd, s, str_len(s)); }

static size_t format_int(char *buf, int v) {
    char tmp[16]; size_t n = 0, i = 0;
    unsigned u = v < 0 ? (unsigned)(-v) : (unsigned)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u && n < sizeof tmp);
    if (v < 0) buf[i++] = '-';
    while (n) buf[i++] = tmp[--n];
    return i;
}

/// Closes every descriptor above 2 except those in keep[]: the runtime's own descriptors
/// (pipes of whoever started it, without close-on-exec) must not live on in a container.
static void close_other_fds(const int *keep, int nkeep) {
    for (int fd = 3; fd < 4096; fd++) {
        int kept = 0;
        for (int i = 0; i < nkeep; i++) if (keep[i] == fd) kept = 1;
        if (!kept) close(fd);
    }
}

/// The errors a container's setup or its command's exec can meet, by name and with glibc's
/// text, so that a child reports them without strerror (which may allocate or lock).
static const struct { int err; const char *name; const char *text; } errno_table[] = {
    { EPERM, "EPERM", "Operation not permitted" },
    { ENOENT, "ENOENT", "No such file or directory" },
    { ESRCH, "ESRCH", "No such process" },
    { EINTR, "EINTR", "Interrupted system call" },
    { EIO, "EIO", "Input/output error" },
    { ENXIO, "ENXIO", "No such device or address" },
    { E2BIG, "E2BIG", "Argument list too long" },
    { ENOEXEC, "ENOEXEC", "Exec format error" },
    { EBADF, "EBADF", "Bad file descriptor" },
    { ECHILD, "ECHILD", "No child processes" },
    { EAGAIN, "EAGAIN", "Resource temporarily unavailable" },
    { ENOMEM, "ENOMEM", "Cannot allocate memory" },
    { EACCES, "EACCES", "Permission denied" },
    { EFAULT, "EFAULT", "Bad address" },
    { EBUSY, "EBUSY", "Device or resource busy" },
    { EEXIST, "EEXIST", "File exists" },
    { ENODEV, "ENODEV", "No such device" },
    { ENOTDIR, "ENOTDIR", "Not a directory" },
    { EISDIR, "EISDIR", "Is a directory" },
    { EINVAL, "EINVAL", "Invalid argument" },
    { ENFILE, "ENFILE", "Too many open files in system" },
    { EMFILE, "EMFILE", "Too many open files" },
    { ETXTBSY, "ETXTBSY", "Text file busy" },
    { ENOSPC, "ENOSPC", "No space left on device" },
    { EROFS, "EROFS", "Read-only file system" },
    { ENAMETOOLONG, "ENAMETOOLONG", "File name too long" },
    { ELOOP, "ELOOP", "Too many levels of symbolic links" },
    { ELIBBAD, "ELIBBAD", "Accessing a corrupted shared library" },
};
#define N_ERRNO_TABLE (int)(sizeof(errno_table) / sizeof(errno_table[0]))

/// "ENOENT (No such file or directory)" (as SystemKit's Errno prints it), or "errno N".
static void put_errno(int fd, int err) {
    for (int i = 0; i < N_ERRNO_TABLE; i++) {
        if (errno_table[i].err != err) continue;
        put_str(fd, errno_table[i].name); put_str(fd, " (");
        put_str(fd, errno_table[i].text); put_str(fd, ")");
        return;
    }
    char buf[16];
    put_str(fd, "errno ");
    write_all(fd, buf, format_int(buf, err));
}

/// "netlab: error: WHAT OBJ: ENOENT (No such file or directory)\n" on stderr.
static void report(const char *what, const char *obj, int err) {
    put_str(2, "netlab: error: "); put_str(2, what);
    if (obj) { put_str(2, " "); put_str(2, obj); }
    put_str(2, ": "); put_errno(2, err); put_str(2, "\n");
}

/// The shell's exit code of a raw wait status (128 + signal when killed). The runtime decodes
/// wait statuses with SystemKit's WaitStatus; this copy serves the container's init, which is
/// C from clone to exit and must pass its command's code on as its own.
static int shell_exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 255;
}

/// Reaps a child of ours, retrying EINTR (an init that failed its setup).
static void reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

// ---- the init: forward signals, reap zombies, exit with the command's status ---------------

static volatile sig_atomic_t init_child_pid = 0;
static volatile sig_atomic_t init_stop_signal = 0;

static void init_forward_handler(int sig) {
    pid_t p = init_child_pid;
    if (p > 0) kill(p, sig);
    else init_stop_signal = sig;
}

static void noop_handler(int sig) { (void)sig; }

static void set_handlers(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_FORWARDED; i++) sigaction(forwarded_signals[i], &sa, NULL);
}

static void reset_signals_for_exec(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &sa, NULL);
    }
    sigset_t none; sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void write_exit_status(int fd, int code) {
    if (fd < 0) return;
    char buf[24]; size_t n = format_int(buf, code); buf[n++] = '\n';
    ftruncate(fd, 0);
    lseek(fd, 0, SEEK_SET);
    write_all(fd, buf, n);
    fsync(fd);
}

/// Forks argv (with signals blocked until its pid is known), forwards signals to it, reaps
/// every child, and returns the command's exit code once the command itself has exited.
/// `reap_all`: reap any child (we are pid 1 of a namespace) or only the command.
static int run_and_forward(char *const *argv, char *const *envp, int reap_all) {
    sigset_t block, old;
    sigemptyset(&block);
    for (int i = 0; i < N_FORWARDED; i++) sigaddset(&block, forwarded_signals[i]);
    sigprocmask(SIG_BLOCK, &block, &old);
    set_handlers(init_forward_handler);
    pid_t child = fork();
    if (child < 0) { report("fork", argv[0], errno); return 126; }
    if (child == 0) {
        reset_signals_for_exec();
        // glibc's execvpe builds each PATH candidate on the stack (no malloc since 2.24).
        execvpe(argv[0], argv, envp);
        int err = errno;
        report("exec", argv[0], err);
        _exit(err == ENOENT ? 127 : 126);
    }
    init_child_pid = child;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (init_stop_signal) kill(child, init_stop_signal);
    for (;;) {
        int status;
        pid_t r = waitpid(reap_all ? -1 : child, &status, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return 255;   // ECHILD: cannot happen while the command lives
        }
        if (r == child) return shell_exit_code(status);
    }
}

/// No command: wait for a terminating signal, reaping whatever gets reparented to us.
static int pause_forever(void) {
    sigset_t block, empty;
    sigemptyset(&block); sigemptyset(&empty);
    for (int i = 0; i < N_FORWARDED; i++) sigaddset(&block, forwarded_signals[i]);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, NULL);
    init_child_pid = 0;
    set_handlers(init_forward_handler);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = noop_handler;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        int s = init_stop_signal;
        if (s == SIGINT || s == SIGTERM || s == SIGHUP || s == SIGQUIT) return 0;
        init_stop_signal = 0;
        sigsuspend(&empty);
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
}

// ---- spawning a container -------------------------------------------------------------------

struct ready_msg { int err; char step[32]; };

struct child_args {
    const struct netlab_spawn_opts *opts;
    int ready_fd;   // write end
    int go_fd;      // read end
};

static int fail_ready(int fd, const char *step, int err) {
    struct ready_msg m; memset(&m, 0, sizeof m);
    m.err = err ? err : EINVAL;
    for (size_t i = 0; step[i] && i < sizeof m.step - 1; i++) m.step[i] = step[i];
    write_all(fd, &m, sizeof m);
    _exit(125);
}

static int container_init(void *arg) {
    struct child_args *a = arg;
    const struct netlab_spawn_opts *o = a->opts;
    int fd = a->ready_fd;

    if (o->netns_mode == NETLAB_NETNS_JOIN && setns(o->netns_fd, CLONE_NEWNET) < 0)
        fail_ready(fd, "setns net", errno);
    if (o->netns_fd >= 0) close(o->netns_fd);
    if (o->hostname && sethostname(o->hostname, str_len(o->hostname)) < 0)
        fail_ready(fd, "sethostname", errno);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail_ready(fd, "make / private", errno);
    if (o->rootfs) {
        if (chdir(o->rootfs) < 0) fail_ready(fd, "chdir rootfs", errno);
        if (chroot(".") < 0) fail_ready(fd, "chroot", errno);
    }
    if (chdir("/") < 0) fail_ready(fd, "chdir /", errno);
    mkdir("/proc", 0555);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail_ready(fd, "mount /proc", errno);
    // A sysfs of our own network namespace, so /sys/class/net shows the container's links.
    // Best effort: a rootfs without /sys simply has none.
    if (o->netns_mode != NETLAB_NETNS_INHERIT)
        mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);

    if (o->stdin_fd >= 0 && dup2(o->stdin_fd, 0) < 0) fail_ready(fd, "dup2 stdin", errno);
    if (o->stdout_fd >= 0 && dup2(o->stdout_fd, 1) < 0) fail_ready(fd, "dup2 stdout", errno);
    if (o->stderr_fd >= 0 && dup2(o->stderr_fd, 2) < 0) fail_ready(fd, "dup2 stderr", errno);
    if (o->new_session) setsid();
    // A foreground container dies with its runtime (even a SIGKILLed one), so the state a
    // crash leaves is a dead container that `netlab rm -f` / `netlab gc` can clean up.
    else prctl(PR_SET_PDEATHSIG, SIGKILL);
    int keep[] = { fd, a->go_fd, o->exit_status_fd };
    close_other_fds(keep, 3);
    if (o->exit_status_fd >= 0) fcntl(o->exit_status_fd, F_SETFD, FD_CLOEXEC);

    // From here on a signal for the container is remembered (a pid namespace's init drops
    // signals it has no handler for) and passed on to the command once it runs.
    set_handlers(init_forward_handler);

    struct ready_msg ok; memset(&ok, 0, sizeof ok);
    write_all(fd, &ok, sizeof ok);
    close(fd);

    char b;
    ssize_t n;
    do { n = read(a->go_fd, &b, 1); } while (n < 0 && errno == EINTR);
    close(a->go_fd);
    if (n != 1) _exit(125);   // the runtime gave up on us (or died) before releasing

    int code;
    if (o->argv == NULL || o->argv[0] == NULL) code = pause_forever();
    else code = run_and_forward(o->argv, o->envp, 1);
    write_exit_status(o->exit_status_fd, code);
    _exit(code);
}

int netlab_spawn_container(const struct netlab_spawn_opts *opts, struct netlab_spawn_result *res) {
    memset(res, 0, sizeof *res);
    res->pid = -1; res->go_fd = -1;
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) < 0) { res->failed_errno = errno; strcpy(res->failed_step, "pipe"); return -1; }
    if (pipe2(go, O_CLOEXEC) < 0) {
        res->failed_errno = errno; strcpy(res->failed_step, "pipe");
        close(ready[0]); close(ready[1]); return -1;
    }
    char *empty_env[] = { NULL };
    struct netlab_spawn_opts o = *opts;
    if (o.envp == NULL) o.envp = empty_env;
    struct child_args a = { &o, ready[1], go[0] };

    const size_t stack_size = 256 * 1024;
    char *stack = malloc(stack_size);
    if (!stack) { res->failed_errno = ENOMEM; strcpy(res->failed_step, "malloc"); goto fail_pipes; }
    int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | SIGCHLD;
    if (o.netns_mode == NETLAB_NETNS_NEW) flags |= CLONE_NEWNET;
    pid_t pid = clone(container_init, stack + stack_size, flags, &a);
    int clone_errno = errno;
    free(stack);   // the child runs on its own copy of this memory
    if (pid < 0) { res->failed_errno = clone_errno; strcpy(res->failed_step, "clone"); goto fail_pipes; }
    close(ready[1]); close(go[0]);

    struct ready_msg m; memset(&m, 0, sizeof m);
    size_t got = 0;
    while (got < sizeof m) {
        ssize_t n = read(ready[0], (char *)&m + got, sizeof m - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(ready[0]);
    if (got < sizeof m || m.err != 0) {
        res->failed_errno = got < sizeof m ? ECHILD : m.err;
        strncpy(res->failed_step, got < sizeof m ? "container init" : m.step, sizeof res->failed_step - 1);
        close(go[1]);
        reap(pid);
        return -1;
    }
    res->pid = pid;
    res->go_fd = go[1];
    return 0;

fail_pipes:
    close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
    return -1;
}

int netlab_spawn_release(int go_fd) {
    char b = 'g';
    ssize_t n;
    do { n = write(go_fd, &b, 1); } while (n < 0 && errno == EINTR);
    int err = errno;
    close(go_fd);
    if (n != 1) { errno = err; return -1; }
    return 0;
}

// ---- exec in a running container -------------------------------------------------------------

pid_t netlab_exec_in_container(pid_t pid, char *const *argv, char *const *envp,
                               int stdin_fd, int stdout_fd, int stderr_fd) {
    // Paths are built before fork: snprintf is not async-signal-safe.
    static const char *const names[] = { "ipc", "uts", "net", "pid", "mnt" };
    static const int types[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS };
    char paths[6][64];
    for (int i = 0; i < 5; i++) snprintf(paths[i], sizeof paths[i], "/proc/%d/ns/%s", (int)pid, names[i]);
    snprintf(paths[5], sizeof paths[5], "/proc/%d/root", (int)pid);
    char *empty_env[] = { NULL };
    if (envp == NULL) envp = empty_env;

    pid_t helper = fork();
    if (helper != 0) return helper;   // parent (or -1 with errno)

    if (stdin_fd >= 0) dup2(stdin_fd, 0);
    if (stdout_fd >= 0) dup2(stdout_fd, 1);
    if (stderr_fd >= 0) dup2(stderr_fd, 2);
    int fds[6];
    for (int i = 0; i < 6; i++) {
        fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC | (i == 5 ? O_DIRECTORY : 0));
        if (fds[i] < 0) { report("exec: open", paths[i], errno); _exit(126); }
    }
    for (int i = 0; i < 5; i++) {
        if (setns(fds[i], types[i]) < 0) { report("exec: setns", paths[i], errno); _exit(126); }
    }
    if (fchdir(fds[5]) < 0 || chroot(".") < 0 || chdir("/") < 0) {
        report("exec: enter root of", paths[5], errno); _exit(126);
    }
    close_other_fds(NULL, 0);
    _exit(run_and_forward(argv, envp, 0));
}

// ---- forwarding signals from the runtime to its child ------------------------------------------

static volatile sig_atomic_t forward_target = 0;

static void forward_handler(int sig) {
    pid_t p = forward_target;
    if (p > 0) kill(p, sig);
}

void netlab_forward_signals(pid_t pid) {
    forward_target = pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pid > 0 ? forward_handler : SIG_DFL;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_FORWARDED; i++) sigaction(forwarded_signals[i], &sa, NULL);
}
