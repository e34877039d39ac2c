/* delivery: one message to one server, with libpipeconnect deciding what goes when.
 *
 * This is the reference integration. The shape is the same for any MTA:
 *
 *   1. Make a key for the server (address, port, cleartext) and describe the
 *      transaction in a pipeconnect_intent (EHLO name, STARTTLS, AUTH, sender,
 *      recipients, body size and mode).
 *   2. pipeconnect_session_begin() looks the key up in the cache and plans the early
 *      flight. Then loop:
 *        - take the commands the session releases (pipeconnect_session_flight()) and
 *          write them in one go (the first group may go before the banner: that is the
 *          early flight; with TCP Fast Open it rides in the SYN);
 *        - read what the server sent and feed the bytes exactly as read
 *          (pipeconnect_session_feed());
 *        - act on each event's verdict (pipeconnect_session_next_event()): a refused
 *          recipient, a 220 to STARTTLS (start TLS, then pipeconnect_session_tls_started()),
 *          the message accepted, the connection done.
 *   3. pipeconnect_session_finish() says how it ended. RECONNECT means early pipelining
 *      failed (the cache entry is already gone): reconnect at once without it, and do
 *      not count it against the message.
 *
 * The session keeps the cache right by itself: it learns every EHLO reply, and removes
 * or rewrites the entry when the server's replies say so.
 *
 * SMTP QUICKSTART (experimental, --quickstart; docs/RULES.md Part 6) adds three calls
 * around that loop, and changes no rule of it: a greeting that carries capabilities is
 * parsed (pipeconnect_quickstart_parse_greeting()) and learned like an EHLO reply, its
 * cookie kept (pipeconnect_cache_learn_qhlo_cookie()); an early flight's EHLO line is sent
 * as `QHLO name cookie` when a cookie is kept (pipeconnect_cache_qhlo_cookie()). See
 * quickstart_greeting_first() and send_released().
 */
#define _GNU_SOURCE 1

#include "delivery.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"

/* Commands taken from the session per call; any number works. */
#define FLIGHT_CAP 64

const char *pc_mode_name(enum pc_mode m)
{
    switch (m) {
    case PC_MODE_CLASSIC:
        return "classic";
    case PC_MODE_EARLY:
        return "early";
    case PC_MODE_ONEFLIGHT:
        return "oneflight";
    }
    return "?";
}

const char *pc_result_name(enum pc_result r)
{
    switch (r) {
    case PC_OK:
        return "ok";
    case PC_REJECTED:
        return "rejected";
    case PC_TEMPFAIL:
        return "tempfail";
    case PC_ERROR:
        return "error";
    }
    return "?";
}

static double now_ms(void)
{
    return pc_conn_now_ms();
}

static void detail(pc_delivery_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

/* ---- a growable output buffer: one write per group of commands ---- */

typedef struct outbuf {
    unsigned char *p;
    size_t len, cap;
} outbuf;

static int out_add(outbuf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        unsigned char *np;
        while (cap < b->len + len)
            cap *= 2;
        np = realloc(b->p, cap);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* The body after a 354: dot-stuffed (RFC 5321 4.5.2), then the lone dot. */
static int out_add_dotstuffed(outbuf *b, const unsigned char *msg, size_t len)
{
    size_t i;
    int line_start = 1;
    for (i = 0; i < len; i++) {
        if (line_start && msg[i] == '.' && out_add(b, ".", 1) != 0)
            return -1;
        if (out_add(b, &msg[i], 1) != 0)
            return -1;
        line_start = msg[i] == '\n';
    }
    return out_add(b, ".\r\n", 3);
}

/* Size of the message as sent after DATA (dot-stuffed, without the final dot line). */
static size_t dotstuffed_size(const unsigned char *msg, size_t len)
{
    size_t i, n = len;
    int line_start = 1;
    for (i = 0; i < len; i++) {
        if (line_start && msg[i] == '.')
            n++;
        line_start = msg[i] == '\n';
    }
    return n;
}

/* ---- AUTH PLAIN's initial response: base64("" NUL user NUL password) ---- */

static char *plain_response(const char *user, const char *pass)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t ul = strlen(user), pl = strlen(pass);
    size_t n = ul + pl + 2, i, o = 0;
    unsigned char *raw = malloc(n);
    char *b64 = malloc((n + 2) / 3 * 4 + 1);
    if (raw == NULL || b64 == NULL) {
        free(raw);
        free(b64);
        return NULL;
    }
    raw[0] = 0;
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = 0;
    memcpy(raw + 2 + ul, pass, pl);
    for (i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        b64[o++] = tab[(v >> 18) & 63];
        b64[o++] = tab[(v >> 12) & 63];
        b64[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        b64[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    b64[o] = '\0';
    memset(raw, 0, n);
    free(raw);
    return b64;
}

/* ---- one connection ---- */

/* The longest greeting read before the session sees it (QUICKSTART). */
#define GREETING_MAX 8192
/* "QHLO " name (at most 255) " " cookie (at most PIPECONNECT_QHLO_COOKIE_MAX) CRLF NUL. */
#define EHLO_LINE_MAX (5 + 255 + 1 + PIPECONNECT_QHLO_COOKIE_MAX + 3)

typedef struct attempt {
    const pc_delivery_opts *o;
    const pipeconnect_cache *cache;
    const pipeconnect_key *key;
    pc_delivery_result *r;
    pipeconnect_session *s;
    pc_conn conn;
    outbuf out;
    char *auth_ir;
    int waiting;       /* already counted the current wait */
    int accepted;      /* the message got its final 2xx */
    int body_sent;     /* BDAT LAST or the DATA body went out */
    int body_answered; /* ... and its reply came */
    int conn_done;     /* the server's last reply ended the connection */
    int broken;        /* the byte stream can carry nothing more */
    int timed_out;     /* a time limit ended this connection */
    double t_accepted;
    double deadline;       /* the delivery's end (shared by both connections) */
    double reply_deadline; /* the reply awaited now must be complete by then */
    /* QUICKSTART: the line that replaces the early flight's EHLO ("" for none), whether
     * it went, and bytes read (the greeting) before the session was given them. */
    int qs;              /* QUICKSTART on for this connection */
    int greeting_first;  /* the greeting was read before the session was given it */
    char qhlo[EHLO_LINE_MAX];
    int qhlo_sent;
    unsigned char pre[GREETING_MAX];
    size_t pre_len;
} attempt;

static void keep_cookie(attempt *a, const unsigned char *greeting, size_t len);

/* A new wait begins (a write went out, or a reply came in): the next reply must be
 * complete within reply_timeout_ms, and never after the delivery's deadline. The limit
 * is absolute: bytes that trickle in do not move it; only a complete reply does. */
static void arm(attempt *a)
{
    double d = now_ms() + a->o->reply_timeout_ms;
    a->reply_deadline = d < a->deadline ? d : a->deadline;
    pc_conn_set_deadline(&a->conn, a->reply_deadline);
}

/* The connection failed: remember whether a time limit did it, and say which. */
static void conn_failed(attempt *a, const char *err)
{
    a->broken = 1;
    if (!a->conn.timed_out) {
        detail(a->r, "%s", err);
        return;
    }
    a->timed_out = 1;
    if (a->reply_deadline >= a->deadline)
        detail(a->r, "%s: the delivery's time limit (%d ms) is reached", err,
               a->o->delivery_timeout_ms);
    else
        detail(a->r, "%s: no complete reply within %d ms", err, a->o->reply_timeout_ms);
}

/* Take every command the session releases now and write them with one write.
 * Returns how many were sent, or -1. */
static int send_released(attempt *a)
{
    pipeconnect_session_command cmds[FLIGHT_CAP];
    size_t n, i, total = 0;
    pipeconnect_result rc;
    const pc_delivery_opts *o = a->o;

    a->out.len = 0;
    do {
        cmds[0].struct_size = sizeof cmds[0]; /* the array's stride */
        rc = pipeconnect_session_flight(a->s, cmds, FLIGHT_CAP, &n);
        if (rc != PIPECONNECT_OK) {
            detail(a->r, "session_flight: %s", pipeconnect_result_message(rc));
            return -1;
        }
        for (i = 0; i < n; i++) {
            const pipeconnect_session_command *c = &cmds[i];
            char line[600];
            size_t len = 0;
            int ok;
            if (c->kind == PIPECONNECT_CMD_BODY || c->kind == PIPECONNECT_CMD_BDAT_LAST)
                a->body_sent = 1;
            if (c->kind == PIPECONNECT_CMD_BODY) {
                ok = out_add_dotstuffed(&a->out, o->message, o->message_len) == 0;
            } else if (c->kind == PIPECONNECT_CMD_AUTH) {
                /* The library never sees credentials: the AUTH line is ours. */
                int w = snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", a->auth_ir);
                ok = w > 0 && (size_t)w < sizeof line && out_add(&a->out, line, (size_t)w) == 0;
                if (o->verbose)
                    fprintf(stderr, "> AUTH PLAIN <redacted>%s\n",
                            c->flags & PIPECONNECT_SESSION_COMMAND_EARLY ? "   (early)" : "");
            } else {
                rc = pipeconnect_session_command_line(a->s, c, line, sizeof line, &len);
                if (rc != PIPECONNECT_OK) {
                    detail(a->r, "command_line: %s", pipeconnect_result_message(rc));
                    return -1;
                }
                /* QUICKSTART: the early flight's EHLO goes as QHLO (with the cookie kept
                 * for this server, if any); the server answers it as it answers EHLO, so
                 * the session reads the reply as the EHLO reply. */
                if (c->kind == PIPECONNECT_CMD_EHLO &&
                    (c->flags & PIPECONNECT_SESSION_COMMAND_EARLY) && a->qhlo[0] != '\0' &&
                    !a->qhlo_sent && a->conn.tls == NULL) {
                    len = strlen(a->qhlo);
                    memcpy(line, a->qhlo, len + 1);
                    a->qhlo_sent = 1;
                }
                ok = out_add(&a->out, line, len) == 0;
                /* BDAT LAST: the body follows its line at once, in the same write. */
                if (ok && c->kind == PIPECONNECT_CMD_BDAT_LAST)
                    ok = out_add(&a->out, o->message, o->message_len) == 0;
                if (o->verbose)
                    fprintf(stderr, "> %.*s%s\n", (int)(len >= 2 ? len - 2 : len), line,
                            !(c->flags & PIPECONNECT_SESSION_COMMAND_EARLY) ? ""
                            : a->greeting_first ? "   (at once, after the greeting)"
                                                : "   (early)");
            }
            if (!ok) {
                detail(a->r, "out of memory");
                return -1;
            }
        }
        total += n;
    } while (n == FLIGHT_CAP);
    if (a->out.len > 0) {
        char err[200];
        arm(a);
        if (pc_conn_write(&a->conn, a->out.p, a->out.len, err, sizeof err) != 0) {
            conn_failed(a, err);
            return -1;
        }
        a->waiting = 0; /* the next read is a new wait */
        arm(a);         /* ... and its reply's time starts now */
    }
    return (int)total;
}

/* "< 250 first line (+9 lines)   [EHLO, early -> CONTINUE]" on stderr. */
static void log_event(const pipeconnect_event *ev)
{
    size_t first = 0, lines = 1, i;
    while (first < ev->text_len && ev->text[first] != '\n')
        first++;
    for (i = first; i < ev->text_len; i++)
        lines += ev->text[i] == '\n';
    fprintf(stderr, "< %u %.*s", ev->code, (int)first, (const char *)ev->text);
    if (lines > 1)
        fprintf(stderr, " (+%zu lines)", lines - 1);
    fprintf(stderr, "   [%s%s -> %s%s%s]\n", pipeconnect_command_name(ev->kind),
            ev->flags & PIPECONNECT_EVENT_EARLY ? ", early" : "",
            pipeconnect_verdict_name(ev->verdict),
            ev->flags & PIPECONNECT_EVENT_CACHE_STORED ? ", cache stored" : "",
            ev->flags & PIPECONNECT_EVENT_CACHE_INVALIDATED ? ", cache invalidated" : "");
}

/* Act on every queued event. Returns -1 when the connection cannot go on. */
static int handle_events(attempt *a)
{
    pipeconnect_event ev;
    const pc_delivery_opts *o = a->o;

    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    while (pipeconnect_session_next_event(a->s, &ev) == PIPECONNECT_OK) {
        if (o->verbose)
            log_event(&ev);
        if (ev.kind == PIPECONNECT_CMD_BDAT_LAST || ev.kind == PIPECONNECT_CMD_BODY)
            a->body_answered = 1;
        /* QUICKSTART: each greeting brings a fresh cookie (one read before the session
         * saw it was taken then). */
        if (a->qs && !a->greeting_first && ev.kind == PIPECONNECT_CMD_BANNER && ev.code == 220)
            keep_cookie(a, ev.raw, ev.raw_len);
        if (a->qhlo_sent && ev.kind == PIPECONNECT_CMD_EHLO && ev.code / 100 != 2 &&
            a->conn.tls == NULL) {
            /* QHLO refused (a server that does not know it: 500 or 502). The session has
             * dropped the entry and advises a reconnect; the cookie goes too. */
            if (pipeconnect_cache_forget_qhlo_cookie(a->cache, a->key) == PIPECONNECT_OK &&
                o->verbose)
                fprintf(stderr, "pc-deliver: QHLO refused (%u): cookie forgotten\n", ev.code);
        }
        if (ev.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED) {
            /* The server took the message. Behind an earlier failure on this connection
             * (FOLLOWS_FAILURE: say, a message pipelined behind a refused AUTH and
             * accepted unauthenticated) it is still delivered: never send it again. */
            if (ev.flags & PIPECONNECT_EVENT_FOLLOWS_FAILURE)
                fprintf(stderr, "pc-deliver: warning: the server accepted the message "
                                "after an earlier failure on this connection (%s)\n",
                        a->r->detail);
            a->accepted = 1;
            a->t_accepted = now_ms();
        }
        if (ev.kind == PIPECONNECT_CMD_RCPT && ev.verdict != PIPECONNECT_VERDICT_CONTINUE &&
            !(ev.flags & PIPECONNECT_EVENT_FOLLOWS_FAILURE) && ev.rcpt_index < o->rcpt_count) {
            /* An MTA records this recipient's fate (bounce or retry) here. */
            fprintf(stderr, "pc-deliver: recipient <%s>: %u %.*s (%s)\n",
                    o->rcpts[ev.rcpt_index], ev.code, (int)ev.text_len,
                    (const char *)ev.text, pipeconnect_verdict_name(ev.verdict));
        }
        if (ev.verdict != PIPECONNECT_VERDICT_CONTINUE &&
            !(ev.flags & PIPECONNECT_EVENT_FOLLOWS_FAILURE))
            detail(a->r, "%s: %u %.*s", pipeconnect_command_name(ev.kind), ev.code,
                   (int)ev.text_len, (const char *)ev.text);
        if (ev.flags & PIPECONNECT_EVENT_CONNECTION_DONE)
            a->conn_done = 1;
        if (ev.kind == PIPECONNECT_CMD_AUTH && (ev.flags & PIPECONNECT_EVENT_AUTH_CHALLENGE)) {
            /* A 334 despite the initial response: answer with it again. */
            char line[600];
            int w = snprintf(line, sizeof line, "%s\r\n", a->auth_ir);
            char err[200];
            arm(a);
            if (w <= 0 || (size_t)w >= sizeof line) {
                a->broken = 1;
                return -1;
            }
            if (pc_conn_write(&a->conn, line, (size_t)w, err, sizeof err) != 0) {
                conn_failed(a, err);
                return -1;
            }
            a->waiting = 0;
            arm(a);
        }
        if (ev.kind == PIPECONNECT_CMD_STARTTLS && ev.verdict == PIPECONNECT_VERDICT_CONTINUE &&
            ev.code == 220) {
            char err[256];
            pipeconnect_result rc;
            /* Every cleartext byte read so far went to the session: if any followed the
             * 220, pipeconnect_session_tls_started() refuses (RFC 3207 injection guard).
             * The handshake gets the time of one reply. */
            arm(a);
            if (pc_conn_starttls(&a->conn, o->server_name, err, sizeof err) != 0) {
                a->broken = 1;
                if (now_ms() >= a->reply_deadline) {
                    a->timed_out = 1;
                    detail(a->r, "TLS handshake timed out: %s", err);
                } else {
                    detail(a->r, "TLS handshake: %s", err);
                }
                return -1;
            }
            rc = pipeconnect_session_tls_started(a->s);
            if (rc != PIPECONNECT_OK) {
                detail(a->r, "tls_started: %s", pipeconnect_result_message(rc));
                a->broken = 1;
                return -1;
            }
        }
    }
    return a->conn_done ? -1 : 0;
}

/* The server ended the connection's usefulness (a failed banner, EHLO, STARTTLS or
 * required AUTH, a 421), but the message went already, pipelined behind that command:
 * the server still answers it, and may have accepted it. Read on (bounded by the time
 * limits, and by the server closing) until that reply is in. */
static void drain_body_reply(attempt *a)
{
    unsigned char buf[4096];
    char err[200];
    while (a->body_sent && !a->body_answered) {
        size_t events = 0;
        ssize_t got = pc_conn_read(&a->conn, buf, sizeof buf, err, sizeof err);
        if (got <= 0) {
            if (got < 0)
                conn_failed(a, err);
            a->broken = 1;
            return;
        }
        if (pipeconnect_session_feed(a->s, buf, (size_t)got, &events) != PIPECONNECT_OK) {
            a->broken = 1;
            return;
        }
        if (events > 0)
            arm(a);
        (void)handle_events(a);
    }
}

/* The end of a connection that is still in step: QUIT, and at once a half-close (TLS
 * close_notify, then the TCP FIN), then the 221 if it is there within quit_wait_ms.
 *
 * Why the half-close: a server may hold its 221 until it sees the client's FIN, so that
 * the client, closing first, keeps the TIME_WAIT state (Exim 4.96 waits up to 200 ms for
 * it). A client that waits for the 221 before closing pays that wait on every delivery,
 * and the server keeps a process for it. The FIN right behind QUIT ends the server's wait
 * at once. Nothing depends on the 221: the message's fate was settled by the replies
 * before it, so it is read only for the log, and not fed to the session. */
static void quit(attempt *a)
{
    char err[200];
    unsigned char buf[512];
    ssize_t got;
    if (a->broken || a->conn_done)
        return;
    arm(a);
    if (pc_conn_write(&a->conn, "QUIT\r\n", 6, err, sizeof err) != 0)
        return;
    if (a->o->verbose)
        fprintf(stderr, "> QUIT\n");
    if (pc_conn_half_close(&a->conn) != 0)
        return;
    if (a->o->verbose)
        fprintf(stderr, "> (half-close: %sFIN)\n", a->conn.tls != NULL ? "close_notify, " : "");
    /* A deadline of now: read only what has come already. */
    pc_conn_set_deadline(&a->conn, now_ms() + a->o->quit_wait_ms);
    while ((got = pc_conn_read(&a->conn, buf, sizeof buf - 1, err, sizeof err)) > 0) {
        if (a->o->verbose) {
            size_t end = 0;
            while (end < (size_t)got && buf[end] != '\r' && buf[end] != '\n')
                end++;
            fprintf(stderr, "< %.*s   [after QUIT: not fed to the session]\n", (int)end,
                    (const char *)buf);
        }
    }
}

/* ---- SMTP QUICKSTART (experimental) ---- */

/* The length of the first complete reply in buf (through its last line's LF), or 0. */
static size_t reply_end(const unsigned char *buf, size_t len)
{
    size_t start = 0, i;
    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        /* A line "ddd-..." goes on; "ddd ..." or "ddd" ends the reply. */
        if (i - start < 4 || buf[start + 3] != '-')
            return i + 1;
        start = i + 1;
    }
    return 0;
}

/* Whether a greeting lists the QUICKSTART keyword on a line after its first. */
static int greeting_has_quickstart(const unsigned char *g, size_t len)
{
    static const char kw[] = "QUICKSTART";
    size_t start = 0, i, k;
    int first = 1;
    for (i = 0; i < len; i++) {
        if (g[i] != '\n')
            continue;
        if (!first && i - start >= 4 + sizeof kw - 1) {
            const unsigned char *w = g + start + 4;
            for (k = 0; k < sizeof kw - 1; k++)
                if ((w[k] & ~0x20) != (unsigned char)kw[k])
                    break;
            if (k == sizeof kw - 1 &&
                (w[k] == '\r' || w[k] == '\n' || w[k] == ' ' || w[k] == '='))
                return 1;
        }
        first = 0;
        start = i + 1;
    }
    return 0;
}

/* A greeting's QHLO=<cookie>, if any, kept in the cache for this server (replacing the one
 * kept before): the server gives a fresh one with every greeting. */
static void keep_cookie(attempt *a, const unsigned char *greeting, size_t len)
{
    char cookie[PIPECONNECT_QHLO_COOKIE_MAX + 1];
    size_t n = 0;
    if (pipeconnect_quickstart_greeting_cookie(greeting, len, cookie, sizeof cookie, &n) !=
        PIPECONNECT_OK)
        return;
    if (pipeconnect_cache_learn_qhlo_cookie(a->cache, a->key, cookie) == PIPECONNECT_OK &&
        a->o->verbose)
        fprintf(stderr, "pc-deliver: QHLO cookie kept from the greeting\n");
}

/* QUICKSTART with nothing to send before the banner: connect and read the greeting before
 * the session is given it. When it carries capabilities (a multi-line 220 listing
 * QUICKSTART), they are learned like an EHLO reply, under the same key and rules, and its
 * cookie is kept. The greeting stays in a->pre for the session. Returns 1 when the
 * capabilities were cached (the caller begins a new session, which now plans the flight
 * at once), 0 when not, -1 when the connection failed. */
static int quickstart_greeting_first(attempt *a)
{
    char err[200];
    size_t end = 0;
    pipeconnect_caps *caps = NULL;
    pipeconnect_result rc;

    if (pc_conn_connect(&a->conn, err, sizeof err) != 0) {
        conn_failed(a, err);
        return -1;
    }
    a->waiting = 1;
    a->r->waits++;
    a->greeting_first = 1;
    while (end == 0 && a->pre_len < sizeof a->pre) {
        ssize_t got = pc_conn_read(&a->conn, a->pre + a->pre_len, sizeof a->pre - a->pre_len,
                                   err, sizeof err);
        if (got <= 0) {
            if (got == 0) {
                detail(a->r, "the server closed the connection");
                a->broken = 1;
            } else {
                conn_failed(a, err);
            }
            return -1;
        }
        a->pre_len += (size_t)got;
        end = reply_end(a->pre, a->pre_len);
    }
    arm(a); /* a complete reply: the next one gets its own time */
    if (end == 0 || a->pre[0] != '2' || a->pre[1] != '2' || a->pre[2] != '0' ||
        !greeting_has_quickstart(a->pre, end))
        return 0;
    if (pipeconnect_quickstart_parse_greeting(a->pre, end, 0, &caps) != PIPECONNECT_OK)
        return 0;
    rc = pipeconnect_cache_learn_caps(a->cache, a->key, caps);
    pipeconnect_caps_free(caps);
    keep_cookie(a, a->pre, end);
    if (a->o->verbose)
        fprintf(stderr, "pc-deliver: capabilities in the greeting (QUICKSTART): %s\n",
                rc == PIPECONNECT_OK ? "cached" : pipeconnect_result_message(rc));
    return rc == PIPECONNECT_OK;
}

/* One connection. t0: when the delivery's first connect started. *summary gets the
 * session's summary; returns 0, or -1 when the session could not even begin. */
static int run_attempt(const pipeconnect_cache *cache, const pc_delivery_opts *o,
                       int allow_early, double t0, double deadline, pc_delivery_result *r,
                       pipeconnect_summary *summary)
{
    attempt a;
    pipeconnect_key *key = NULL;
    pipeconnect_intent intent;
    pipeconnect_settings settings;
    pipeconnect_error_detail why;
    pipeconnect_result rc;
    char err[256];
    size_t allowed = 0;
    pipeconnect_reason reason = 0;
    int ret = -1;

    memset(&a, 0, sizeof a);
    a.o = o;
    a.r = r;
    a.cache = cache;
    a.conn.fd = -1;
    a.deadline = deadline;
    memset(summary, 0, sizeof *summary);
    summary->struct_size = sizeof *summary;
    summary->verdict = PIPECONNECT_VERDICT_TEMPFAIL;

    /* The key: server address, port, and the TLS state the cached facts belong to.
     * The session derives the encrypted key itself after STARTTLS. */
    rc = pipeconnect_key_new(o->server_ip, o->port, PIPECONNECT_TLS_CLEARTEXT, &key);
    if (rc != PIPECONNECT_OK) {
        detail(r, "key_new(%s): %s", o->server_ip, pipeconnect_result_message(rc));
        goto out;
    }
    a.key = key;

    memset(&intent, 0, sizeof intent);
    intent.struct_size = sizeof intent;
    intent.ehlo_name = o->ehlo; /* known before connecting: required for an early flight */
    intent.mail_from = o->from;
    intent.rcpts = o->rcpts;
    intent.rcpt_count = o->rcpt_count;
    if (o->starttls)
        intent.flags |= PIPECONNECT_INTENT_STARTTLS;
    if (o->auth_user != NULL) {
        a.auth_ir = plain_response(o->auth_user, o->auth_pass);
        if (a.auth_ir == NULL) {
            detail(r, "out of memory");
            goto out;
        }
        /* PLAIN with an initial response finishes in one round trip, so the library
         * may pipeline MAIL/RCPT after it (RFC 4954 section 4). */
        intent.flags |= PIPECONNECT_INTENT_AUTH | PIPECONNECT_INTENT_AUTH_INITIAL_RESPONSE;
        intent.auth_mechanism = "PLAIN";
    }
    if (o->mode == PC_MODE_ONEFLIGHT) {
        /* BDAT LAST when the server offers CHUNKING: the size is exact, as sent. */
        intent.body_mode = PIPECONNECT_BODY_AUTO;
        intent.body_size = o->message_len;
    } else {
        intent.body_mode = PIPECONNECT_BODY_DATA;
        intent.body_size = dotstuffed_size(o->message, o->message_len);
    }

    memset(&settings, 0, sizeof settings);
    settings.struct_size = sizeof settings;
    if (allow_early && o->mode != PC_MODE_CLASSIC)
        settings.flags |= PIPECONNECT_SETTINGS_EARLY_ALLOWED;
    if (o->relaxed)
        settings.flags |= PIPECONNECT_SETTINGS_RELAXED;

    memset(&why, 0, sizeof why);
    why.struct_size = sizeof why;
    rc = pipeconnect_session_begin(cache, key, &intent, &settings, &a.s, &why);
    if (rc != PIPECONNECT_OK) {
        detail(r, "session_begin: %s (%s)", why.message, why.field);
        goto out;
    }
    if (pipeconnect_session_reason(a.s, &allowed, &reason) == PIPECONNECT_OK)
        r->reason = pipeconnect_reason_name(reason);
    if (o->verbose)
        fprintf(stderr, "pc-deliver: %s:%u early flight: %zu commands (%s)\n", o->server_ip,
                (unsigned)o->port, allowed, r->reason ? r->reason : "?");
    ret = 0;

    /* With --tfo the socket stays unconnected until the first write, so that an early
     * flight leaves with the SYN. The connect and the banner share the first reply's
     * time limit. */
    arm(&a);
    if (pc_conn_open(&a.conn, &o->addr, o->addrlen, o->tfo, a.reply_deadline,
                     o->reply_timeout_ms, err, sizeof err) != 0) {
        conn_failed(&a, err);
        goto finish;
    }
    /* QUICKSTART (never on the classic reconnect). */
    if (o->quickstart && allow_early && o->mode != PC_MODE_CLASSIC) {
        char cookie[PIPECONNECT_QHLO_COOKIE_MAX + 1];
        size_t n = 0;
        a.qs = 1;
        r->quickstart = "none";
        if (allowed == 0) {
            /* Nothing to send before the banner: the greeting may carry the capabilities. */
            int learned = quickstart_greeting_first(&a);
            if (learned < 0)
                goto finish;
            if (learned) {
                /* Begin again: the session now finds the capabilities and releases the
                 * flight at once; it is given the greeting before any other reply. */
                pipeconnect_session_free(a.s);
                a.s = NULL;
                rc = pipeconnect_session_begin(cache, key, &intent, &settings, &a.s, &why);
                if (rc != PIPECONNECT_OK) {
                    detail(r, "session_begin: %s (%s)", why.message, why.field);
                    a.broken = 1;
                    goto finish;
                }
                if (pipeconnect_session_reason(a.s, &allowed, &reason) == PIPECONNECT_OK)
                    r->reason = pipeconnect_reason_name(reason);
                if (allowed > 0) {
                    snprintf(a.qhlo, sizeof a.qhlo, "QHLO %s\r\n", o->ehlo);
                    r->quickstart = "greeting";
                }
            }
        } else if (pipeconnect_cache_qhlo_cookie(cache, key, cookie, sizeof cookie, &n) ==
                       PIPECONNECT_OK &&
                   strlen(o->ehlo) <= 255) {
            /* An early flight, and a cookie from an earlier greeting: QHLO in place of
             * EHLO lets the server skip its greet pause. */
            snprintf(a.qhlo, sizeof a.qhlo, "QHLO %s %s\r\n", o->ehlo, cookie);
            r->quickstart = "cookie";
        }
    }
    for (;;) {
        unsigned char buf[4096];
        const unsigned char *in = buf;
        ssize_t got;
        size_t events = 0;
        bool done = false;

        if (send_released(&a) < 0)
            break;
        if (pipeconnect_session_is_done(a.s, &done) != PIPECONNECT_OK || done)
            break;
        if (a.pre_len > 0) {
            /* QUICKSTART: the greeting read already, given to the session now. */
            in = a.pre;
            got = (ssize_t)a.pre_len;
            a.pre_len = 0;
        } else {
            /* Classic (nothing to send before the banner): connect now. */
            if (pc_conn_connect(&a.conn, err, sizeof err) != 0) {
                conn_failed(&a, err);
                break;
            }
            if (!a.waiting) {
                a.waiting = 1;
                r->waits++;
            }
            got = pc_conn_read(&a.conn, buf, sizeof buf, err, sizeof err);
            if (got <= 0) {
                if (got == 0) {
                    detail(r, "the server closed the connection");
                    a.broken = 1;
                } else {
                    conn_failed(&a, err);
                }
                break;
            }
        }
        /* The bytes exactly as read: the session splits them into replies. */
        rc = pipeconnect_session_feed(a.s, in, (size_t)got, &events);
        /* A complete reply: the next one gets its own time (partial lines do not). */
        if (events > 0)
            arm(&a);
        /* Events queued before an error are still there: handle them first. */
        if (handle_events(&a) != 0) {
            if (a.conn_done && !a.broken && rc == PIPECONNECT_OK)
                drain_body_reply(&a);
            break;
        }
        if (rc != PIPECONNECT_OK) {
            detail(r, "session_feed: %s", pipeconnect_result_message(rc));
            a.broken = 1;
            break;
        }
    }

finish:
    r->tfo_used = r->tfo_used || a.conn.tfo_used;
    r->timed_out = a.timed_out;
    if (a.s == NULL || pipeconnect_session_finish(a.s, summary) != PIPECONNECT_OK)
        summary->verdict = PIPECONNECT_VERDICT_TEMPFAIL;
    /* QUICKSTART: a connection that sent QHLO and failed early drops the cookie with the
     * entry; the reconnect is classic. A flight after the greeting sent nothing early. */
    if (a.qhlo_sent && summary->verdict == PIPECONNECT_VERDICT_RECONNECT &&
        pipeconnect_cache_forget_qhlo_cookie(cache, key) == PIPECONNECT_OK && o->verbose)
        fprintf(stderr, "pc-deliver: QHLO connection failed early: cookie forgotten\n");
    r->after_greeting = a.qhlo_sent && a.greeting_first;
    if (a.accepted) {
        r->ms = a.t_accepted - t0;
        r->t_accepted = a.t_accepted;
        r->server_accepted = 1;
    }
    if (summary->verdict != PIPECONNECT_VERDICT_RECONNECT)
        quit(&a);
    pc_conn_close(&a.conn);
out:
    pipeconnect_session_free(a.s);
    pipeconnect_key_free(key);
    if (a.auth_ir != NULL) {
        memset(a.auth_ir, 0, strlen(a.auth_ir));
        free(a.auth_ir);
    }
    free(a.out.p);
    return ret;
}

enum pc_result pc_deliver(const pipeconnect_cache *cache, const pc_delivery_opts *o,
                          pc_delivery_result *r)
{
    pipeconnect_summary sum;
    double t0, deadline;
    int allow_early = 1;
    int attempt_no;

    memset(r, 0, sizeof *r);
    r->ms = -1;
    r->quickstart = "off";
    r->result = PC_ERROR;
    t0 = now_ms();
    r->t_start = t0;
    /* One deadline for the whole delivery: a reconnect gets only what is left of it. */
    deadline = t0 + o->delivery_timeout_ms;
    for (attempt_no = 0; attempt_no < 2; attempt_no++) {
        if (run_attempt(cache, o, allow_early, t0, deadline, r, &sum) != 0)
            return r->result;
        if (sum.verdict == PIPECONNECT_VERDICT_RECONNECT && attempt_no == 0 &&
            !r->server_accepted && now_ms() >= deadline) {
            char why[sizeof r->detail];
            memcpy(why, r->detail, sizeof why);
            r->timed_out = 1;
            detail(r, "timed out: the delivery's time limit (%d ms) is used up, no "
                      "reconnect (%s)",
                   o->delivery_timeout_ms, why);
            break;
        }
        if (sum.verdict == PIPECONNECT_VERDICT_RECONNECT && attempt_no == 0 &&
            !r->server_accepted) {
            /* Early pipelining failed on this connection (a 554 synchronization error,
             * a bad banner or EHLO reply after the early flight, a broken stream): the
             * entry is gone. Reconnect at once without early pipelining; this is not a
             * failure of the message. */
            if (o->verbose)
                fprintf(stderr, "pc-deliver: early pipelining failed (%s): reconnecting, "
                                "classic\n", r->detail);
            r->reconnected = 1;
            allow_early = 0;
            continue;
        }
        break;
    }
    r->early = (sum.flags & (PIPECONNECT_SUMMARY_CLEARTEXT_EARLY |
                             PIPECONNECT_SUMMARY_ENCRYPTED_EARLY)) != 0;
    /* QHLO right after a capability greeting: the session planned it as an early flight,
     * but nothing went before the banner. */
    if (r->after_greeting && !r->reconnected)
        r->early = 0;
    r->rcpt_accepted = sum.rcpt_accepted;
    r->rcpt_rejected = sum.rcpt_rejected;
    r->rcpt_deferred = sum.rcpt_deferred;
    switch (r->server_accepted ? PIPECONNECT_VERDICT_CONTINUE : sum.verdict) {
    case PIPECONNECT_VERDICT_CONTINUE:
        r->result = r->server_accepted ? PC_OK : PC_TEMPFAIL;
        break;
    case PIPECONNECT_VERDICT_REJECTED:
        r->result = PC_REJECTED;
        break;
    case PIPECONNECT_VERDICT_TEMPFAIL:
        r->result = PC_TEMPFAIL;
        break;
    default: /* HOST_ERROR, or RECONNECT twice */
        r->result = PC_ERROR;
        break;
    }
    /* A time limit is a temporary failure: try again later, whatever the session made of
     * the unfinished connection. */
    if (r->timed_out && !r->server_accepted)
        r->result = PC_TEMPFAIL;
    if (r->result != PC_OK)
        r->ms = -1;
    return r->result;
}
