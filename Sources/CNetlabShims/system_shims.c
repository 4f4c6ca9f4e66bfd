#define _GNU_SOURCE
#include <sched.h>
#include <spawn.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/socket.h>
#include <netpacket/packet.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
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

static struct sockaddr_ll netlab_link_address(int ifindex, uint16_t ethertype, const uint8_t *addr, int addrlen) {
    struct sockaddr_ll a;
    memset(&a, 0, sizeof a);
    a.sll_family = AF_PACKET;
    a.sll_protocol = htons(ethertype);
    a.sll_ifindex = ifindex;
    if (addr && addrlen > 0) {
        a.sll_halen = (unsigned char)(addrlen < (int)sizeof a.sll_addr ? addrlen : (int)sizeof a.sll_addr);
        memcpy(a.sll_addr, addr, a.sll_halen);
    }
    return a;
}

int netlab_packet_socket(int ifindex, uint16_t ethertype) {
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ethertype));
    if (fd < 0) return -1;
    struct sockaddr_ll a = netlab_link_address(ifindex, ethertype, NULL, 0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

long netlab_packet_sendto(int fd, const void *buf, size_t len, int ifindex, uint16_t ethertype,
                          const uint8_t *addr, int addrlen) {
    struct sockaddr_ll a = netlab_link_address(ifindex, ethertype, addr, addrlen);
    return (long)sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof a);
}
