/* tls_stream: a tiny blocking TLS client stream over an already-connected
 * socket, on top of rustls-ffi.  Made for the libpipeconnect C example client
 * and its tests (SMTP STARTTLS against a local test sink).
 *
 * !!! TEST USE ONLY: tls_stream_start() does NOT verify the server's
 * certificate (any certificate is accepted, so that self-signed test sinks
 * work).  The handshake signature is still checked against the presented
 * certificate's key, but nothing ties that key to the server name.  Do not use
 * this for real mail.
 *
 * Threading: one tls_stream must be used by one thread at a time; different
 * streams are independent.  The fd stays owned by the caller: tls_stream_free()
 * does not close it.
 *
 * SMTP note (RFC 3207, and libpipeconnect's injection guard): before calling
 * tls_stream_start() after "220 ready to start TLS", the caller must make sure
 * that its own cleartext input buffer is empty.  Bytes received in cleartext
 * after the 220 must be treated as a hard failure, never as TLS data.
 */
#ifndef PIPECONNECT_EXAMPLE_TLS_STREAM_H
#define PIPECONNECT_EXAMPLE_TLS_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tls_stream tls_stream;

/* Run a TLS client handshake over the connected, blocking socket fd.
 * server_name: host name (sent as SNI) or textual IP address; must be a
 * valid DNS name or IP address, it is not verified (see above).
 * Returns NULL on failure with a NUL-terminated message in err (if err is
 * not NULL and errlen > 0).  The fd is left open in every case. */
tls_stream *tls_stream_start(int fd, const char *server_name, char *err, size_t errlen);

/* Encrypt and send all len bytes.  Returns len, or -1 on error (errno set:
 * EPIPE/ECONNRESET/... from the socket, EPROTO for a TLS error, EINVAL). */
ssize_t tls_stream_write(tls_stream *ts, const void *buf, size_t len);

/* Read up to len plaintext bytes, blocking until at least one is available.
 * Returns the number of bytes read (> 0), 0 when the peer closed the TLS
 * session cleanly (close_notify received), or -1 on error (errno set;
 * ECONNRESET when the TCP connection ended without a close_notify, EPROTO for
 * a TLS error).  A read with len == 0 returns 0 at once. */
ssize_t tls_stream_read(tls_stream *ts, void *buf, size_t len);

/* Plaintext bytes already received, decrypted and buffered, that the next
 * tls_stream_read() returns without touching the socket.  Does not poll the
 * socket. */
size_t tls_stream_pending(tls_stream *ts);

/* Send a TLS close_notify alert (best effort).  Returns 0, or -1 with errno
 * set when it could not be sent.  The stream can still be read afterwards. */
int tls_stream_shutdown(tls_stream *ts);

/* Text of the last error on this stream ("" if none).  Valid until the next
 * call on the stream. */
const char *tls_stream_error(const tls_stream *ts);

/* Negotiated protocol version and cipher suite, e.g. "TLSv1_3" and
 * "TLS13_AES_256_GCM_SHA384" (written into buf, NUL-terminated). */
void tls_stream_describe(const tls_stream *ts, char *buf, size_t buflen);

/* Free the stream (no I/O; the fd is not closed).  NULL is fine. */
void tls_stream_free(tls_stream *ts);

#ifdef __cplusplus
}
#endif

#endif /* PIPECONNECT_EXAMPLE_TLS_STREAM_H */
