// The floor under xrayd's receive path: a process that only receives UDP datagrams with
// recvmmsg (64 per call) and discards them, waking every SLEEP_US microseconds (0: block until
// a datagram arrives). Run it where xrayd would run and send it xrayd-loadgen traffic; its CPU
// is what receiving alone costs at that rate and wake-up rate. Prints the datagram count at
// SIGTERM/SIGINT. Usage: receive_floor PORT SLEEP_US
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int signo) {
    (void)signo;
    stopping = 1;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT SLEEP_US\n", argv[0]);
        return 2;
    }
    const int port = atoi(argv[1]);
    const long sleep_us = atol(argv[2]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    int rcvbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
        perror("setsockopt");
        return 1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) {
        perror("bind");
        return 1;
    }
    // No SA_RESTART: a signal must end a blocking recvmmsg.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    enum { batch = 64, slot = 2048 };
    static char buffers[batch][slot];
    struct mmsghdr messages[batch];
    struct iovec iov[batch];
    for (int i = 0; i < batch; ++i) {
        iov[i].iov_base = buffers[i];
        iov[i].iov_len = slot;
        memset(&messages[i], 0, sizeof messages[i]);
        messages[i].msg_hdr.msg_iov = &iov[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    long long received = 0;
    while (!stopping) {
        const int n = recvmmsg(fd, messages, batch, sleep_us > 0 ? MSG_DONTWAIT : MSG_WAITFORONE,
                               NULL);
        if (n > 0) {
            received += n;
            if (n == batch) {
                continue;  // more may be waiting
            }
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            perror("recvmmsg");
            return 1;
        }
        if (sleep_us > 0) {
            usleep((useconds_t)sleep_us);
        }
    }
    printf("%lld\n", received);
    return 0;
}
