/* test_policy.c: the policy level of the C API over plain data. */
#include <pipeconnect.h>
#include <string.h>
#include <time.h>

#include "check.h"

static const char *EHLO =
    "250-mx.example.org Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n"
    "250-PIPECONNECT\r\n250-AUTH PLAIN LOGIN\r\n250-CHUNKING\r\n250 STARTTLS\r\n";
static const char *EHLO_GONE =
    "250-mx.example.org Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n"
    "250-AUTH PLAIN LOGIN\r\n250-CHUNKING\r\n250 STARTTLS\r\n";

static pipeconnect_caps *parse(const char *r) {
    pipeconnect_caps *c = NULL;
    CHECK_RESULT(pipeconnect_caps_parse((const uint8_t *)r, strlen(r), 0, &c), PIPECONNECT_OK);
    return c;
}

static void cmd(pipeconnect_command *c, pipeconnect_command_kind kind, uint64_t size) {
    memset(c, 0, sizeof *c);
    c->struct_size = sizeof *c;
    c->kind = kind;
    c->size = size;
}

int main(void) {
    pipeconnect_caps *full = parse(EHLO), *gone = parse(EHLO_GONE);
    pipeconnect_situation clear = {sizeof(pipeconnect_situation), PIPECONNECT_PHASE_CLEARTEXT,
                                   PIPECONNECT_SITUATION_EHLO_NAME_KNOWN};
    pipeconnect_situation after = {sizeof(pipeconnect_situation), PIPECONNECT_PHASE_AFTER_STARTTLS,
                                   PIPECONNECT_SITUATION_EHLO_NAME_KNOWN};
    pipeconnect_settings early = {sizeof(pipeconnect_settings), PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_settings relaxed = {sizeof(pipeconnect_settings),
                                    PIPECONNECT_SETTINGS_EARLY_ALLOWED |
                                        PIPECONNECT_SETTINGS_RELAXED,
                                    0};
    pipeconnect_command seq[6];
    size_t allowed = 12345;
    pipeconnect_reason reason = 12345;
    pipeconnect_outcome o = {.struct_size = sizeof(pipeconnect_outcome)};
    pipeconnect_ehlo_check chk = {.struct_size = sizeof(pipeconnect_ehlo_check)};
    pipeconnect_error_detail detail = {.struct_size = sizeof(pipeconnect_error_detail)};
    pipeconnect_ext used = 0;
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *key = NULL;

    /* EHLO, AUTH PLAIN with initial response, MAIL, 2 RCPT, BDAT LAST 2 KiB: one flight. */
    cmd(&seq[0], PIPECONNECT_CMD_EHLO, 0);
    cmd(&seq[1], PIPECONNECT_CMD_AUTH, 0);
    seq[1].mechanism = "PLAIN";
    seq[1].flags = PIPECONNECT_COMMAND_INITIAL_RESPONSE;
    cmd(&seq[2], PIPECONNECT_CMD_MAIL, 0);
    cmd(&seq[3], PIPECONNECT_CMD_RCPT, 0);
    cmd(&seq[4], PIPECONNECT_CMD_RCPT, 0);
    cmd(&seq[5], PIPECONNECT_CMD_BDAT_LAST, 2048);
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 6 && reason == PIPECONNECT_REASON_END_OF_SEQUENCE);
    CHECK_RESULT(pipeconnect_policy_used_extensions(seq, allowed, &used), PIPECONNECT_OK);
    CHECK(used & PIPECONNECT_EXT_CHUNKING && used & PIPECONNECT_EXT_AUTH &&
          used & PIPECONNECT_EXT_PIPECONNECT);

    /* 1 MiB: ends DATA-style, before the BDAT. */
    seq[5].size = 1u << 20;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 5 && reason == PIPECONNECT_REASON_BODY_TOO_LARGE_FOR_ONE_FLIGHT);
    CHECK(strcmp(pipeconnect_reason_name(reason), "BODY_TOO_LARGE_FOR_ONE_FLIGHT") == 0);

    /* No initial response: AUTH ends the flight. */
    seq[1].flags = 0;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 2 && reason == PIPECONNECT_REASON_AUTH_ENDS_FLIGHT);

    /* Nothing cached; not allowed; after STARTTLS without a cleartext early flight. */
    CHECK_RESULT(pipeconnect_policy_early_flight(NULL, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 0 && reason == PIPECONNECT_REASON_NO_ENTRY);
    {
        pipeconnect_settings none = {sizeof(pipeconnect_settings), 0, 0};
        CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &none, seq, 6, &allowed, &reason, NULL),
                     PIPECONNECT_OK);
        CHECK(allowed == 0 && reason == PIPECONNECT_REASON_NOT_ALLOWED);
    }
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &after, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(reason == PIPECONNECT_REASON_ENCRYPTED_WITHOUT_CLEARTEXT_EARLY);

    /* Cleartext information is refused after STARTTLS. */
    CHECK_RESULT(pipeconnect_cache_new(0, 0, &cache), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_key_new("2001:db8::25", 25, PIPECONNECT_TLS_CLEARTEXT, &key),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_learn_caps(cache, key, full), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_policy_early_flight_cached(cache, key, &clear, &early, seq, 6,
                                                        &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 2);
    allowed = 777;
    after.flags |= PIPECONNECT_SITUATION_CLEARTEXT_EARLY_USED;
    CHECK_RESULT(pipeconnect_policy_early_flight_cached(cache, key, &after, &early, seq, 6,
                                                        &allowed, &reason, NULL),
                 PIPECONNECT_ERR_TLS_STATE_MISMATCH);
    CHECK(allowed == 777); /* nothing written on error */
    /* A held-down server gets a classic start, with its reason, until the hold-down ends. */
    uint64_t t0 = (uint64_t)time(NULL);
    CHECK_RESULT(pipeconnect_cache_set_time(cache, t0), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_cache_note_early_refused(cache, key), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_policy_early_flight_cached(cache, key, &clear, &early, seq, 6,
                                                        &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 0 && reason == PIPECONNECT_REASON_HELD_DOWN);
    CHECK_RESULT(pipeconnect_cache_set_time(cache, t0 + 3600), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_policy_early_flight_cached(cache, key, &clear, &early, seq, 6,
                                                        &allowed, &reason, NULL),
                 PIPECONNECT_OK);
    CHECK(allowed == 2);
    CHECK_RESULT(pipeconnect_cache_set_time(cache, 0), PIPECONNECT_OK);

    /* Bad input: order, kinds, flags, phases; the detail names the command. */
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq + 2, 1, &allowed,
                                                 &reason, &detail),
                 PIPECONNECT_ERR_BAD_SEQUENCE);
    CHECK(detail.result == PIPECONNECT_ERR_BAD_SEQUENCE);
    CHECK((detail.flags & PIPECONNECT_DETAIL_HAS_INDEX) && detail.index == 0);
    CHECK(strcmp(detail.field, "cmds") == 0);
    CHECK(strstr(detail.message, "EHLO") != NULL);
    seq[4].kind = PIPECONNECT_CMD_MAIL; /* MAIL inside the transaction, command 4 */
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason,
                                                 &detail),
                 PIPECONNECT_ERR_BAD_SEQUENCE);
    CHECK(detail.index == 4 && (detail.flags & PIPECONNECT_DETAIL_HAS_INDEX));
    seq[4].kind = PIPECONNECT_CMD_RCPT;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason,
                                                 &detail),
                 PIPECONNECT_OK);
    CHECK(detail.result == 0 && detail.flags == 0 && detail.field[0] == 0);
    /* An element whose struct_size differs from the first's: refused, and named. */
    seq[3].struct_size = 8;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason,
                                                 &detail),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(detail.index == 3 && strcmp(detail.field, "pipeconnect_command") == 0);
    seq[3].struct_size = sizeof seq[3];
    /* A detail whose struct_size was not set: the call is refused before it acts. */
    {
        pipeconnect_error_detail unset;
        memset(&unset, 0, sizeof unset);
        CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed,
                                                     &reason, &unset),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
    }
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq + 2, 1, &allowed, &reason, NULL),
                 PIPECONNECT_ERR_BAD_SEQUENCE);
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 0, &allowed, &reason, NULL),
                 PIPECONNECT_ERR_BAD_SEQUENCE);
    seq[3].kind = 99;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    seq[3].kind = PIPECONNECT_CMD_BODY;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_ERR_BAD_SEQUENCE);
    seq[3].kind = PIPECONNECT_CMD_RCPT;
    seq[3].flags = 0x80;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    seq[3].flags = 0;
    seq[1].mechanism = NULL;
    CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &early, seq, 6, &allowed, &reason, NULL),
                 PIPECONNECT_ERR_NULL_POINTER);
    seq[1].mechanism = "PLAIN";
    {
        pipeconnect_situation bad = {sizeof(pipeconnect_situation), 7, 0};
        pipeconnect_settings badset = {sizeof(pipeconnect_settings), 0x100, 0};
        CHECK_RESULT(pipeconnect_policy_early_flight(full, &bad, &early, seq, 6, &allowed, &reason, NULL),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK_RESULT(pipeconnect_policy_early_flight(full, &clear, &badset, seq, 6, &allowed, &reason, NULL),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
    }

    /* Outcomes. */
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_BANNER, 554,
                                            PIPECONNECT_CONTEXT_EARLY_USED, &early, &o),
                 PIPECONNECT_OK);
    CHECK(o.verdict == PIPECONNECT_VERDICT_RECONNECT && o.cache == PIPECONNECT_CACHE_INVALIDATE);
    CHECK(o.flags & PIPECONNECT_EVENT_CONNECTION_DONE);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_RCPT, 550,
                                            PIPECONNECT_CONTEXT_EARLY_USED, &early, &o),
                 PIPECONNECT_OK);
    CHECK(o.verdict == PIPECONNECT_VERDICT_REJECTED && o.cache == PIPECONNECT_CACHE_INVALIDATE);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_RCPT, 550,
                                            PIPECONNECT_CONTEXT_EARLY_USED, &relaxed, &o),
                 PIPECONNECT_OK);
    CHECK(o.verdict == PIPECONNECT_VERDICT_REJECTED && o.cache == PIPECONNECT_CACHE_NOTHING);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_BODY, 250, 0, &early, &o),
                 PIPECONNECT_OK);
    CHECK(o.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_RCPT, 42, 0, &early, &o),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_RCPT, 250, 0x40, &early, &o),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_policy_outcome(77, 250, 0, &early, &o),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);

    /* The EHLO comparison. */
    CHECK_RESULT(pipeconnect_policy_check_ehlo(full, gone, used, &chk), PIPECONNECT_OK);
    CHECK(chk.cache == PIPECONNECT_CACHE_INVALIDATE);
    CHECK(chk.flags & PIPECONNECT_EVENT_EARLY_STOPPED);
    CHECK(chk.changed == PIPECONNECT_EXT_PIPECONNECT);
    CHECK_RESULT(pipeconnect_policy_check_ehlo(full, full, used, &chk), PIPECONNECT_OK);
    CHECK(chk.cache == PIPECONNECT_CACHE_NOTHING && chk.flags == 0);
    CHECK_RESULT(pipeconnect_policy_check_ehlo(NULL, full, 0, &chk), PIPECONNECT_OK);
    CHECK(chk.cache == PIPECONNECT_CACHE_STORE);

    /* Names and messages. */
    CHECK(strcmp(pipeconnect_reason_name(9999), "UNKNOWN") == 0);
    CHECK(strcmp(pipeconnect_verdict_name(PIPECONNECT_VERDICT_HOST_ERROR), "HOST_ERROR") == 0);
    CHECK(strcmp(pipeconnect_command_name(PIPECONNECT_CMD_BDAT_LAST), "BDAT_LAST") == 0);
    CHECK(strcmp(pipeconnect_command_name(1234), "UNKNOWN") == 0);
    CHECK(strcmp(pipeconnect_result_message(PIPECONNECT_ERR_BAD_SEQUENCE), "unknown result") != 0);
    CHECK(strcmp(pipeconnect_result_message(PIPECONNECT_NO_EVENT), "unknown result") != 0);
    CHECK(pipeconnect_result_is_error(PIPECONNECT_ERR_UNEXPECTED_REPLY));
    CHECK(!pipeconnect_result_is_error(PIPECONNECT_NO_EVENT));

    pipeconnect_key_free(key);
    pipeconnect_cache_free(cache);
    pipeconnect_caps_free(full);
    pipeconnect_caps_free(gone);
    CHECK_DONE();
}
