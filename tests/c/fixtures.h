/* fixtures.h: what several C tests share: Exim 4.96's real EHLO reply and a key maker
 * that counts its own failure as a CHECK. Include after check.h and pipeconnect.h. */
#ifndef PIPECONNECT_TEST_FIXTURES_H
#define PIPECONNECT_TEST_FIXTURES_H

#include <string.h>

/* Exim 4.96's EHLO reply, as received on loopback. */
static const char EXIM_EHLO[] =
    "250-mx.test.example Hello client.test [127.0.0.1]\r\n"
    "250-SIZE 52428800\r\n"
    "250-8BITMIME\r\n"
    "250-PIPELINING\r\n"
    "250-PIPECONNECT\r\n"
    "250-AUTH PLAIN\r\n"
    "250-CHUNKING\r\n"
    "250-STARTTLS\r\n"
    "250-SMTPUTF8\r\n"
    "250 HELP\r\n";
#define EXIM_EHLO_BYTES ((const uint8_t *)EXIM_EHLO)
#define EXIM_EHLO_LEN strlen(EXIM_EHLO)

/* A new key, or NULL with a failed CHECK. */
static pipeconnect_key *key(const char *addr, uint16_t port, pipeconnect_tls_state tls) {
    pipeconnect_key *k = NULL;
    CHECK_RESULT(pipeconnect_key_new(addr, port, tls, &k), PIPECONNECT_OK);
    return k;
}

#endif
