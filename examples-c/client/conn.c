/* conn: the socket side of pc-deliver. See conn.h. */
#define _GNU_SOURCE 1 /* MSG_FASTOPEN, getaddrinfo, struct addrinfo */

#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
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

int pc_conn_open(pc_conn *c, const struct sockaddr_storage *addr, socklen_t addrlen,
                 int tfo, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv;
    int one = 1;

    memset(c, 0, sizeof *c);
    c->fd = -1;
    memcpy(&c->addr, addr, addrlen);
    c->addrlen = addrlen;
    c->timeout_ms = timeout_ms;
    c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        say(err, errlen, "socket", errno);
        return -1;
    }
    /* Timeouts for every blocking call (connect, send, recv). */
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
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
    if (c->fd < 0) {
        snprintf(err, errlen, "connect: no socket");
        return -1;
    }
    if (c->connected)
        return 0;
    c->tfo_pending = 0;
    for (;;) {
        if (connect(c->fd, (const struct sockaddr *)&c->addr, c->addrlen) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EISCONN)
            break;
        say(err, errlen, "connect", errno);
        return -1;
    }
    c->connected = 1;
    return 0;
}

static int write_plain(pc_conn *c, const unsigned char *p, size_t len, char *err, size_t errlen)
{
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            say(err, errlen, "send", errno);
            return -1;
        }
        p += n;
        len -= (size_t)n;
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
         * connection can use it). A kernel with client TFO off refuses: connect then. */
        ssize_t n;
        c->tfo_pending = 0;
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
        } else {
            say(err, errlen, "sendto(MSG_FASTOPEN)", errno);
            return -1;
        }
    }
#ifdef PC_WITH_TLS
    if (c->tls != NULL) {
        if (len > 0 && tls_stream_write(c->tls, p, len) < 0) {
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
#ifdef PC_WITH_TLS
    if (c->tls != NULL) {
        n = tls_stream_read(c->tls, buf, len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                snprintf(err, errlen, "timed out waiting for the server (TLS)");
            else
                snprintf(err, errlen, "TLS read: %s", tls_stream_error(c->tls));
        }
        return n;
    }
#endif
    do {
        n = recv(c->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            snprintf(err, errlen, "timed out waiting for the server");
        else
            say(err, errlen, "recv", errno);
    }
    return n;
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

int pc_conn_readable(pc_conn *c, int wait_ms)
{
    struct pollfd pfd;
    int rc;

    if (pc_conn_pending(c) > 0)
        return 1;
    pfd.fd = c->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    do {
        rc = poll(&pfd, 1, wait_ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
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
    c->tls = tls_stream_start(c->fd, server_name, err, errlen);
    return c->tls != NULL ? 0 : -1;
#else
    (void)c;
    (void)server_name;
    snprintf(err, errlen, "this pc-deliver was built without TLS (build with --tls)");
    return -1;
#endif
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
