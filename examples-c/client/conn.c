/* conn: the socket side of pc-deliver. See conn.h. */
#define _GNU_SOURCE 1 /* MSG_FASTOPEN, getaddrinfo, struct addrinfo */

#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef PC_WITH_TLS
#include "tls_stream.h"
#endif

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static void say(char *err, size_t errlen, const char *what, int e)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", what, strerror(e));
}

int pc_resolve(const char *host, const char *port, struct sockaddr_storage *addr,
               socklen_t *addrlen, char *ip, size_t iplen, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        if (res != NULL)
            freeaddrinfo(res);
        return -1;
    }
    if (res->ai_addrlen > sizeof *addr) {
        freeaddrinfo(res);
        snprintf(err, errlen, "address of %s too long", host);
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addrlen = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    rc = getnameinfo((const struct sockaddr *)addr, *addrlen, ip, (socklen_t)iplen, NULL, 0,
                     NI_NUMERICHOST);
    if (rc != 0) {
        snprintf(err, errlen, "cannot print the address of %s: %s", host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

double pc_conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void pc_conn_set_deadline(pc_conn *c, double deadline_ms)
{
    c->deadline_ms = deadline_ms;
}

/* Milliseconds left until `deadline` (rounded up, so that a wait never ends early), 0 when
 * it has passed, -1 (poll's "no limit") for no deadline. */
static int ms_left(double deadline)
{
    double left;
    if (deadline <= 0)
        return -1;
    left = deadline - pc_conn_now_ms();
    if (left <= 0)
        return 0;
    if (left > 24.0 * 3600 * 1000)
        return 24 * 3600 * 1000;
    return (int)left + 1;
}

static void timed_out(pc_conn *c, char *err, size_t errlen, const char *what)
{
    c->timed_out = 1;
    errno = ETIMEDOUT;
    snprintf(err, errlen, "timed out %s", what);
}

/* Wait until fd is ready for `events` or `deadline` passes. 1 ready, 0 deadline passed,
 * -1 poll failed (errno). */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        struct pollfd pfd;
        int left = ms_left(deadline), rc;
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, left);
        if (rc > 0)
            return 1;
        if (rc == 0) {
            if (left == 0 || ms_left(deadline) == 0)
                return 0;
            continue; /* woke a little early */
        }
        if (errno != EINTR)
            return -1;
    }
}

/* A kernel timeout for the calls that cannot be polled around (the TCP Fast Open sendto,
 * the TLS layer's socket calls): the time left, at least 1 ms. */
static void set_kernel_timeout(int fd, int opt, double deadline)
{
    struct timeval tv;
    int left = ms_left(deadline);
    if (left < 0) {
        tv.tv_sec = 0;
        tv.tv_usec = 0; /* no limit */
    } else {
        if (left == 0)
            left = 1;
        tv.tv_sec = left / 1000;
        tv.tv_usec = (left % 1000) * 1000;
    }
    (void)setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

static int set_nonblocking(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl);
}

int pc_conn_open(pc_conn *c, const struct sockaddr_storage *addr, socklen_t addrlen,
                 int tfo, double deadline_ms, int write_idle_ms, char *err, size_t errlen)
{
    int one = 1;

    memset(c, 0, sizeof *c);
    c->fd = -1;
    memcpy(&c->addr, addr, addrlen);
    c->addrlen = addrlen;
    c->deadline_ms = deadline_ms;
    c->write_idle_ms = write_idle_ms;
    c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        say(err, errlen, "socket", errno);
        return -1;
    }
    /* A flight is written at once and must leave at once: no Nagle delay. */
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (tfo) {
        c->tfo_pending = 1;
        return 0;
    }
    return pc_conn_connect(c, err, errlen);
}

int pc_conn_connect(pc_conn *c, char *err, size_t errlen)
{
    int rc, soerr = 0;
    socklen_t len = sizeof soerr;

    if (c->fd < 0) {
        snprintf(err, errlen, "connect: no socket");
        return -1;
    }
    if (c->connected)
        return 0;
    c->tfo_pending = 0;
    /* connect() without blocking, then poll until the deadline: a blocking connect waits
     * as long as the kernel's SYN retries, whatever our time limit. */
    if (set_nonblocking(c->fd, 1) != 0) {
        say(err, errlen, "fcntl", errno);
        return -1;
    }
    do {
        rc = connect(c->fd, (const struct sockaddr *)&c->addr, c->addrlen);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno == EINPROGRESS) {
        int ready = wait_fd(c->fd, POLLOUT, c->deadline_ms);
        if (ready == 0) {
            (void)set_nonblocking(c->fd, 0);
            timed_out(c, err, errlen, "connecting");
            return -1;
        }
        if (ready < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = errno;
        rc = soerr == 0 ? 0 : -1;
        errno = soerr;
    }
    if (rc != 0 && errno != EISCONN) {
        int e = errno;
        (void)set_nonblocking(c->fd, 0);
        say(err, errlen, "connect", e);
        return -1;
    }
    if (set_nonblocking(c->fd, 0) != 0) {
        say(err, errlen, "fcntl", errno);
        return -1;
    }
    c->connected = 1;
    return 0;
}

/* The deadline of a write that made progress at `last_progress`: write_idle_ms after it,
 * never past the connection's deadline. */
static double write_deadline(const pc_conn *c, double last_progress)
{
    double idle;
    if (c->write_idle_ms <= 0)
        return c->deadline_ms;
    idle = last_progress + c->write_idle_ms;
    return c->deadline_ms > 0 && c->deadline_ms < idle ? c->deadline_ms : idle;
}

static int write_plain(pc_conn *c, const unsigned char *p, size_t len, char *err, size_t errlen)
{
    double progress = pc_conn_now_ms();
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            int ready;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                say(err, errlen, "send", errno);
                return -1;
            }
            ready = wait_fd(c->fd, POLLOUT, write_deadline(c, progress));
            if (ready == 0) {
                timed_out(c, err, errlen, "sending to the server");
                return -1;
            }
            if (ready < 0) {
                say(err, errlen, "poll", errno);
                return -1;
            }
            continue;
        }
        p += n;
        len -= (size_t)n;
        progress = pc_conn_now_ms();
    }
    return 0;
}

int pc_conn_write(pc_conn *c, const void *buf, size_t len, char *err, size_t errlen)
{
    const unsigned char *p = buf;

    if (c->tfo_pending) {
        /* TCP Fast Open: connect and send in one call. The kernel puts the data in the
         * SYN when it holds a cookie from this server, and otherwise sends a cookie
         * request with the SYN and the data right after the handshake (so the next
         * connection can use it). A kernel with client TFO off refuses: connect then.
         * Without a cookie the call waits for the handshake: a kernel timeout bounds it. */
        ssize_t n;
        c->tfo_pending = 0;
        set_kernel_timeout(c->fd, SO_SNDTIMEO, c->deadline_ms);
        do {
            n = sendto(c->fd, p, len, MSG_FASTOPEN | MSG_NOSIGNAL,
                       (const struct sockaddr *)&c->addr, c->addrlen);
        } while (n < 0 && errno == EINTR);
        if (n >= 0) {
            c->tfo_used = 1;
            c->connected = 1;
            p += n;
            len -= (size_t)n;
        } else if (errno == EOPNOTSUPP || errno == EPROTONOSUPPORT || errno == EINVAL) {
            c->tfo_pending = 1;
            if (pc_conn_connect(c, err, errlen) != 0)
                return -1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS) {
            timed_out(c, err, errlen, "connecting (TCP Fast Open)");
            return -1;
        } else {
            say(err, errlen, "sendto(MSG_FASTOPEN)", errno);
            return -1;
        }
    }
#ifdef PC_WITH_TLS
    if (c->tls != NULL) {
        /* The TLS layer writes with blocking send(); its kernel timeout restarts with
         * progress, like write_idle_ms, and stops at the deadline. */
        set_kernel_timeout(c->fd, SO_SNDTIMEO, write_deadline(c, pc_conn_now_ms()));
        if (len > 0 && tls_stream_write(c->tls, p, len) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                timed_out(c, err, errlen, "sending to the server (TLS)");
            else
                snprintf(err, errlen, "TLS write: %s", tls_stream_error(c->tls));
            return -1;
        }
        return 0;
    }
#endif
    return write_plain(c, p, len, err, errlen);
}

ssize_t pc_conn_read(pc_conn *c, void *buf, size_t len, char *err, size_t errlen)
{
    ssize_t n;

    if (c->tfo_pending && pc_conn_connect(c, err, errlen) != 0)
        return -1;
    for (;;) {
        int ready;
#ifdef PC_WITH_TLS
        if (c->tls != NULL && tls_stream_pending(c->tls) > 0)
            return tls_stream_read(c->tls, buf, len);
#endif
        ready = wait_fd(c->fd, POLLIN, c->deadline_ms);
        if (ready == 0) {
            timed_out(c, err, errlen, "waiting for the server");
            return -1;
        }
        if (ready < 0) {
            say(err, errlen, "poll", errno);
            return -1;
        }
#ifdef PC_WITH_TLS
        if (c->tls != NULL) {
            /* Bytes are there, but maybe only part of a TLS record: read without blocking
             * (the TLS layer keeps what it got) and poll again for the rest. */
            int e;
            if (set_nonblocking(c->fd, 1) != 0) {
                say(err, errlen, "fcntl", errno);
                return -1;
            }
            n = tls_stream_read(c->tls, buf, len);
            e = errno;
            (void)set_nonblocking(c->fd, 0);
            if (n < 0 && (e == EAGAIN || e == EWOULDBLOCK))
                continue;
            if (n < 0)
                snprintf(err, errlen, "TLS read: %s", tls_stream_error(c->tls));
            errno = e;
            return n;
        }
#endif
        do {
            n = recv(c->fd, buf, len, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            say(err, errlen, "recv", errno);
        return n;
    }
}

size_t pc_conn_pending(pc_conn *c)
{
#ifdef PC_WITH_TLS
    if (c->tls != NULL)
        return tls_stream_pending(c->tls);
#else
    (void)c;
#endif
    return 0;
}

int pc_conn_tls_available(void)
{
#ifdef PC_WITH_TLS
    return 1;
#else
    return 0;
#endif
}

int pc_conn_starttls(pc_conn *c, const char *server_name, char *err, size_t errlen)
{
#ifdef PC_WITH_TLS
    /* TEST USE ONLY: tls_stream_start() does not verify the server's certificate, so
     * that the self-signed certificates of the test sink and the test Exim work. A real
     * MTA verifies (or applies its DANE / MTA-STS policy) here. */
    /* The handshake runs inside the TLS layer with blocking socket calls: kernel timeouts
     * of the time left bound each of them (not the handshake as a whole: a server that
     * trickles handshake bytes can stretch it; see README.md). */
    set_kernel_timeout(c->fd, SO_RCVTIMEO, c->deadline_ms);
    set_kernel_timeout(c->fd, SO_SNDTIMEO, c->deadline_ms);
    c->tls = tls_stream_start(c->fd, server_name, err, errlen);
    return c->tls != NULL ? 0 : -1;
#else
    (void)c;
    (void)server_name;
    snprintf(err, errlen, "this pc-deliver was built without TLS (build with --tls)");
    return -1;
#endif
}

int pc_conn_half_close(pc_conn *c)
{
    if (c->fd < 0 || !c->connected)
        return -1;
#ifdef PC_WITH_TLS
    /* TLS first says it is done (close_notify), inside the TLS stream; then TCP. */
    if (c->tls != NULL) {
        set_kernel_timeout(c->fd, SO_SNDTIMEO, c->deadline_ms);
        (void)tls_stream_shutdown(c->tls);
    }
#endif
    return shutdown(c->fd, SHUT_WR);
}

void pc_conn_close(pc_conn *c)
{
#ifdef PC_WITH_TLS
    if (c->tls != NULL) {
        (void)tls_stream_shutdown(c->tls);
        tls_stream_free(c->tls);
        c->tls = NULL;
    }
#endif
    if (c->fd >= 0) {
        (void)close(c->fd);
        c->fd = -1;
    }
}
