/* Smoke test: the rustls-ffi static library links and its C API works.
 * Builds a client config (with the test-only "accept any certificate"
 * verifier), creates a connection object for a server name, frees it all.
 *
 *   gcc -Wall -Wextra -Werror -Iinclude smoke.c target/release/librustls_ffi_static.a \
 *       -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o smoke && ./smoke
 */
#include <stdio.h>
#include <string.h>

#include "rustls.h"

static uint32_t accept_any(void *userdata, const rustls_verify_server_cert_params *p)
{
    (void)userdata;
    (void)p;
    return RUSTLS_RESULT_OK; /* TEST ONLY: no certificate verification */
}

static int fail(const char *what, rustls_result r)
{
    char buf[256];
    size_t n = 0;
    rustls_error((unsigned int)r, buf, sizeof buf - 1, &n);
    buf[n] = '\0';
    fprintf(stderr, "smoke: %s: %s\n", what, buf);
    return 1;
}

int main(void)
{
    rustls_str v = rustls_version();
    printf("%.*s\n", (int)v.len, v.data);

    /* 1. a builder created and freed without building */
    struct rustls_client_config_builder *b = rustls_client_config_builder_new();
    if (b == NULL) {
        fprintf(stderr, "smoke: rustls_client_config_builder_new returned NULL\n");
        return 1;
    }
    rustls_client_config_builder_free(b);

    /* 2. a builder built into a config, a connection made from it */
    b = rustls_client_config_builder_new();
    rustls_result r = rustls_client_config_builder_dangerous_set_certificate_verifier(b, accept_any);
    if (r != RUSTLS_RESULT_OK) {
        rustls_client_config_builder_free(b);
        return fail("dangerous_set_certificate_verifier", r);
    }
    const struct rustls_client_config *cfg = NULL;
    r = rustls_client_config_builder_build(b, &cfg); /* consumes b */
    if (r != RUSTLS_RESULT_OK)
        return fail("client_config_builder_build", r);

    struct rustls_connection *conn = NULL;
    r = rustls_client_connection_new(cfg, "mx.test.example", &conn);
    rustls_client_config_free(cfg); /* the connection keeps its own reference */
    if (r != RUSTLS_RESULT_OK)
        return fail("client_connection_new", r);
    if (!rustls_connection_is_handshaking(conn) || !rustls_connection_wants_write(conn)) {
        fprintf(stderr, "smoke: new connection is not ready to send a ClientHello\n");
        rustls_connection_free(conn);
        return 1;
    }
    rustls_connection_free(conn);
    printf("smoke: OK\n");
    return 0;
}
