/* conn: the socket side of pc-deliver. TCP with absolute deadlines, optional TCP Fast
 * Open for the first write, and (when built with PC_WITH_TLS) STARTTLS through the
 * example tls_stream (examples-c/tls).
 *
 * Time limits are deadlines, not idle timeouts: every blocking step (connect, read,
 * write) waits with poll() for at most the time left until c->deadline_ms, so a server
 * that trickles a byte now and then cannot stretch a wait (SO_RCVTIMEO would restart
 * with every byte). The caller moves the deadline (pc_conn_set_deadline) as the
 * conversation goes on.
 *
 * An MTA has all of this already; libpipeconnect never touches sockets or TLS. It is
 * kept apart from delivery.c so that the library calls stand out there.
 */
#ifndef PC_CONN_H
#define PC_CONN_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct tls_stream;

typedef struct pc_conn {
    int fd;
    /* Non-NULL once STARTTLS has completed its handshake. */
    struct tls_stream *tls;
    /* Where to connect (a resolved numeric address). */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* TCP Fast Open asked for and the socket not connected yet: the first write goes
     * with sendto(MSG_FASTOPEN), carrying the data in the SYN when the kernel and the
     * server allow it. */
    int tfo_pending;
    /* Whether the data of the first write really left with sendto(MSG_FASTOPEN). */
    int tfo_used;
    int connected;
    /* When the current wait ends: CLOCK_MONOTONIC in milliseconds (pc_conn_now_ms());
     * 0: no limit. */
    double deadline_ms;
    /* Writes that make progress may go on this long after their last progress (a large
     * body on a slow link), never past deadline_ms. */
    int write_idle_ms;
    /* The last failure was the deadline passing (errno ETIMEDOUT). */
    int timed_out;
} pc_conn;

/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline. */
double pc_conn_now_ms(void);

/* Set when the waits from now on end (0: no limit). */
void pc_conn_set_deadline(pc_conn *c, double deadline_ms);

/* Resolve host (an IP address or a name) and port into *addr; write the numeric
 * address text into ip (for the cache key). 0 on success, -1 with a message in err. */
int pc_resolve(const char *host, const char *port, struct sockaddr_storage *addr,
               socklen_t *addrlen, char *ip, size_t iplen, char *err, size_t errlen);

/* Open a TCP socket to addr. With tfo, the socket is left unconnected and the first
 * pc_conn_write() connects it (sendto with MSG_FASTOPEN, falling back to connect() and
 * write() when the kernel refuses); call pc_conn_connect() first when there is nothing
 * to send before the server speaks. The connect waits until deadline_ms at most.
 * 0 on success, -1 with a message. */
int pc_conn_open(pc_conn *c, const struct sockaddr_storage *addr, socklen_t addrlen,
                 int tfo, double deadline_ms, int write_idle_ms, char *err, size_t errlen);

/* Connect now if the socket is still waiting for its first write (TFO). */
int pc_conn_connect(pc_conn *c, char *err, size_t errlen);

/* Write all len bytes (through TLS once started). 0 on success, -1 with a message. */
int pc_conn_write(pc_conn *c, const void *buf, size_t len, char *err, size_t errlen);

/* Read what is available, waiting until the deadline at most for at least one byte.
 * Returns the number of bytes (> 0), 0 when the server closed the connection, -1 on
 * error or when the deadline passed (c->timed_out set), with a message. */
ssize_t pc_conn_read(pc_conn *c, void *buf, size_t len, char *err, size_t errlen);

/* Bytes already received but not yet handed out: only TLS buffers any. */
size_t pc_conn_pending(pc_conn *c);

/* Start TLS on the connected socket (after "220" to STARTTLS). 0 on success, -1 with a
 * message; without PC_WITH_TLS always -1. */
int pc_conn_starttls(pc_conn *c, const char *server_name, char *err, size_t errlen);

/* Whether this build can do STARTTLS. */
int pc_conn_tls_available(void);

/* Half-close: nothing more goes to the server (TLS close_notify first when TLS is on,
 * then shutdown(SHUT_WR), the TCP FIN); what the server still sends can be read.
 * 0 on success, -1 when the socket refused. */
int pc_conn_half_close(pc_conn *c);

/* Close the connection (TLS close_notify first when TLS is on). Safe to call twice. */
void pc_conn_close(pc_conn *c);

#endif /* PC_CONN_H */
