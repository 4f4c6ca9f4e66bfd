#ifndef NETLAB_SYSTEM_SHIMS_H
#define NETLAB_SYSTEM_SHIMS_H

#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>

// setns/unshare/gettid/pidfd_open are declared by glibc only under _GNU_SOURCE (or not at
// all), which Swift's import of the C library does not define. These wrappers give SystemKit
// access to them; each returns what the system call returns, with errno set on failure.

// The CLONE_NEW* namespace flags (linux/sched.h), likewise hidden without _GNU_SOURCE.
#define NETLAB_CLONE_NEWNS   0x00020000
#define NETLAB_CLONE_NEWUTS  0x04000000
#define NETLAB_CLONE_NEWIPC  0x08000000
#define NETLAB_CLONE_NEWPID  0x20000000
#define NETLAB_CLONE_NEWNET  0x40000000

/// setns(fd, nstype); returns 0 or -1 with errno set.
int netlab_setns(int fd, int nstype);
/// unshare(flags); returns 0 or -1 with errno set.
int netlab_unshare(int flags);
/// The calling thread's kernel thread id.
pid_t netlab_gettid(void);
/// pidfd_open(pid, 0); returns a descriptor or -1 with errno set.
int netlab_pidfd_open(pid_t pid);
/// pipe2(fds, O_CLOEXEC); returns 0 or -1 with errno set.
int netlab_pipe_cloexec(int fds[2]);
/// The file system magic of `path` (statfs f_type) in *type; returns 0 or -1 with errno set.
int netlab_fs_type(const char *path, long *type);

// Packet sockets: struct sockaddr_ll (netpacket/packet.h) is not imported by Swift's Glibc.
/// A socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC) for frames of `ethertype` (host byte order),
/// bound to interface `ifindex`; returns a descriptor or -1 with errno set (nothing left open).
int netlab_packet_socket(int ifindex, uint16_t ethertype);
/// sendto on such a socket: `len` bytes of `buf` to the link-layer address `addr` (`addrlen`
/// bytes, at most 8) through `ifindex`; returns what sendto returns, with errno set on failure.
long netlab_packet_sendto(int fd, const void *buf, size_t len, int ifindex, uint16_t ethertype,
                          const uint8_t *addr, int addrlen);

// posix_spawn's GNU extensions, hidden without _GNU_SOURCE like the calls above.
/// POSIX_SPAWN_SETSID: the child starts a new session.
#define NETLAB_POSIX_SPAWN_SETSID 0x80
/// posix_spawn_file_actions_addclosefrom_np(actions, from): the child closes every descriptor
/// from `from` up. Returns 0 or an errno value.
int netlab_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int from);

#endif
