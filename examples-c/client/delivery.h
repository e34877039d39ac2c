/* delivery: one message to one server through libpipeconnect's session API. This is
 * the part of pc-deliver an MTA developer copies from; see delivery.c. */
#ifndef PC_DELIVERY_H
#define PC_DELIVERY_H

#include <stddef.h>
#include <sys/socket.h>

#include <pipeconnect.h>

/* How the message goes. */
enum pc_mode {
    /* Never early; RFC 2920 pipelining of MAIL, RCPT, DATA after the EHLO reply. */
    PC_MODE_CLASSIC = 0,
    /* Early flight EHLO..DATA before the banner (when the cache allows); the body
     * after the 354. */
    PC_MODE_EARLY = 1,
    /* BDAT LAST: with CHUNKING cached and a small body, EHLO..BDAT LAST and the body
     * all go before the banner (the library's policy decides how far it goes). */
    PC_MODE_ONEFLIGHT = 2
};

enum pc_result { PC_OK = 0, PC_REJECTED = 1, PC_TEMPFAIL = 2, PC_ERROR = 3 };

typedef struct pc_delivery_opts {
    /* Where: the resolved address, its numeric text (for the cache key), the port, and
     * the name for TLS SNI. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *server_ip;
    const char *server_name;
    unsigned short port;
    /* What. */
    const char *ehlo;
    const char *from;
    const char *const *rcpts;
    size_t rcpt_count;
    const unsigned char *message; /* CRLF line ends, ends with CRLF */
    size_t message_len;
    /* How. */
    enum pc_mode mode;
    int starttls;
    const char *auth_user; /* AUTH PLAIN with an initial response when non-NULL */
    const char *auth_pass;
    /* EP-01's invalidation rule (Exim's): a 4xx/5xx in the transaction keeps the cache
     * entry. Without it, the library's default (the seed's strict rule) drops it. */
    int relaxed;
    int tfo;
    /* Time limits, in milliseconds (see README.md). Each reply must be complete within
     * reply_timeout_ms of the write that asked for it (or of the reply before it); the
     * whole delivery, reconnect included, ends delivery_timeout_ms after it began. A
     * write may go on as long as it makes progress within reply_timeout_ms. */
    int reply_timeout_ms;
    int delivery_timeout_ms;
    /* After QUIT and the half-close, how long to wait for the 221 (0: take it only if it
     * is already there). The delivery's outcome never depends on it. */
    int quit_wait_ms;
    int verbose;
    /* SMTP QUICKSTART (experimental, off unless asked for; docs/RULES.md Part 6): with
     * nothing cached, read the greeting first and, when it carries the capabilities
     * (QUICKSTART), learn them and its QHLO cookie and send QHLO and the transaction at
     * once; with a cached cookie, send QHLO with it in place of the early flight's EHLO.
     * Only in early and oneflight modes, and only where the library releases an early
     * flight. */
    int quickstart;
} pc_delivery_opts;

typedef struct pc_delivery_result {
    enum pc_result result;
    /* The connection that carried the message sent an early flight. */
    int early;
    /* Times the client waited for the server (all connections of the delivery). */
    unsigned waits;
    /* From the start of connect() to the final 250 for the message (first connection
     * on, if there was a reconnect); -1 when the message was not accepted. */
    double ms;
    /* When the delivery began and when the final 250 was read: CLOCK_MONOTONIC in
     * milliseconds (t_accepted 0 when not accepted). */
    double t_start, t_accepted;
    /* A time limit ended the delivery (result PC_TEMPFAIL). */
    int timed_out;
    /* Early pipelining failed and the message went on a new, classic connection. */
    int reconnected;
    /* The server answered the message's BDAT LAST or end of data with a 2xx. */
    int server_accepted;
    /* The first write went with sendto(MSG_FASTOPEN). */
    int tfo_used;
    size_t rcpt_accepted, rcpt_rejected, rcpt_deferred;
    /* Why the (last) early flight stopped where it did: a PIPECONNECT_REASON_* name. */
    const char *reason;
    /* The last failure, for humans. */
    char detail[256];
    /* QUICKSTART (with opts.quickstart): "none" (EHLO as usual), "greeting" (capabilities
     * and cookie learned from the greeting, QHLO right after it) or "cookie" (QHLO with
     * the cached cookie before the banner); "off" without opts.quickstart. */
    const char *quickstart;
    /* The (last) connection sent QHLO right after a capability greeting, nothing before it. */
    int after_greeting;
} pc_delivery_result;

/* Deliver once: one connection, or two when the library advises a reconnect without
 * early pipelining. Fills *r; returns r->result. */
enum pc_result pc_deliver(const pipeconnect_cache *cache, const pc_delivery_opts *o,
                          pc_delivery_result *r);

const char *pc_mode_name(enum pc_mode m);
const char *pc_result_name(enum pc_result r);

#endif /* PC_DELIVERY_H */
