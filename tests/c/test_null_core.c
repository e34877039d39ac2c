/* NULL for each pointer argument of each core function: an error result, never a crash.
 * One row per (function, argument). tests/exports.rs checks that every exported function
 * with a pointer argument has rows in one of the tests/c/test_null_*.c tables. */
#include <string.h>
#include "pipeconnect.h"
#include "check.h"

static const char EHLO[] = "250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n";
#define EHLO_B ((const uint8_t *)EHLO)
#define EHLO_N strlen(EHLO)

/* NULL_ROW(function, call): the call must return PIPECONNECT_ERR_NULL_POINTER. */
#define NULL_ROW(fn, call) CHECK_RESULT(call, PIPECONNECT_ERR_NULL_POINTER)

int main(void) {
    pipeconnect_cache *c = NULL;
    pipeconnect_key *k = NULL, *k2 = NULL;
    pipeconnect_caps *caps = NULL;
    pipeconnect_cache_stats st = {.struct_size = sizeof(pipeconnect_cache_stats)};
    pipeconnect_limits lim = {.struct_size = sizeof(pipeconnect_limits)};
    bool b;
    uint32_t u32;
    uint64_t u64;
    size_t n;
    const char *name;
    char buf[64];

    if (pipeconnect_cache_new(0, 0, &c) != PIPECONNECT_OK ||
        pipeconnect_key_new("192.0.2.1", 25, PIPECONNECT_TLS_CLEARTEXT, &k) != PIPECONNECT_OK ||
        pipeconnect_caps_parse(EHLO_B, EHLO_N, 0, &caps) != PIPECONNECT_OK) {
        fprintf(stderr, "setup failed\n");
        return 2;
    }

    NULL_ROW(pipeconnect_key_new, pipeconnect_key_new(NULL, 25, 0, &k2));
    NULL_ROW(pipeconnect_key_new, pipeconnect_key_new("192.0.2.1", 25, 0, NULL));
    NULL_ROW(pipeconnect_key_set_local, pipeconnect_key_set_local(NULL, "192.0.2.9"));
    NULL_ROW(pipeconnect_key_set_local, pipeconnect_key_set_local(k, NULL));
    NULL_ROW(pipeconnect_key_set_ehlo_name, pipeconnect_key_set_ehlo_name(NULL, "x.example"));
    NULL_ROW(pipeconnect_key_set_ehlo_name, pipeconnect_key_set_ehlo_name(k, NULL));
    NULL_ROW(pipeconnect_key_with_tls, pipeconnect_key_with_tls(NULL, 1, &k2));
    NULL_ROW(pipeconnect_key_with_tls, pipeconnect_key_with_tls(k, 1, NULL));
    NULL_ROW(pipeconnect_key_to_string, pipeconnect_key_to_string(NULL, buf, sizeof buf, &n));
    NULL_ROW(pipeconnect_key_to_string, pipeconnect_key_to_string(k, NULL, sizeof buf, &n));
    NULL_ROW(pipeconnect_key_to_string, pipeconnect_key_to_string(k, buf, sizeof buf, NULL));

    NULL_ROW(pipeconnect_caps_parse, pipeconnect_caps_parse(NULL, 10, 0, &caps));
    NULL_ROW(pipeconnect_caps_parse, pipeconnect_caps_parse(NULL, 0, 0, &caps));
    NULL_ROW(pipeconnect_caps_parse, pipeconnect_caps_parse(EHLO_B, EHLO_N, 0, NULL));
    NULL_ROW(pipeconnect_caps_has, pipeconnect_caps_has(NULL, PIPECONNECT_EXT_DSN, &b));
    NULL_ROW(pipeconnect_caps_has, pipeconnect_caps_has(caps, PIPECONNECT_EXT_DSN, NULL));
    NULL_ROW(pipeconnect_caps_flags, pipeconnect_caps_flags(NULL, &u32));
    NULL_ROW(pipeconnect_caps_flags, pipeconnect_caps_flags(caps, NULL));
    NULL_ROW(pipeconnect_caps_size_limit, pipeconnect_caps_size_limit(NULL, &u64));
    NULL_ROW(pipeconnect_caps_size_limit, pipeconnect_caps_size_limit(caps, NULL));
    NULL_ROW(pipeconnect_caps_limits, pipeconnect_caps_limits(NULL, &lim));
    NULL_ROW(pipeconnect_caps_limits, pipeconnect_caps_limits(caps, NULL));
    NULL_ROW(pipeconnect_caps_auth_count, pipeconnect_caps_auth_count(NULL, &n));
    NULL_ROW(pipeconnect_caps_auth_count, pipeconnect_caps_auth_count(caps, NULL));
    NULL_ROW(pipeconnect_caps_limit, pipeconnect_caps_limit(NULL, PIPECONNECT_LIMIT_RCPTMAX, &u32));
    NULL_ROW(pipeconnect_caps_limit, pipeconnect_caps_limit(caps, PIPECONNECT_LIMIT_RCPTMAX, NULL));
    NULL_ROW(pipeconnect_caps_auth_name, pipeconnect_caps_auth_name(NULL, 0, &name));
    NULL_ROW(pipeconnect_caps_auth_name, pipeconnect_caps_auth_name(caps, 0, NULL));
    NULL_ROW(pipeconnect_caps_has_auth, pipeconnect_caps_has_auth(NULL, "PLAIN", &b));
    NULL_ROW(pipeconnect_caps_has_auth, pipeconnect_caps_has_auth(caps, NULL, &b));
    NULL_ROW(pipeconnect_caps_has_auth, pipeconnect_caps_has_auth(caps, "PLAIN", NULL));
    NULL_ROW(pipeconnect_caps_fingerprint, pipeconnect_caps_fingerprint(NULL, &u64));
    NULL_ROW(pipeconnect_caps_fingerprint, pipeconnect_caps_fingerprint(caps, NULL));
    NULL_ROW(pipeconnect_caps_learned_at, pipeconnect_caps_learned_at(NULL, &u64));
    NULL_ROW(pipeconnect_caps_learned_at, pipeconnect_caps_learned_at(caps, NULL));

    NULL_ROW(pipeconnect_cache_new, pipeconnect_cache_new(0, 0, NULL));
    NULL_ROW(pipeconnect_cache_learn, pipeconnect_cache_learn(NULL, k, EHLO_B, EHLO_N, 0));
    NULL_ROW(pipeconnect_cache_learn, pipeconnect_cache_learn(c, NULL, EHLO_B, EHLO_N, 0));
    NULL_ROW(pipeconnect_cache_learn, pipeconnect_cache_learn(c, k, NULL, EHLO_N, 0));
    NULL_ROW(pipeconnect_cache_learn_caps, pipeconnect_cache_learn_caps(NULL, k, caps));
    NULL_ROW(pipeconnect_cache_learn_caps, pipeconnect_cache_learn_caps(c, NULL, caps));
    NULL_ROW(pipeconnect_cache_learn_caps, pipeconnect_cache_learn_caps(c, k, NULL));
    NULL_ROW(pipeconnect_cache_lookup, pipeconnect_cache_lookup(NULL, k, &caps));
    NULL_ROW(pipeconnect_cache_lookup, pipeconnect_cache_lookup(c, NULL, &caps));
    NULL_ROW(pipeconnect_cache_lookup, pipeconnect_cache_lookup(c, k, NULL));
    NULL_ROW(pipeconnect_cache_forget, pipeconnect_cache_forget(NULL, k));
    NULL_ROW(pipeconnect_cache_forget, pipeconnect_cache_forget(c, NULL));
    NULL_ROW(pipeconnect_cache_learn_qhlo_cookie, pipeconnect_cache_learn_qhlo_cookie(NULL, k, "ab"));
    NULL_ROW(pipeconnect_cache_learn_qhlo_cookie, pipeconnect_cache_learn_qhlo_cookie(c, NULL, "ab"));
    NULL_ROW(pipeconnect_cache_learn_qhlo_cookie, pipeconnect_cache_learn_qhlo_cookie(c, k, NULL));
    NULL_ROW(pipeconnect_cache_qhlo_cookie, pipeconnect_cache_qhlo_cookie(NULL, k, buf, sizeof buf, &n));
    NULL_ROW(pipeconnect_cache_qhlo_cookie, pipeconnect_cache_qhlo_cookie(c, NULL, buf, sizeof buf, &n));
    NULL_ROW(pipeconnect_cache_qhlo_cookie, pipeconnect_cache_qhlo_cookie(c, k, NULL, sizeof buf, &n));
    NULL_ROW(pipeconnect_cache_qhlo_cookie, pipeconnect_cache_qhlo_cookie(c, k, buf, sizeof buf, NULL));
    NULL_ROW(pipeconnect_cache_forget_qhlo_cookie, pipeconnect_cache_forget_qhlo_cookie(NULL, k));
    NULL_ROW(pipeconnect_cache_forget_qhlo_cookie, pipeconnect_cache_forget_qhlo_cookie(c, NULL));
    NULL_ROW(pipeconnect_cache_clear, pipeconnect_cache_clear(NULL));
    NULL_ROW(pipeconnect_cache_get_stats, pipeconnect_cache_get_stats(NULL, &st));
    NULL_ROW(pipeconnect_cache_get_stats, pipeconnect_cache_get_stats(c, NULL));
    NULL_ROW(pipeconnect_cache_set_time, pipeconnect_cache_set_time(NULL, 1));
    pipeconnect_hold_down hd = {.struct_size = sizeof(pipeconnect_hold_down)};
    NULL_ROW(pipeconnect_hold_down_default, pipeconnect_hold_down_default(NULL));
    CHECK(pipeconnect_hold_down_default(&hd) == PIPECONNECT_OK);
    NULL_ROW(pipeconnect_cache_set_hold_down, pipeconnect_cache_set_hold_down(NULL, &hd));
    NULL_ROW(pipeconnect_cache_set_hold_down, pipeconnect_cache_set_hold_down(c, NULL));
    NULL_ROW(pipeconnect_cache_note_early_refused, pipeconnect_cache_note_early_refused(NULL, k));
    NULL_ROW(pipeconnect_cache_note_early_refused, pipeconnect_cache_note_early_refused(c, NULL));
    NULL_ROW(pipeconnect_cache_note_early_success, pipeconnect_cache_note_early_success(NULL, k));
    NULL_ROW(pipeconnect_cache_note_early_success, pipeconnect_cache_note_early_success(c, NULL));
    NULL_ROW(pipeconnect_cache_held_down, pipeconnect_cache_held_down(NULL, k, &u64));
    NULL_ROW(pipeconnect_cache_held_down, pipeconnect_cache_held_down(c, NULL, &u64));
    NULL_ROW(pipeconnect_cache_held_down, pipeconnect_cache_held_down(c, k, NULL));

    /* The file store. NULL options means the defaults, so only path and out are rows. */
    pipeconnect_cache *sc = NULL;
    NULL_ROW(pipeconnect_store_options_default, pipeconnect_store_options_default(NULL));
    NULL_ROW(pipeconnect_cache_open, pipeconnect_cache_open(NULL, NULL, &sc, NULL));
    NULL_ROW(pipeconnect_cache_open, pipeconnect_cache_open("/tmp/pc-null-store-never-made", NULL, NULL, NULL));
    CHECK(sc == NULL);

    /* The shared tier. NULL options means the defaults, NULL detail "no detail". */
    NULL_ROW(pipeconnect_cache_attach_shared, pipeconnect_cache_attach_shared(NULL, "redis://127.0.0.1:1", NULL, NULL));
    NULL_ROW(pipeconnect_cache_attach_shared, pipeconnect_cache_attach_shared(c, NULL, NULL, NULL));
    NULL_ROW(pipeconnect_cache_detach_shared, pipeconnect_cache_detach_shared(NULL));

    /* The functions without a result take NULL quietly. */
    pipeconnect_key_free(NULL);
    pipeconnect_caps_free(NULL);
    pipeconnect_cache_free(NULL);
    CHECK(pipeconnect_result_message(PIPECONNECT_OK) != NULL);

    /* Nothing was written through the out-parameters of the failed calls. */
    CHECK(k2 == NULL);

    pipeconnect_caps_free(caps);
    pipeconnect_key_free(k);
    pipeconnect_cache_free(c);
    CHECK_DONE();
}
