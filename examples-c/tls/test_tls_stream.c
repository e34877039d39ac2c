/* Test of tls_stream against a real SMTP server with STARTTLS (the Exim 4.96
 * harness in tests/exim, or any STARTTLS sink on loopback).
 *
 *   ./test_tls_stream [host [port]]        default 127.0.0.1 2525
 *
 * 1. cleartext: banner, EHLO (must offer STARTTLS), STARTTLS -> 220; the
 *    cleartext buffer must be empty before the handshake (injection guard);
 * 2. tls_stream_start(); EHLO again over TLS (must not offer STARTTLS);
 * 3. tls_stream_pending(): after a 1-byte read the rest of the record is
 *    buffered; after a complete reply, nothing is;
 * 4. a pipelined MAIL/RCPT/BDAT LAST transaction over TLS (one write), the
 *    three replies checked in order;
 * 5. QUIT -> 221; then tls_stream_read() reports the end (0 = close_notify,
 *    or -1/ECONNRESET when the server just closes TCP);
 * 6. negative: tls_stream_start() on a cleartext SMTP session (no STARTTLS)
 *    must fail cleanly with a message, and on an invalid server name.
 * Exit status 0 when all checks pass.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tls_stream.h"

static int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            printf("ok   - " __VA_ARGS__);                                    \
            printf("\n");                                                     \
        } else {                                                              \
            printf("FAIL - " __VA_ARGS__);                                    \
            printf("   [%s:%d: %s]\n", __FILE__, __LINE__, #cond);            \
            failures++;                                                       \
        }                                                                     \
    } while (0)

/* ---- a line reader over either the raw fd (cleartext) or a tls_stream ---- */
typedef struct {
    int fd;
    tls_stream *ts;
    char buf[8192];
    size_t len;
} reader;

static ssize_t src_read(reader *r, void *p, size_t n)
{
    if (r->ts)
        return tls_stream_read(r->ts, p, n);
    for (;;) {
        ssize_t k = recv(r->fd, p, n, 0);
        if (k >= 0 || errno != EINTR)
            return k;
    }
}

static int send_all(reader *r, const char *s)
{
    size_t n = strlen(s);
    if (r->ts)
        return tls_stream_write(r->ts, s, n) == (ssize_t)n ? 0 : -1;
    while (n) {
        ssize_t k = send(r->fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read one complete SMTP reply (all lines) into out.  Returns the code, or -1. */
static int read_reply(reader *r, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl == NULL) {
            if (r->len == sizeof r->buf)
                return -1;
            ssize_t k = src_read(r, r->buf + r->len, sizeof r->buf - r->len);
            if (k <= 0)
                return -1;
            r->len += (size_t)k;
            continue;
        }
        size_t ll = (size_t)(nl - r->buf) + 1;
        if (used + ll < outlen) {
            memcpy(out + used, r->buf, ll);
            used += ll;
            out[used] = '\0';
        }
        int last = ll >= 4 && r->buf[3] == ' ';
        int code = ll >= 4 ? atoi(r->buf) : -1;
        memmove(r->buf, r->buf + ll, r->len - ll);
        r->len -= ll;
        if (last || ll < 4)
            return code;
    }
}

static int tcp_connect(const char *host, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {15, 0}; /* no test may hang forever */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int has_keyword(const char *ehlo, const char *kw)
{
    const char *p = ehlo;
    size_t kl = strlen(kw);
    while ((p = strstr(p, kw)) != NULL) {
        if (p >= ehlo + 4 && (p[-1] == '-' || p[-1] == ' ') && (p[kl] == '\r' || p[kl] == '\n' || p[kl] == ' '))
            return 1;
        p += kl;
    }
    return 0;
}

static void test_starttls_session(const char *host, int port)
{
    char rep[8192], err[256], desc[128];
    reader r;
    memset(&r, 0, sizeof r);
    r.fd = tcp_connect(host, port);
    CHECK(r.fd >= 0, "connect to %s:%d", host, port);
    if (r.fd < 0)
        return;

    CHECK(read_reply(&r, rep, sizeof rep) == 220, "banner 220: %.60s", rep);
    CHECK(send_all(&r, "EHLO client.test.example\r\n") == 0, "send EHLO");
    CHECK(read_reply(&r, rep, sizeof rep) == 250, "EHLO 250");
    CHECK(has_keyword(rep, "STARTTLS"), "cleartext EHLO offers STARTTLS");
    CHECK(send_all(&r, "STARTTLS\r\n") == 0, "send STARTTLS");
    CHECK(read_reply(&r, rep, sizeof rep) == 220, "STARTTLS 220: %.40s", rep);
    /* Injection guard: no cleartext may be left over when TLS starts. */
    CHECK(r.len == 0, "no cleartext buffered after the 220 (%zu bytes)", r.len);

    tls_stream *ts = tls_stream_start(r.fd, "mx.test.example", err, sizeof err);
    CHECK(ts != NULL, "tls_stream_start: %s", ts ? "handshake done" : err);
    if (ts == NULL) {
        close(r.fd);
        return;
    }
    tls_stream_describe(ts, desc, sizeof desc);
    printf("#    negotiated %s\n", desc);
    CHECK(tls_stream_pending(ts) == 0, "nothing pending right after the handshake");
    r.ts = ts;

    /* pending(): the whole EHLO reply arrives in one TLS record, so after a
     * one-byte read the remainder is already decrypted and buffered. */
    CHECK(send_all(&r, "EHLO client.test.example\r\n") == 0, "send EHLO over TLS");
    char c = 0;
    CHECK(tls_stream_read(ts, &c, 1) == 1 && c == '2', "read 1 byte of the EHLO reply");
    size_t pend = tls_stream_pending(ts);
    CHECK(pend > 0, "tls_stream_pending() = %zu after the 1-byte read", pend);
    r.buf[0] = c;
    r.len = 1;
    int code = read_reply(&r, rep, sizeof rep);
    printf("#    post-TLS EHLO reply:\n%s", rep);
    CHECK(code == 250, "post-TLS EHLO 250");
    CHECK(!has_keyword(rep, "STARTTLS"), "post-TLS EHLO does not offer STARTTLS");
    CHECK(has_keyword(rep, "PIPELINING"), "post-TLS EHLO offers PIPELINING");
    CHECK(tls_stream_pending(ts) == 0 && r.len == 0, "nothing pending after a complete reply");

    /* One pipelined write: MAIL, RCPT, BDAT LAST + body. */
    const char *body = "Subject: tls_stream test\r\n\r\nsent through rustls-ffi\r\n";
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "MAIL FROM:<c@client.test.example>\r\nRCPT TO:<tls-c@test.example>\r\n"
             "BDAT %zu LAST\r\n%s", strlen(body), body);
    int chunking = has_keyword(rep, "CHUNKING");
    if (!chunking) /* a sink without CHUNKING: plain DATA */
        snprintf(cmd, sizeof cmd,
                 "MAIL FROM:<c@client.test.example>\r\nRCPT TO:<tls-c@test.example>\r\nDATA\r\n");
    CHECK(send_all(&r, cmd) == 0, "pipelined MAIL/RCPT/%s over TLS", chunking ? "BDAT" : "DATA");
    CHECK(read_reply(&r, rep, sizeof rep) == 250, "MAIL 250");
    CHECK(read_reply(&r, rep, sizeof rep) == 250, "RCPT 250");
    if (chunking) {
        CHECK(read_reply(&r, rep, sizeof rep) == 250, "BDAT LAST 250: %s", rep);
    } else {
        CHECK(read_reply(&r, rep, sizeof rep) == 354, "DATA 354");
        snprintf(cmd, sizeof cmd, "%s.\r\n", body);
        CHECK(send_all(&r, cmd) == 0, "body");
        CHECK(read_reply(&r, rep, sizeof rep) == 250, "end of data 250");
    }

    if (chunking) {
        /* A 1 MiB message in one tls_stream_write(): many TLS records,
         * rustls' outgoing buffer filled and flushed repeatedly. */
        size_t big = 1u << 20;
        char *m = malloc(big + 256);
        CHECK(m != NULL, "malloc");
        if (m != NULL) {
            int h = snprintf(m, 256,
                             "MAIL FROM:<c@client.test.example>\r\nRCPT TO:<big@test.example>\r\n"
                             "BDAT %zu LAST\r\n", big);
            char *b = m + h;
            size_t pos = (size_t)snprintf(b, 64, "Subject: big\r\n\r\n");
            while (pos < big) {
                b[pos] = (pos % 78 == 76) ? '\r' : (pos % 78 == 77) ? '\n' : (char)('a' + pos % 26);
                pos++;
            }
            b[big - 2] = '\r';
            b[big - 1] = '\n';
            ssize_t w = r.ts ? tls_stream_write(ts, m, (size_t)h + big) : -1;
            CHECK(w == (ssize_t)((size_t)h + big), "1 MiB pipelined BDAT written (%zd)", w);
            free(m);
            CHECK(read_reply(&r, rep, sizeof rep) == 250, "big MAIL 250");
            CHECK(read_reply(&r, rep, sizeof rep) == 250, "big RCPT 250");
            CHECK(read_reply(&r, rep, sizeof rep) == 250 && strstr(rep, "total 1048576") != NULL,
                  "big BDAT 250: %.60s", rep);
        }
    }

    CHECK(send_all(&r, "QUIT\r\n") == 0, "send QUIT");
    CHECK(read_reply(&r, rep, sizeof rep) == 221, "QUIT 221");
    char tail[64];
    errno = 0;
    ssize_t k = tls_stream_read(ts, tail, sizeof tail);
    printf("#    after 221: read -> %zd (%s)\n", k, k == 0 ? "close_notify" : tls_stream_error(ts));
    CHECK(k == 0 || (k < 0 && errno == ECONNRESET), "end of stream after QUIT");
    (void)tls_stream_shutdown(ts); /* best effort; the peer may be gone */
    tls_stream_free(ts);
    close(r.fd);
}

static void test_handshake_failures(const char *host, int port)
{
    char rep[8192], err[256];
    reader r;
    memset(&r, 0, sizeof r);
    r.fd = tcp_connect(host, port);
    CHECK(r.fd >= 0, "connect for the negative test");
    if (r.fd < 0)
        return;
    CHECK(read_reply(&r, rep, sizeof rep) == 220, "banner");
    /* No STARTTLS: the server sees a ClientHello as an SMTP command line and
     * answers in cleartext, which is not a TLS record. */
    tls_stream *ts = tls_stream_start(r.fd, "mx.test.example", err, sizeof err);
    CHECK(ts == NULL && err[0] != '\0', "handshake with a cleartext SMTP server fails: %s", err);
    tls_stream_free(ts);
    close(r.fd);

    ts = tls_stream_start(-1, "mx.test.example", err, sizeof err);
    CHECK(ts == NULL && err[0] != '\0', "bad fd rejected: %s", err);
    int fd = tcp_connect(host, port);
    ts = tls_stream_start(fd, "not a valid name!", err, sizeof err);
    CHECK(ts == NULL && err[0] != '\0', "invalid server name rejected: %s", err);
    if (fd >= 0)
        close(fd);
    CHECK(tls_stream_pending(NULL) == 0, "pending(NULL) is 0");
    tls_stream_free(NULL);
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 2525;
    test_starttls_session(host, port);
    test_handshake_failures(host, port);
    if (failures) {
        printf("%d check(s) FAILED\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
