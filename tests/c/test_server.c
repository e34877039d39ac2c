/* test_server.c: the pre-banner classifier from C, as a receiving MTA calls it: the
 * early flight of a client offered PIPECONNECT, fed in pieces; the same bytes from a
 * client not offered it; pregreet and banner-first input; limits; bad options; names. */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"

static pipeconnect_prebanner_options options(uint32_t flags) {
    pipeconnect_prebanner_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.flags = flags;
    return o;
}

static pipeconnect_prebanner_verdict classify(uint32_t flags, const char *input) {
    pipeconnect_prebanner_options o = options(flags);
    pipeconnect_prebanner_verdict v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)input, strlen(input), &v),
                 PIPECONNECT_OK);
    return v;
}

static const char FLIGHT[] = "EHLO client.test\r\nMAIL FROM:<a@client.test> SIZE=5\r\n"
                             "RCPT TO:<b@sink.test>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n";

static void fed_in_pieces(void) {
    pipeconnect_prebanner_options o = options(PIPECONNECT_PREBANNER_OPTION_OFFERED);
    pipeconnect_prebanner *pb = NULL;
    pipeconnect_prebanner_verdict v = {.struct_size = sizeof v};
    size_t i, len = strlen(FLIGHT);

    CHECK_RESULT(pipeconnect_server_prebanner_new(&o, &pb), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_server_prebanner_verdict(pb, &v), PIPECONNECT_OK);
    CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_NOTHING);
    /* Three bytes at a time: the verdict along the way is an early flight in progress. */
    for (i = 0; i < len; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        CHECK_RESULT(pipeconnect_server_prebanner_feed(pb, (const uint8_t *)FLIGHT + i, n),
                     PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_server_prebanner_verdict(pb, &v), PIPECONNECT_OK);
        CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_EARLY_FLIGHT);
    }
    CHECK(v.reason == PIPECONNECT_PREBANNER_REASON_NONE);
    CHECK(v.commands == 4);
    CHECK(v.bytes == len);
    CHECK(v.flags == 0);
    /* An empty feed is fine (non-NULL data). */
    CHECK_RESULT(pipeconnect_server_prebanner_feed(pb, (const uint8_t *)"", 0), PIPECONNECT_OK);
    /* Anything after QUIT: banner first, and decided. */
    CHECK_RESULT(pipeconnect_server_prebanner_feed(pb, (const uint8_t *)"NOOP\r\n", 6),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_server_prebanner_verdict(pb, &v), PIPECONNECT_OK);
    CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_BANNER_FIRST);
    CHECK(v.reason == PIPECONNECT_PREBANNER_REASON_AFTER_QUIT);
    CHECK(v.flags & PIPECONNECT_PREBANNER_VERDICT_DECIDED);
    pipeconnect_server_prebanner_free(pb);
}

static void table(void) {
    const uint32_t OFF = PIPECONNECT_PREBANNER_OPTION_OFFERED;
    static const struct {
        uint32_t flags;
        const char *input;
        pipeconnect_prebanner_class class_;
        pipeconnect_prebanner_reason reason;
    } rows[] = {
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "", PIPECONNECT_PREBANNER_CLASS_NOTHING,
         PIPECONNECT_PREBANNER_REASON_NONE},
        {0, "", PIPECONNECT_PREBANNER_CLASS_NOTHING, PIPECONNECT_PREBANNER_REASON_NONE},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "EHLO c\r\nSTARTTLS\r\n",
         PIPECONNECT_PREBANNER_CLASS_EARLY_FLIGHT, PIPECONNECT_PREBANNER_REASON_NONE},
        {0, "EHLO c\r\n", PIPECONNECT_PREBANNER_CLASS_PREGREET,
         PIPECONNECT_PREBANNER_REASON_NOT_OFFERED},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "HELO bot\r\n", PIPECONNECT_PREBANNER_CLASS_PREGREET,
         PIPECONNECT_PREBANNER_REASON_HELO_FIRST},
        {0, "MAIL FROM:<x@y>\r\n", PIPECONNECT_PREBANNER_CLASS_PREGREET,
         PIPECONNECT_PREBANNER_REASON_COMMAND_FIRST},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "\x16\x03\x01", PIPECONNECT_PREBANNER_CLASS_PREGREET,
         PIPECONNECT_PREBANNER_REASON_NOT_SMTP},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "EHLO c\r\nRCPT TO:<x@y>\r\n",
         PIPECONNECT_PREBANNER_CLASS_PREGREET, PIPECONNECT_PREBANNER_REASON_OUT_OF_ORDER},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<x>\r\nDATA\r\nbody",
         PIPECONNECT_PREBANNER_CLASS_PREGREET, PIPECONNECT_PREBANNER_REASON_BODY_BEFORE_REPLY},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "EHLO c\r\nSTARTTLS\r\n\x16\x03\x01",
         PIPECONNECT_PREBANNER_CLASS_BANNER_FIRST, PIPECONNECT_PREBANNER_REASON_AFTER_STARTTLS},
        {PIPECONNECT_PREBANNER_OPTION_OFFERED, "EHLO c\r\nRSET\r\n", PIPECONNECT_PREBANNER_CLASS_BANNER_FIRST,
         PIPECONNECT_PREBANNER_REASON_NOT_EARLY_COMMAND},
    };
    size_t i;
    (void)OFF;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pipeconnect_prebanner_verdict v = classify(rows[i].flags, rows[i].input);
        if (v.class_ != rows[i].class_ || v.reason != rows[i].reason) {
            fprintf(stderr, "row %zu: got %s/%s\n", i, pipeconnect_server_class_name(v.class_),
                    pipeconnect_server_reason_name(v.reason));
        }
        CHECK(v.class_ == rows[i].class_);
        CHECK(v.reason == rows[i].reason);
    }
    /* A first line still arriving. */
    {
        pipeconnect_prebanner_verdict v = classify(OFF, "EHLO cli");
        CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_EARLY_FLIGHT);
        CHECK(v.flags == PIPECONNECT_PREBANNER_VERDICT_INCOMPLETE);
    }
}

static void limits(void) {
    pipeconnect_prebanner_options o = options(PIPECONNECT_PREBANNER_OPTION_OFFERED);
    pipeconnect_prebanner_verdict v = {.struct_size = sizeof v};
    o.max_bytes = 10;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)FLIGHT, strlen(FLIGHT), &v),
                 PIPECONNECT_OK);
    CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_BANNER_FIRST);
    CHECK(v.reason == PIPECONNECT_PREBANNER_REASON_TOO_MUCH_INPUT);
    CHECK(v.bytes == 10);
    o = options(PIPECONNECT_PREBANNER_OPTION_OFFERED);
    o.max_commands = 2;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)FLIGHT, strlen(FLIGHT), &v),
                 PIPECONNECT_OK);
    CHECK(v.reason == PIPECONNECT_PREBANNER_REASON_TOO_MANY_COMMANDS);
    CHECK(v.commands == 2);
    o = options(PIPECONNECT_PREBANNER_OPTION_OFFERED);
    o.max_body = 4;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)FLIGHT, strlen(FLIGHT), &v),
                 PIPECONNECT_OK);
    CHECK(v.reason == PIPECONNECT_PREBANNER_REASON_BODY_TOO_LARGE);
}

static void bad_input(void) {
    pipeconnect_prebanner_options o = options(PIPECONNECT_PREBANNER_OPTION_OFFERED | 8);
    pipeconnect_prebanner_verdict v = {.struct_size = sizeof v};
    pipeconnect_prebanner *pb = NULL;
    CHECK_RESULT(pipeconnect_server_prebanner_new(&o, &pb), PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(pb == NULL);
    o = options(0);
    o.max_commands = 5000;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)"", 0, &v),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    o = options(0);
    o.struct_size = 0;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)"", 0, &v),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    o = options(0);
    v.struct_size = 3;
    CHECK_RESULT(pipeconnect_server_classify(&o, (const uint8_t *)"", 0, &v),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
}

static void names(void) {
    CHECK(strcmp(pipeconnect_server_class_name(PIPECONNECT_PREBANNER_CLASS_PREGREET), "PREGREET") == 0);
    CHECK(strcmp(pipeconnect_server_class_name(99), "UNKNOWN") == 0);
    CHECK(strcmp(pipeconnect_server_reason_name(PIPECONNECT_PREBANNER_REASON_AFTER_STARTTLS),
                 "AFTER_STARTTLS") == 0);
    CHECK(strcmp(pipeconnect_server_reason_name(99), "UNKNOWN") == 0);
}

/* SMTP QUICKSTART (experimental): a greeting with capabilities and a cookie, learned like
 * an EHLO reply; the cookie made, recognised, and refused under another secret. */
static void quickstart(void) {
    static const char ehlo[] = "250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 QUICKSTART\r\n";
    static const uint8_t master[] = "the server's master secret, 32 b";
    uint8_t s1[PIPECONNECT_QHLO_SECRET_LEN], s2[PIPECONNECT_QHLO_SECRET_LEN];
    pipeconnect_caps *own = NULL, *greeted = NULL, *looked_up = NULL;
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *key = NULL;
    uint64_t fp = 0, fp2 = 0;
    char cookie[PIPECONNECT_QHLO_COOKIE_LEN + 1], got[64], greeting[256];
    size_t n = 0;
    bool valid = false, has = false;

    CHECK_RESULT(pipeconnect_server_qhlo_epoch_secret(master, 32, 100, s1, sizeof s1),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_server_qhlo_epoch_secret(master, 32, 101, s2, sizeof s2),
                 PIPECONNECT_OK);
    CHECK(memcmp(s1, s2, sizeof s1) != 0);
    CHECK_RESULT(pipeconnect_server_qhlo_epoch_secret(master, 32, 100, s2, 31),
                 PIPECONNECT_ERR_BUFFER_TOO_SMALL);
    /* The server: the fingerprint of its own keyword list, the cookie for this client. */
    CHECK_RESULT(pipeconnect_caps_parse((const uint8_t *)ehlo, strlen(ehlo), 0, &own),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_caps_fingerprint(own, &fp), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie(s1, sizeof s1, "192.0.2.1", fp, cookie,
                                                sizeof cookie, &n),
                 PIPECONNECT_OK);
    CHECK(n == PIPECONNECT_QHLO_COOKIE_LEN && strlen(cookie) == n);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie(s1, sizeof s1, "192.0.2.1", fp, got, 32, &n),
                 PIPECONNECT_ERR_BUFFER_TOO_SMALL);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie(s1, 8, "192.0.2.1", fp, got, sizeof got, &n),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie(s1, sizeof s1, "mx.example", fp, got,
                                                sizeof got, &n),
                 PIPECONNECT_ERR_INVALID_ADDRESS);
    snprintf(greeting, sizeof greeting,
             "220-mx ESMTP\r\n220-PIPELINING\r\n220-PIPECONNECT\r\n220-QUICKSTART\r\n"
             "220 QHLO=%s\r\n", cookie);
    /* The client: capabilities from the greeting, cached under the usual key. */
    CHECK_RESULT(pipeconnect_quickstart_parse_greeting((const uint8_t *)greeting,
                                                       strlen(greeting), 0, &greeted),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_caps_fingerprint(greeted, &fp2), PIPECONNECT_OK);
    CHECK(fp2 == fp);
    CHECK_RESULT(pipeconnect_caps_has(greeted, PIPECONNECT_EXT_PIPECONNECT, &has), PIPECONNECT_OK);
    CHECK(has);
    CHECK_RESULT(pipeconnect_cache_new(16, 3600, &cache), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_key_new("192.0.2.25", 25, PIPECONNECT_TLS_CLEARTEXT, &key),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_learn_caps(cache, key, greeted), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_lookup(cache, key, &looked_up), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_quickstart_greeting_cookie((const uint8_t *)greeting,
                                                        strlen(greeting), got, sizeof got, &n),
                 PIPECONNECT_OK);
    CHECK(strcmp(got, cookie) == 0);
    /* The client keeps the cookie in the cache, beside the capabilities, untouched by them. */
    {
        char kept[PIPECONNECT_QHLO_COOKIE_MAX + 1], tiny[4], longer[PIPECONNECT_QHLO_COOKIE_MAX + 2];
        pipeconnect_key *tls_key = NULL;
        pipeconnect_caps *again = NULL;
        uint64_t fp3 = 0;
        CHECK_RESULT(pipeconnect_cache_qhlo_cookie(cache, key, kept, sizeof kept, &n),
                     PIPECONNECT_NOT_FOUND);
        CHECK_RESULT(pipeconnect_cache_learn_qhlo_cookie(cache, key, got), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_qhlo_cookie(cache, key, kept, sizeof kept, &n),
                     PIPECONNECT_OK);
        CHECK(n == strlen(cookie) && strcmp(kept, cookie) == 0);
        CHECK_RESULT(pipeconnect_cache_qhlo_cookie(cache, key, tiny, sizeof tiny, &n),
                     PIPECONNECT_ERR_BUFFER_TOO_SMALL);
        /* The same cookie for the encrypted state: it goes before the banner. */
        CHECK_RESULT(pipeconnect_key_new("192.0.2.25", 25, PIPECONNECT_TLS_ENCRYPTED, &tls_key),
                     PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_qhlo_cookie(cache, tls_key, kept, sizeof kept, &n),
                     PIPECONNECT_OK);
        CHECK(strcmp(kept, cookie) == 0);
        /* The capabilities and their fingerprint are as learned. */
        CHECK_RESULT(pipeconnect_cache_lookup(cache, key, &again), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_caps_fingerprint(again, &fp3), PIPECONNECT_OK);
        CHECK(fp3 == fp);
        pipeconnect_caps_free(again);
        /* Refused: a space, empty, too long. */
        CHECK_RESULT(pipeconnect_cache_learn_qhlo_cookie(cache, key, "a b"),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK_RESULT(pipeconnect_cache_learn_qhlo_cookie(cache, key, ""),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        memset(longer, 'c', sizeof longer - 1);
        longer[sizeof longer - 1] = 0;
        CHECK_RESULT(pipeconnect_cache_learn_qhlo_cookie(cache, key, longer),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        longer[PIPECONNECT_QHLO_COOKIE_MAX] = 0;
        CHECK_RESULT(pipeconnect_cache_learn_qhlo_cookie(cache, key, longer), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_qhlo_cookie(cache, key, kept, sizeof kept, &n),
                     PIPECONNECT_OK);
        CHECK(n == PIPECONNECT_QHLO_COOKIE_MAX);
        /* Forgetting the capabilities leaves the cookie; forgetting the cookie drops it. */
        CHECK_RESULT(pipeconnect_cache_forget(cache, key), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_forget_qhlo_cookie(cache, key), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_forget_qhlo_cookie(cache, key), PIPECONNECT_NOT_FOUND);
        CHECK_RESULT(pipeconnect_cache_qhlo_cookie(cache, key, kept, sizeof kept, &n),
                     PIPECONNECT_NOT_FOUND);
        pipeconnect_key_free(tls_key);
    }
    CHECK_RESULT(pipeconnect_quickstart_greeting_cookie((const uint8_t *)"220 mx\r\n", 8, got,
                                                        sizeof got, &n),
                 PIPECONNECT_NOT_FOUND);
    CHECK_RESULT(pipeconnect_quickstart_parse_greeting((const uint8_t *)"554 no\r\n", 8, 0,
                                                       &looked_up),
                 PIPECONNECT_ERR_NOT_EHLO_REPLY);
    /* The server again: QHLO with this cookie, from this client, this period or the last. */
    CHECK_RESULT(pipeconnect_server_qhlo_cookie_valid(s1, sizeof s1, "::ffff:192.0.2.1", fp,
                                                      cookie, &valid),
                 PIPECONNECT_OK);
    CHECK(valid);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie_valid(s2, sizeof s2, "192.0.2.1", fp, cookie,
                                                      &valid),
                 PIPECONNECT_OK);
    CHECK(!valid);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie_valid(s1, sizeof s1, "192.0.2.2", fp, cookie,
                                                      &valid),
                 PIPECONNECT_OK);
    CHECK(!valid);
    CHECK_RESULT(pipeconnect_server_qhlo_cookie_valid(s1, sizeof s1, "192.0.2.1", fp + 1, cookie,
                                                      &valid),
                 PIPECONNECT_OK);
    CHECK(!valid);
    /* QHLO before the banner, with the QUICKSTART option only. */
    {
        pipeconnect_prebanner_verdict v;
        char flight[128];
        snprintf(flight, sizeof flight, "QHLO client.test %s\r\nMAIL FROM:<a@b>\r\n", cookie);
        v = classify(PIPECONNECT_PREBANNER_OPTION_OFFERED | PIPECONNECT_PREBANNER_OPTION_QUICKSTART,
                     flight);
        CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_EARLY_FLIGHT);
        v = classify(PIPECONNECT_PREBANNER_OPTION_OFFERED, flight);
        CHECK(v.class_ == PIPECONNECT_PREBANNER_CLASS_PREGREET);
    }
    pipeconnect_caps_free(looked_up);
    pipeconnect_caps_free(greeted);
    pipeconnect_caps_free(own);
    pipeconnect_key_free(key);
    pipeconnect_cache_free(cache);
}

int main(void) {
    fed_in_pieces();
    table();
    limits();
    bad_input();
    names();
    quickstart();
    CHECK_DONE();
}
