/* The in-process cache from C: learn Exim 4.96's real EHLO reply, look it up, and miss
 * for everything the key must distinguish, including after the TTL. */
#include <string.h>
#include "pipeconnect.h"
#include "check.h"
#include "fixtures.h"

static int misses(const pipeconnect_cache *c, const pipeconnect_key *k) {
    pipeconnect_caps *caps = NULL;
    pipeconnect_result r = pipeconnect_cache_lookup(c, k, &caps);
    return r == PIPECONNECT_NOT_FOUND && caps == NULL;
}

int main(void) {
    const uint64_t t0 = 1700000000u;
    const uint64_t ttl = 3600;
    pipeconnect_cache *cache = NULL;
    CHECK(strcmp(pipeconnect_version(), PIPECONNECT_VERSION_STRING) == 0);
    CHECK(pipeconnect_version_number() == PIPECONNECT_VERSION_NUMBER);
    CHECK_RESULT(pipeconnect_cache_new(100, ttl, &cache), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_set_time(cache, t0), PIPECONNECT_OK);

    pipeconnect_key *k = key("192.0.2.1", 25, PIPECONNECT_TLS_CLEARTEXT);
    CHECK(misses(cache, k));
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)EXIM_EHLO, strlen(EXIM_EHLO), 0),
                 PIPECONNECT_OK);

    pipeconnect_caps *caps = NULL;
    CHECK_RESULT(pipeconnect_cache_lookup(cache, k, &caps), PIPECONNECT_OK);
    CHECK(caps != NULL);
    if (caps) {
        const pipeconnect_ext want[] = {PIPECONNECT_EXT_PIPECONNECT, PIPECONNECT_EXT_PIPELINING,
                                        PIPECONNECT_EXT_CHUNKING, PIPECONNECT_EXT_STARTTLS,
                                        PIPECONNECT_EXT_AUTH, PIPECONNECT_EXT_SIZE};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            bool has = false;
            CHECK_RESULT(pipeconnect_caps_has(caps, want[i], &has), PIPECONNECT_OK);
            CHECK(has);
        }
        bool has_dsn = true;
        CHECK_RESULT(pipeconnect_caps_has(caps, PIPECONNECT_EXT_DSN, &has_dsn), PIPECONNECT_OK);
        CHECK(!has_dsn);
        bool plain = false;
        CHECK_RESULT(pipeconnect_caps_has_auth(caps, "plain", &plain), PIPECONNECT_OK);
        CHECK(plain);
        size_t n = 0;
        const char *name = NULL;
        CHECK_RESULT(pipeconnect_caps_auth_count(caps, &n), PIPECONNECT_OK);
        CHECK(n == 1);
        CHECK_RESULT(pipeconnect_caps_auth_name(caps, 0, &name), PIPECONNECT_OK);
        CHECK(name != NULL && strcmp(name, "PLAIN") == 0);
        CHECK_RESULT(pipeconnect_caps_auth_name(caps, 1, &name), PIPECONNECT_ERR_INVALID_ARGUMENT);
        uint64_t size = 0, learned = 0;
        CHECK_RESULT(pipeconnect_caps_size_limit(caps, &size), PIPECONNECT_OK);
        CHECK(size == 52428800u);
        CHECK_RESULT(pipeconnect_caps_learned_at(caps, &learned), PIPECONNECT_OK);
        CHECK(learned == t0);
        /* A bad extension argument is an error, not a silent false. */
        CHECK_RESULT(pipeconnect_caps_has(caps, 0, &plain), PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK_RESULT(pipeconnect_caps_has(caps, PIPECONNECT_EXT_DSN | PIPECONNECT_EXT_SIZE, &plain),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
    }
    pipeconnect_caps_free(caps);

    /* Misses: other TLS state, other port, other address. */
    pipeconnect_key *enc = NULL;
    CHECK_RESULT(pipeconnect_key_with_tls(k, PIPECONNECT_TLS_ENCRYPTED, &enc), PIPECONNECT_OK);
    pipeconnect_key *p587 = key("192.0.2.1", 587, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_key *other = key("192.0.2.2", 25, PIPECONNECT_TLS_CLEARTEXT);
    CHECK(misses(cache, enc));
    CHECK(misses(cache, p587));
    CHECK(misses(cache, other));

    /* The TTL: live one second before, gone at the TTL. */
    CHECK_RESULT(pipeconnect_cache_set_time(cache, t0 + ttl - 1), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_lookup(cache, k, &caps), PIPECONNECT_OK);
    pipeconnect_caps_free(caps);
    CHECK_RESULT(pipeconnect_cache_set_time(cache, t0 + ttl), PIPECONNECT_OK);
    CHECK(misses(cache, k));
    pipeconnect_cache_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RESULT(pipeconnect_cache_get_stats(cache, &st), PIPECONNECT_OK);
    CHECK(st.expirations == 1);
    CHECK(st.entries == 0);
    CHECK(st.hits == 2);

    /* Two spellings of one IPv6 address are one key. */
    CHECK_RESULT(pipeconnect_cache_set_time(cache, t0), PIPECONNECT_OK);
    pipeconnect_key *v6a = key("[2001:db8::1]", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_key *v6b = key("2001:0db8:0:0::1", 25, PIPECONNECT_TLS_CLEARTEXT);
    CHECK_RESULT(pipeconnect_cache_learn(cache, v6a, (const uint8_t *)EXIM_EHLO, strlen(EXIM_EHLO), 0),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_lookup(cache, v6b, &caps), PIPECONNECT_OK);
    pipeconnect_caps_free(caps);
    char text[PIPECONNECT_KEY_STRING_MAX];
    size_t written = 0;
    CHECK_RESULT(pipeconnect_key_to_string(v6b, text, sizeof text, &written), PIPECONNECT_OK);
    CHECK(strcmp(text, "[2001:db8::1]:25/cleartext") == 0 && written == strlen(text));
    CHECK_RESULT(pipeconnect_key_to_string(v6b, text, 5, &written), PIPECONNECT_ERR_BUFFER_TOO_SMALL);
    CHECK(written == strlen("[2001:db8::1]:25/cleartext"));

    /* The longest key text: a full IPv6 server and local address, the largest port and a
     * 255-byte EHLO name fill PIPECONNECT_KEY_STRING_MAX exactly, NUL included. */
    {
        pipeconnect_key *longest =
            key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535, PIPECONNECT_TLS_ENCRYPTED);
        char name[256];
        char big[PIPECONNECT_KEY_STRING_MAX];
        memset(name, 'a', 255);
        name[255] = 0;
        CHECK_RESULT(pipeconnect_key_set_local(longest, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd"),
                     PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_key_set_ehlo_name(longest, name), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_key_to_string(longest, big, sizeof big, &written), PIPECONNECT_OK);
        CHECK(written == 361 && written + 1 == PIPECONNECT_KEY_STRING_MAX);
        CHECK(strlen(big) == 361);
        CHECK_RESULT(pipeconnect_key_to_string(longest, big, sizeof big - 1, &written),
                     PIPECONNECT_ERR_BUFFER_TOO_SMALL);
        pipeconnect_key_free(longest);
    }

    /* Addresses as a careless caller might pass them: refused, not guessed at. */
    {
        static const char *const BAD[] = {" 192.0.2.1", "192.0.2.1\n", "192.0.2.1 ",
                                          "[192.0.2.1]", "::", "0.0.0.0", "[::]"};
        size_t i;
        for (i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
            pipeconnect_key *b = NULL;
            CHECK_RESULT(pipeconnect_key_new(BAD[i], 25, PIPECONNECT_TLS_CLEARTEXT, &b),
                         PIPECONNECT_ERR_INVALID_ADDRESS);
            CHECK(b == NULL);
        }
    }

    /* A reply without PIPECONNECT is not cached and removes the older entry: the result
     * says whether there was one. */
    static const char NO_PC[] = "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
    CHECK_RESULT(pipeconnect_cache_learn(cache, v6b, (const uint8_t *)NO_PC, strlen(NO_PC), 0),
                 PIPECONNECT_NOT_CACHED_REMOVED);
    CHECK(misses(cache, v6a));
    CHECK_RESULT(pipeconnect_cache_learn(cache, v6b, (const uint8_t *)NO_PC, strlen(NO_PC), 0),
                 PIPECONNECT_NOT_CACHED);
    CHECK(!pipeconnect_result_is_error(PIPECONNECT_NOT_CACHED_REMOVED));

    /* Bad input: clear errors, the cache unchanged. */
    pipeconnect_key *bad = NULL;
    CHECK_RESULT(pipeconnect_key_new("192.0.2.300", 25, PIPECONNECT_TLS_CLEARTEXT, &bad),
                 PIPECONNECT_ERR_INVALID_ADDRESS);
    CHECK(bad == NULL);
    CHECK_RESULT(pipeconnect_key_new("192.0.2.1", 0, PIPECONNECT_TLS_CLEARTEXT, &bad),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_key_new("192.0.2.1", 25, 7, &bad), PIPECONNECT_ERR_INVALID_ARGUMENT);
    static const char GARBAGE[] = "HTTP/1.1 200 OK\r\n\r\n";
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)GARBAGE, strlen(GARBAGE), 0),
                 PIPECONNECT_ERR_MALFORMED_REPLY);
    static const char REJECT[] = "550 no\r\n";
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)REJECT, strlen(REJECT), 0),
                 PIPECONNECT_ERR_NOT_EHLO_REPLY);
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)EXIM_EHLO, 20, 0),
                 PIPECONNECT_ERR_REPLY_INCOMPLETE);
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)EXIM_EHLO, strlen(EXIM_EHLO), 99),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_key_set_ehlo_name(k, "bad name"), PIPECONNECT_ERR_INVALID_EHLO_NAME);
    CHECK(strcmp(pipeconnect_result_message(PIPECONNECT_ERR_INVALID_ADDRESS),
                 "not a valid IPv4 or IPv6 address") == 0);
    CHECK(strcmp(pipeconnect_result_message(12345), "unknown result") == 0);
    CHECK(!pipeconnect_result_is_error(PIPECONNECT_NOT_FOUND));
    CHECK(pipeconnect_result_is_error(PIPECONNECT_ERR_NULL_POINTER));

    /* An oversized EHLO reply is refused, not buffered. */
    {
        enum { BIG = 200000 };
        static uint8_t big[BIG];
        size_t off = 0;
        while (off + 12 < BIG) {
            memcpy(big + off, "250-XXXXXXX\n", 12);
            off += 12;
        }
        memcpy(big + off - 12, "250 XXXXXXX\n", 12);
        CHECK_RESULT(pipeconnect_cache_learn(cache, k, big, off, 0), PIPECONNECT_ERR_REPLY_TOO_MANY_LINES);
    }

    /* forget and clear */
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)EXIM_EHLO, strlen(EXIM_EHLO), 0),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_forget(cache, k), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_forget(cache, k), PIPECONNECT_NOT_FOUND);
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, (const uint8_t *)EXIM_EHLO, strlen(EXIM_EHLO), 0),
                 PIPECONNECT_OK);
    {
        pipeconnect_cache_stats before = {.struct_size = sizeof(pipeconnect_cache_stats)};
        pipeconnect_cache_stats after = {.struct_size = sizeof(pipeconnect_cache_stats)};
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &before), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_clear(cache), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &after), PIPECONNECT_OK);
        /* clear() shows in the stats: what it dropped counts as invalidations. */
        CHECK(before.entries == 1 && after.entries == 0);
        CHECK(after.invalidations == before.invalidations + 1);
    }
    CHECK(misses(cache, k));

    /* Hold-down: its settings, its counters at the end of the stats, its reason. */
    {
        pipeconnect_hold_down hd = {.struct_size = sizeof(pipeconnect_hold_down)};
        pipeconnect_hold_down zero = {.struct_size = sizeof(pipeconnect_hold_down)};
        pipeconnect_cache_stats st = {.struct_size = sizeof(pipeconnect_cache_stats)};
        CHECK_RESULT(pipeconnect_hold_down_default(&hd), PIPECONNECT_OK);
        CHECK(hd.first_seconds == 3600 && hd.max_seconds == 86400 && hd.growth == 4);
        CHECK(hd.decay_after == 20 && hd.remember_seconds == 7 * 86400);
        CHECK_RESULT(pipeconnect_cache_set_hold_down(cache, &hd), PIPECONNECT_OK);
        hd.max_seconds = 60; /* below the first length */
        CHECK_RESULT(pipeconnect_cache_set_hold_down(cache, &hd), PIPECONNECT_ERR_INVALID_ARGUMENT);
        hd.max_seconds = 86400;
        hd.reserved = 1;
        CHECK_RESULT(pipeconnect_cache_set_hold_down(cache, &hd), PIPECONNECT_ERR_INVALID_ARGUMENT);
        hd.reserved = 0;
        /* Every field's 0 is its default. */
        CHECK_RESULT(pipeconnect_cache_set_hold_down(cache, &zero), PIPECONNECT_OK);
        hd.flags = PIPECONNECT_HOLD_DOWN_OFF;
        CHECK_RESULT(pipeconnect_cache_set_hold_down(cache, &hd), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &st), PIPECONNECT_OK);
        CHECK(st.hold_downs_entered == 0 && st.early_skipped_held_down == 0 &&
              st.hold_downs_current == 0);
        CHECK(strcmp(pipeconnect_reason_name(PIPECONNECT_REASON_HELD_DOWN), "HELD_DOWN") == 0);
    }

    /* Hold-down through the calls for MTAs that drive the policy themselves. */
    {
        pipeconnect_hold_down hd = {.struct_size = sizeof(pipeconnect_hold_down)};
        uint64_t until = 0;
        CHECK_RESULT(pipeconnect_hold_down_default(&hd), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_set_hold_down(cache, &hd), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_set_time(cache, 1800000000), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_held_down(cache, k, &until), PIPECONNECT_NOT_FOUND);
        CHECK_RESULT(pipeconnect_cache_note_early_refused(cache, enc), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_note_early_refused(cache, k), PIPECONNECT_NOT_FOUND);
        /* One hold-down covers both TLS states of the server. */
        CHECK_RESULT(pipeconnect_cache_held_down(cache, k, &until), PIPECONNECT_OK);
        CHECK(until == 1800000000 + 3600);
        CHECK_RESULT(pipeconnect_cache_note_early_success(cache, k), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_set_time(cache, 1800000000 + 3600), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_held_down(cache, enc, &until), PIPECONNECT_NOT_FOUND);
        CHECK_RESULT(pipeconnect_cache_set_time(cache, 0), PIPECONNECT_OK);
    }

    /* LIMITS values: advertised 0 and 2^32-1 are values, not "absent". */
    {
        static const char lim_ehlo[] =
            "250-mx\r\n250-LIMITS RCPTMAX=0 MAILMAX=4294967295\r\n250 PIPELINING\r\n";
        pipeconnect_caps *lc = NULL;
        uint32_t v = 7;
        CHECK_RESULT(pipeconnect_caps_parse((const uint8_t *)lim_ehlo, strlen(lim_ehlo), 0, &lc),
                     PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_caps_limit(lc, PIPECONNECT_LIMIT_RCPTMAX, &v), PIPECONNECT_OK);
        CHECK(v == 0);
        CHECK_RESULT(pipeconnect_caps_limit(lc, PIPECONNECT_LIMIT_MAILMAX, &v), PIPECONNECT_OK);
        CHECK(v == 4294967295u);
        v = 7;
        CHECK_RESULT(pipeconnect_caps_limit(lc, PIPECONNECT_LIMIT_RCPTDOMAINMAX, &v),
                     PIPECONNECT_NOT_FOUND);
        CHECK(v == 7);
        CHECK_RESULT(pipeconnect_caps_limit(lc, 9, &v), PIPECONNECT_ERR_INVALID_ARGUMENT);
        pipeconnect_caps_free(lc);
    }

    /* A capacity the machine cannot hold is refused, not attempted. */
    {
        pipeconnect_cache *huge = NULL;
        CHECK_RESULT(pipeconnect_cache_new(SIZE_MAX, 0, &huge), PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK_RESULT(pipeconnect_cache_new((size_t)1 << 40, 0, &huge),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK(huge == NULL);
        /* The largest accepted capacity reserves nothing up front. */
        CHECK_RESULT(pipeconnect_cache_new(PIPECONNECT_CACHE_CAPACITY_MAX, 0, &huge),
                     PIPECONNECT_OK);
        pipeconnect_cache_free(huge);
    }

    pipeconnect_key_free(k);
    pipeconnect_key_free(enc);
    pipeconnect_key_free(p587);
    pipeconnect_key_free(other);
    pipeconnect_key_free(v6a);
    pipeconnect_key_free(v6b);
    pipeconnect_cache_free(cache);
    pipeconnect_cache_free(NULL);
    pipeconnect_key_free(NULL);
    pipeconnect_caps_free(NULL);
    CHECK_DONE();
}
