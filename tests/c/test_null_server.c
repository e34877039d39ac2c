/* test_null_server.c: every pointer argument of the server functions NULL in turn must
 * give PIPECONNECT_ERR_NULL_POINTER (never a crash), and write no output. */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"

static pipeconnect_prebanner *PB;
static pipeconnect_prebanner_options OPTIONS = {sizeof(pipeconnect_prebanner_options),
                                                PIPECONNECT_PREBANNER_OPTION_OFFERED, 0, 0, 0};
static pipeconnect_prebanner *NEW_PB;
static pipeconnect_prebanner_verdict VERDICT;
static const uint8_t DATA[] = "EHLO c\r\n";
static const uint8_t GREETING[] = "220-mx\r\n220-PIPELINING\r\n220 QHLO=abcd\r\n";
static const uint8_t SECRET[] = "0123456789abcdef0123456789abcdef";
static pipeconnect_caps *NEW_CAPS;
static char BUF[64];
static size_t SZ;
static bool VALID;
static uint8_t KEY_OUT[PIPECONNECT_QHLO_SECRET_LEN];

#define P(i, p) ((which) == (i) ? NULL : (p))

static pipeconnect_result prebanner_new(int which) {
    return pipeconnect_server_prebanner_new(P(0, &OPTIONS), P(1, &NEW_PB));
}
static pipeconnect_result prebanner_feed(int which) {
    return pipeconnect_server_prebanner_feed(P(0, PB), P(1, DATA), 8);
}
static pipeconnect_result prebanner_verdict(int which) {
    return pipeconnect_server_prebanner_verdict(P(0, PB), P(1, &VERDICT));
}
static pipeconnect_result classify(int which) {
    return pipeconnect_server_classify(P(0, &OPTIONS), P(1, DATA), 8, P(2, &VERDICT));
}

static pipeconnect_result parse_greeting(int which) {
    return pipeconnect_quickstart_parse_greeting(P(0, GREETING), sizeof GREETING - 1, 0,
                                                 P(1, &NEW_CAPS));
}
static pipeconnect_result greeting_cookie(int which) {
    return pipeconnect_quickstart_greeting_cookie(P(0, GREETING), sizeof GREETING - 1, P(1, BUF),
                                                  sizeof BUF, P(2, &SZ));
}
static pipeconnect_result qhlo_cookie(int which) {
    return pipeconnect_server_qhlo_cookie(P(0, SECRET), 32, P(1, "192.0.2.1"), 7, P(2, BUF),
                                          sizeof BUF, P(3, &SZ));
}
static pipeconnect_result qhlo_cookie_valid(int which) {
    return pipeconnect_server_qhlo_cookie_valid(P(0, SECRET), 32, P(1, "192.0.2.1"), 7,
                                                P(2, "abcd"), P(3, &VALID));
}
static pipeconnect_result qhlo_epoch_secret(int which) {
    return pipeconnect_server_qhlo_epoch_secret(P(0, SECRET), 32, 1, P(1, KEY_OUT),
                                                sizeof KEY_OUT);
}

struct row {
    const char *name;
    pipeconnect_result (*call)(int which);
    int pointers;
};

static const struct row ROWS[] = {
    {"pipeconnect_server_prebanner_new", prebanner_new, 2},
    {"pipeconnect_server_prebanner_feed", prebanner_feed, 2},
    {"pipeconnect_server_prebanner_verdict", prebanner_verdict, 2},
    {"pipeconnect_server_classify", classify, 3},
    {"pipeconnect_quickstart_parse_greeting", parse_greeting, 2},
    {"pipeconnect_quickstart_greeting_cookie", greeting_cookie, 3},
    {"pipeconnect_server_qhlo_cookie", qhlo_cookie, 4},
    {"pipeconnect_server_qhlo_cookie_valid", qhlo_cookie_valid, 4},
    {"pipeconnect_server_qhlo_epoch_secret", qhlo_epoch_secret, 2},
};

static void preset(void) {
    NEW_PB = (pipeconnect_prebanner *)&OPTIONS;
    NEW_CAPS = (pipeconnect_caps *)&OPTIONS;
    memset(BUF, 'z', sizeof BUF);
    SZ = 4242;
    VALID = true;
    memset(KEY_OUT, 0x5a, sizeof KEY_OUT);
    memset(&VERDICT, 0x5a, sizeof VERDICT);
    VERDICT.struct_size = sizeof VERDICT;
}

static int untouched(void) {
    pipeconnect_prebanner_verdict v;
    memset(&v, 0x5a, sizeof v);
    v.struct_size = sizeof v;
    size_t i;
    for (i = 0; i < sizeof KEY_OUT; i++) {
        if (KEY_OUT[i] != 0x5a) return 0;
    }
    return NEW_PB == (pipeconnect_prebanner *)&OPTIONS && memcmp(&VERDICT, &v, sizeof v) == 0 &&
           NEW_CAPS == (pipeconnect_caps *)&OPTIONS && BUF[0] == 'z' && SZ == 4242 && VALID;
}

int main(void) {
    size_t r;
    int w;
    pipeconnect_prebanner_verdict v = {.struct_size = sizeof v};

    CHECK_RESULT(pipeconnect_server_prebanner_new(&OPTIONS, &PB), PIPECONNECT_OK);
    for (r = 0; r < sizeof ROWS / sizeof ROWS[0]; r++) {
        for (w = 0; w < ROWS[r].pointers; w++) {
            pipeconnect_result got;
            preset();
            got = ROWS[r].call(w);
            if (got != PIPECONNECT_ERR_NULL_POINTER) {
                fprintf(stderr, "%s with pointer argument %d NULL returned %d\n", ROWS[r].name,
                        w, (int)got);
            }
            CHECK(got == PIPECONNECT_ERR_NULL_POINTER);
            CHECK(untouched());
        }
    }
    /* The NULL feeds left the classifier as it was: nothing fed. */
    CHECK_RESULT(pipeconnect_server_prebanner_verdict(PB, &v), PIPECONNECT_OK);
    CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_NOTHING && v.bytes == 0);
    pipeconnect_server_prebanner_free(PB);
    pipeconnect_server_prebanner_free(NULL);
    CHECK_DONE();
}
