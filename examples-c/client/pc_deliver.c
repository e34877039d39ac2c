/* pc-deliver: a small SMTP delivery client built on libpipeconnect, the reference
 * integration for MTA developers. See README.md beside this file.
 *
 *   pc-deliver --server ADDR --port N (--store FILE | --memory) --from ADDR --to ADDR...
 *              [--ehlo NAME] [--body-size N | --body-file F] [--mode classic|early|oneflight]
 *              [--starttls] [--auth-plain USER:PASS] [--count K] [--tfo] [--json]
 *              [--relaxed] [--reply-timeout-ms N] [--delivery-timeout-ms N]
 *              [--quit-wait-ms N] [--timestamps] [--no-hold-down] [--verbose]
 *              [--shared redis://HOST:PORT [--shared-prefix P]] [--quickstart]
 *
 * One output line per delivery on stdout:
 *   delivery n=<i> mode=<m> early=<0|1> waits=<w> ms=<float> result=<r> reconnected=<0|1>
 * (with --quickstart, then quickstart=<none|greeting|cookie>)
 * Exit status: 0 when every delivery was accepted, 75 (EX_TEMPFAIL) when the others all
 * failed temporarily (retry later), 1 when one was rejected or failed otherwise, 2 for a
 * bad command line.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pipeconnect.h>

#include "conn.h"
#include "delivery.h"

#define MAX_RCPTS 1000
#define MAX_MESSAGE (64u * 1024u * 1024u)
/* Time limits' defaults, in milliseconds (README.md explains them). */
#define DEFAULT_REPLY_TIMEOUT_MS 30000
#define DEFAULT_DELIVERY_TIMEOUT_MS 300000
#define DEFAULT_QUIT_WAIT_MS 0
/* Exit status when no delivery failed for good but some must be retried (sysexits.h). */
#define EXIT_TEMPFAIL 75

static const char usage[] =
    "usage: pc-deliver --server ADDR --port N (--store FILE | --memory)\n"
    "                  --from ADDR --to ADDR [--to ADDR]... [--ehlo NAME]\n"
    "                  [--body-size N | --body-file F] [--mode classic|early|oneflight]\n"
    "                  [--starttls] [--auth-plain USER:PASS] [--count K] [--tfo]\n"
    "                  [--json] [--relaxed] [--reply-timeout-ms N]\n"
    "                  [--delivery-timeout-ms N] [--quit-wait-ms N] [--timestamps]\n"
    "                  [--no-hold-down] [--shared URL [--shared-prefix P]]\n"
    "                  [--quickstart] [--verbose]\n";

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "pc-deliver: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    exit(2);
}

static unsigned long parse_num(const char *opt, const char *v, unsigned long max)
{
    char *end;
    unsigned long n;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n > max || v[0] == '-')
        die_usage("bad number for %s", opt);
    return n;
}

/* The message: a few header lines, then lines of filler to exactly `size` bytes
 * (never less than the headers and the blank line). CRLF line ends throughout. */
static unsigned char *make_message(const char *from, const char *to, size_t size,
                                   size_t *len_out)
{
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "From: <%s>\r\nTo: <%s>\r\nSubject: pc-deliver test message\r\n"
                      "X-Mailer: pc-deliver (libpipeconnect example)\r\n\r\n",
                      from, to);
    size_t n, pos;
    unsigned char *m;
    if (hl < 0 || (size_t)hl >= sizeof head)
        return NULL;
    n = size < (size_t)hl ? (size_t)hl : size;
    if (n - (size_t)hl == 1)
        n++; /* no line is one byte long */
    m = malloc(n);
    if (m == NULL)
        return NULL;
    memcpy(m, head, (size_t)hl);
    pos = (size_t)hl;
    while (pos < n) {
        /* Lines of 76 letters and CRLF; the last one takes what is left (at least 2). */
        size_t left = n - pos, line = left > 78 ? 78 : left, k;
        if (left > 78 && left - 78 == 1)
            line = 77;
        for (k = 0; k + 2 < line; k++)
            m[pos + k] = (unsigned char)('a' + (pos + k) % 26);
        m[pos + line - 2] = '\r';
        m[pos + line - 1] = '\n';
        pos += line;
    }
    *len_out = n;
    return m;
}

/* A file as the message: LF line ends become CRLF; a final line end is added. */
static unsigned char *read_message(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    unsigned char *m = NULL;
    size_t len = 0, cap = 0;
    int c, prev = 0;
    if (f == NULL) {
        fprintf(stderr, "pc-deliver: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        c = getc(f);
        if (len + 3 > cap) {
            unsigned char *nm;
            cap = cap ? cap * 2 : 4096;
            if (cap > MAX_MESSAGE + 3) {
                fprintf(stderr, "pc-deliver: %s: larger than %u bytes\n", path, MAX_MESSAGE);
                goto fail;
            }
            nm = realloc(m, cap);
            if (nm == NULL)
                goto fail;
            m = nm;
        }
        if (c == EOF)
            break;
        if (c == '\n' && prev != '\r')
            m[len++] = '\r';
        m[len++] = (unsigned char)c;
        prev = c;
    }
    if (ferror(f))
        goto fail;
    if (len == 0 || m[len - 1] != '\n') {
        if (len > 0 && m[len - 1] == '\r') {
            m[len++] = '\n';
        } else {
            m[len++] = '\r';
            m[len++] = '\n';
        }
    }
    fclose(f);
    *len_out = len;
    return m;
fail:
    fclose(f);
    free(m);
    return NULL;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    const char *server = NULL, *port_text = NULL, *store = NULL, *body_file = NULL;
    const char *ehlo = "client.pipeconnect.example", *from = NULL, *auth = NULL;
    const char *rcpts[MAX_RCPTS];
    size_t rcpt_count = 0, body_size = 2048, message_len = 0;
    int memory = 0, json = 0, timestamps = 0, count = 1, i, failures = 0, tempfails = 0;
    int no_hold_down = 0;
    const char *shared = NULL, *shared_prefix = NULL;
    unsigned char *message = NULL;
    char ip[128], err[256], *auth_copy = NULL;
    pc_delivery_opts o;
    pipeconnect_cache *cache = NULL;
    pipeconnect_result rc;

    memset(&o, 0, sizeof o);
    o.mode = PC_MODE_ONEFLIGHT;
    o.reply_timeout_ms = DEFAULT_REPLY_TIMEOUT_MS;
    o.delivery_timeout_ms = DEFAULT_DELIVERY_TIMEOUT_MS;
    o.quit_wait_ms = DEFAULT_QUIT_WAIT_MS;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (die_usage("%s needs a value", a), ""))
        if (strcmp(a, "--server") == 0) {
            server = VALUE();
        } else if (strcmp(a, "--port") == 0) {
            port_text = VALUE();
            o.port = (unsigned short)parse_num(a, port_text, 65535);
            if (o.port == 0)
                die_usage("bad port %s", port_text);
        } else if (strcmp(a, "--store") == 0) {
            store = VALUE();
        } else if (strcmp(a, "--memory") == 0) {
            memory = 1;
        } else if (strcmp(a, "--ehlo") == 0) {
            ehlo = VALUE();
        } else if (strcmp(a, "--from") == 0) {
            from = VALUE();
        } else if (strcmp(a, "--to") == 0) {
            const char *to = VALUE();
            if (rcpt_count == MAX_RCPTS)
                die_usage("at most 1000 recipients (%s)", to);
            rcpts[rcpt_count++] = to;
        } else if (strcmp(a, "--body-size") == 0) {
            body_size = parse_num(a, VALUE(), MAX_MESSAGE);
        } else if (strcmp(a, "--body-file") == 0) {
            body_file = VALUE();
        } else if (strcmp(a, "--mode") == 0) {
            const char *m = VALUE();
            if (strcmp(m, "classic") == 0)
                o.mode = PC_MODE_CLASSIC;
            else if (strcmp(m, "early") == 0)
                o.mode = PC_MODE_EARLY;
            else if (strcmp(m, "oneflight") == 0)
                o.mode = PC_MODE_ONEFLIGHT;
            else
                die_usage("unknown mode %s", m);
        } else if (strcmp(a, "--starttls") == 0) {
            o.starttls = 1;
        } else if (strcmp(a, "--auth-plain") == 0) {
            auth = VALUE();
        } else if (strcmp(a, "--count") == 0) {
            count = (int)parse_num(a, VALUE(), 100000);
        } else if (strcmp(a, "--relaxed") == 0) {
            o.relaxed = 1;
        } else if (strcmp(a, "--tfo") == 0) {
            o.tfo = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--reply-timeout-ms") == 0 || strcmp(a, "--timeout-ms") == 0) {
            /* --timeout-ms: the older name. */
            o.reply_timeout_ms = (int)parse_num(a, VALUE(), 3600000);
        } else if (strcmp(a, "--delivery-timeout-ms") == 0) {
            o.delivery_timeout_ms = (int)parse_num(a, VALUE(), 86400000);
        } else if (strcmp(a, "--quit-wait-ms") == 0) {
            o.quit_wait_ms = (int)parse_num(a, VALUE(), 600000);
        } else if (strcmp(a, "--timestamps") == 0) {
            timestamps = 1;
        } else if (strcmp(a, "--shared") == 0) {
            shared = VALUE();
        } else if (strcmp(a, "--shared-prefix") == 0) {
            shared_prefix = VALUE();
        } else if (strcmp(a, "--no-hold-down") == 0) {
            no_hold_down = 1;
        } else if (strcmp(a, "--quickstart") == 0) {
            /* SMTP QUICKSTART, experimental (README.md). */
            o.quickstart = 1;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o.verbose = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            die_usage("unknown option %s", a);
        }
#undef VALUE
    }
    if (server == NULL || port_text == NULL)
        die_usage("%s", "--server and --port are required");
    if ((store == NULL) == (memory == 0))
        die_usage("%s", "give exactly one of --store FILE and --memory");
    if (from == NULL || rcpt_count == 0)
        die_usage("%s", "--from and at least one --to are required");
    if (count < 1)
        die_usage("%s", "--count must be at least 1");
    if (o.quickstart && o.mode == PC_MODE_CLASSIC)
        die_usage("%s", "--quickstart needs --mode early or oneflight (it is an early flight)");
    if (o.reply_timeout_ms < 1)
        die_usage("%s", "--reply-timeout-ms must be at least 1");
    if (o.delivery_timeout_ms < 1)
        die_usage("%s", "--delivery-timeout-ms must be at least 1");
    if (o.starttls && !pc_conn_tls_available())
        die_usage("%s", "--starttls: this pc-deliver was built without TLS "
                        "(examples-c/client/build.sh --tls)");
    if (auth != NULL) {
        char *colon;
        auth_copy = strdup(auth);
        if (auth_copy == NULL)
            return 1;
        colon = strchr(auth_copy, ':');
        if (colon == NULL)
            die_usage("--auth-plain takes USER:PASS, not %s", auth);
        *colon = '\0';
        o.auth_user = auth_copy;
        o.auth_pass = colon + 1;
    }

    /* The header and the library loaded at run time must agree. */
    if (pipeconnect_version_number() / 100 != PIPECONNECT_VERSION_NUMBER / 100)
        fprintf(stderr, "pc-deliver: warning: built with libpipeconnect %s, running with %s\n",
                PIPECONNECT_VERSION_STRING, pipeconnect_version());

    if (pc_resolve(server, port_text, &o.addr, &o.addrlen, ip, sizeof ip, err, sizeof err)) {
        fprintf(stderr, "pc-deliver: %s\n", err);
        free(auth_copy);
        return 1;
    }
    o.server_ip = ip;
    o.server_name = server;
    o.ehlo = ehlo;
    o.from = from;
    o.rcpts = rcpts;
    o.rcpt_count = rcpt_count;

    message = body_file != NULL ? read_message(body_file, &message_len)
                                : make_message(from, rcpts[0], body_size, &message_len);
    if (message == NULL) {
        fprintf(stderr, "pc-deliver: cannot make the message\n");
        free(auth_copy);
        return 1;
    }
    o.message = message;
    o.message_len = message_len;

    /* The cache. A store file is shared by every process that opens it (a forking MTA's
     * delivery processes, or successive runs of this program); --memory lives only as
     * long as this process. */
    if (store != NULL)
        rc = pipeconnect_cache_open(store, NULL, &cache, NULL);
    else
        rc = pipeconnect_cache_new(0, 0, &cache);
    if (rc != PIPECONNECT_OK) {
        fprintf(stderr, "pc-deliver: cache %s: %s\n", store ? store : "(memory)",
                pipeconnect_result_message(rc));
        free(message);
        free(auth_copy);
        return 1;
    }

    /* --shared URL: a Redis behind the cache, shared by a fleet of hosts (docs/FLEET.md).
     * A failure to attach is reported and the delivery goes on with the local cache. */
    if (shared != NULL) {
        pipeconnect_shared_options so;
        pipeconnect_error_detail d;
        memset(&so, 0, sizeof so);
        so.struct_size = sizeof so;
        so.flags = PIPECONNECT_SHARED_ACROSS_LOCAL_ADDRESSES;
        so.key_prefix = shared_prefix;
        memset(&d, 0, sizeof d);
        d.struct_size = sizeof d;
        rc = pipeconnect_cache_attach_shared(cache, shared, &so, &d);
        if (rc != PIPECONNECT_OK)
            fprintf(stderr, "pc-deliver: shared tier not attached (%s): %s\n", d.field,
                    d.message);
    }

    /* --no-hold-down (for comparisons): early flights go even to a server that refused
     * one not long ago (docs/RULES.md, "Hold-down"). */
    if (no_hold_down) {
        pipeconnect_hold_down hd;
        memset(&hd, 0, sizeof hd);
        hd.struct_size = sizeof hd;
        hd.flags = PIPECONNECT_HOLD_DOWN_OFF;
        rc = pipeconnect_cache_set_hold_down(cache, &hd);
        if (rc != PIPECONNECT_OK) {
            fprintf(stderr, "pc-deliver: cannot turn the hold-down off: %s\n",
                    pipeconnect_result_message(rc));
            return 1;
        }
    }

    for (i = 1; i <= count; i++) {
        pc_delivery_result r;
        pc_deliver(cache, &o, &r);
        if (r.result != PC_OK) {
            failures++;
            tempfails += r.result == PC_TEMPFAIL;
            fprintf(stderr, "pc-deliver: delivery %d: %s: %s\n", i, pc_result_name(r.result),
                    r.detail[0] ? r.detail : "(no detail)");
        }
        if (json) {
            printf("{\"n\":%d,\"mode\":\"%s\",\"early\":%d,\"waits\":%u,\"ms\":%.3f,"
                   "\"result\":\"%s\",\"reconnected\":%d,\"tfo\":%d,\"rcpt_accepted\":%zu,"
                   "\"rcpt_rejected\":%zu,\"rcpt_deferred\":%zu,\"reason\":",
                   i, pc_mode_name(o.mode), r.early, r.waits, r.ms, pc_result_name(r.result),
                   r.reconnected, r.tfo_used, r.rcpt_accepted, r.rcpt_rejected,
                   r.rcpt_deferred);
            json_string(r.reason ? r.reason : "");
            printf(",\"detail\":");
            json_string(r.detail);
            if (o.quickstart) {
                printf(",\"quickstart\":");
                json_string(r.quickstart);
            }
            if (timestamps)
                printf(",\"t_start\":%.6f,\"t_accepted\":%.6f", r.t_start / 1000.0,
                       r.t_accepted / 1000.0);
            printf("}\n");
        } else {
            printf("delivery n=%d mode=%s early=%d waits=%u ms=%.3f result=%s reconnected=%d",
                   i, pc_mode_name(o.mode), r.early, r.waits, r.ms, pc_result_name(r.result),
                   r.reconnected);
            if (o.quickstart)
                printf(" quickstart=%s", r.quickstart);
            /* CLOCK_MONOTONIC seconds (Python's time.monotonic() on Linux): when the
             * delivery began and when its final 250 was read (0 when none). */
            if (timestamps)
                printf(" t_start=%.6f t_accepted=%.6f", r.t_start / 1000.0,
                       r.t_accepted / 1000.0);
            printf("\n");
        }
        fflush(stdout);
    }

    pipeconnect_cache_free(cache);
    free(message);
    if (auth_copy != NULL) {
        memset(auth_copy, 0, strlen(auth_copy));
        free(auth_copy);
    }
    if (failures == 0)
        return 0;
    return failures == tempfails ? EXIT_TEMPFAIL : 1;
}
