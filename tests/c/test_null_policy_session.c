/* test_null_policy_session.c: every pointer argument of the policy and session functions
 * NULL in turn must give PIPECONNECT_ERR_NULL_POINTER (never a crash), and write no
 * output. Table-driven: each row calls one function with pointer argument `which` NULL. */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"

static pipeconnect_cache *CACHE;
static pipeconnect_key *KEY;
static pipeconnect_caps *CAPS;
static pipeconnect_session *SESSION;
static pipeconnect_situation SITUATION = {sizeof(pipeconnect_situation),
                                          PIPECONNECT_PHASE_CLEARTEXT,
                                          PIPECONNECT_SITUATION_EHLO_NAME_KNOWN};
static pipeconnect_settings SETTINGS = {sizeof(pipeconnect_settings),
                                        PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
static pipeconnect_command CMDS[2] = {
    {sizeof(pipeconnect_command), PIPECONNECT_CMD_EHLO, 0, 0, NULL},
    {sizeof(pipeconnect_command), PIPECONNECT_CMD_STARTTLS, 0, 0, NULL}};
static const char *RCPTS[] = {"a@example.org"};
static pipeconnect_intent INTENT;

/* Outputs, preset to a sentinel that no success writes. */
static size_t SZ;
static pipeconnect_reason REASON;
static pipeconnect_ext EXT;
static pipeconnect_outcome OUTCOME;
static pipeconnect_ehlo_check CHECKED;
static pipeconnect_session *NEW_SESSION;
static pipeconnect_session_command SCMDS[4];
static pipeconnect_event EVENT;
static pipeconnect_summary SUMMARY;
static bool DONE;
static char BUF[64];

#define P(i, p) ((which) == (i) ? NULL : (p))

static pipeconnect_result early_flight(int which) {
    return pipeconnect_policy_early_flight(CAPS, P(0, &SITUATION), P(1, &SETTINGS), P(2, CMDS), 2,
                                           P(3, &SZ), P(4, &REASON), NULL);
}
static pipeconnect_result early_flight_cached(int which) {
    return pipeconnect_policy_early_flight_cached(P(0, CACHE), P(1, KEY), P(2, &SITUATION),
                                                  P(3, &SETTINGS), P(4, CMDS), 2, P(5, &SZ),
                                                  P(6, &REASON), NULL);
}
static pipeconnect_result used_extensions(int which) {
    return pipeconnect_policy_used_extensions(P(0, CMDS), 2, P(1, &EXT));
}
static pipeconnect_result outcome(int which) {
    return pipeconnect_policy_outcome(PIPECONNECT_CMD_RCPT, 250, 0, P(0, &SETTINGS),
                                      P(1, &OUTCOME));
}
static pipeconnect_result check_ehlo(int which) {
    return pipeconnect_policy_check_ehlo(CAPS, P(0, CAPS), 0, P(1, &CHECKED));
}
static pipeconnect_result session_begin(int which) {
    return pipeconnect_session_begin(P(0, CACHE), P(1, KEY), P(2, &INTENT), P(3, &SETTINGS),
                                     P(4, &NEW_SESSION), NULL);
}
static pipeconnect_result session_flight(int which) {
    return pipeconnect_session_flight(P(0, SESSION), P(1, SCMDS), 4, P(2, &SZ));
}
static pipeconnect_result session_pending(int which) {
    return pipeconnect_session_pending(P(0, SESSION), P(1, &SZ), P(2, &SZ));
}
static pipeconnect_result session_command_line(int which) {
    return pipeconnect_session_command_line(P(0, SESSION), P(1, &SCMDS[0]), P(2, BUF), sizeof BUF,
                                            P(3, &SZ));
}
static pipeconnect_result session_feed(int which) {
    return pipeconnect_session_feed(P(0, SESSION), P(1, (const uint8_t *)"220 hi\r\n"), 8,
                                    P(2, &SZ));
}
static pipeconnect_result session_next_event(int which) {
    return pipeconnect_session_next_event(P(0, SESSION), P(1, &EVENT));
}
static pipeconnect_result session_tls_started(int which) {
    return pipeconnect_session_tls_started(P(0, SESSION));
}
static pipeconnect_result session_reason(int which) {
    return pipeconnect_session_reason(P(0, SESSION), P(1, &SZ), P(2, &REASON));
}
static pipeconnect_result session_is_done(int which) {
    return pipeconnect_session_is_done(P(0, SESSION), P(1, &DONE));
}
static pipeconnect_result session_finish(int which) {
    return pipeconnect_session_finish(P(0, SESSION), P(1, &SUMMARY));
}
static pipeconnect_caps *SERVER_CAPS;
static pipeconnect_result session_quit(int which) {
    return pipeconnect_session_quit(P(0, SESSION));
}
static pipeconnect_result session_server_caps(int which) {
    return pipeconnect_session_server_caps(P(0, SESSION), P(1, &SERVER_CAPS));
}

struct row {
    const char *name;
    pipeconnect_result (*call)(int which);
    int pointers;
};

static const struct row ROWS[] = {
    {"pipeconnect_policy_early_flight", early_flight, 5},
    {"pipeconnect_policy_early_flight_cached", early_flight_cached, 7},
    {"pipeconnect_policy_used_extensions", used_extensions, 2},
    {"pipeconnect_policy_outcome", outcome, 2},
    {"pipeconnect_policy_check_ehlo", check_ehlo, 2},
    {"pipeconnect_session_begin", session_begin, 5},
    {"pipeconnect_session_flight", session_flight, 3},
    {"pipeconnect_session_pending", session_pending, 3},
    {"pipeconnect_session_command_line", session_command_line, 4},
    {"pipeconnect_session_feed", session_feed, 3},
    {"pipeconnect_session_next_event", session_next_event, 2},
    {"pipeconnect_session_tls_started", session_tls_started, 1},
    {"pipeconnect_session_reason", session_reason, 3},
    {"pipeconnect_session_is_done", session_is_done, 2},
    {"pipeconnect_session_finish", session_finish, 2},
    {"pipeconnect_session_quit", session_quit, 1},
    {"pipeconnect_session_server_caps", session_server_caps, 2},
};

static void preset(void) {
    SZ = 4242;
    REASON = 4242;
    EXT = 4242;
    memset(&OUTCOME, 0x5a, sizeof OUTCOME);
    OUTCOME.struct_size = sizeof OUTCOME;
    memset(&CHECKED, 0x5a, sizeof CHECKED);
    CHECKED.struct_size = sizeof CHECKED;
    NEW_SESSION = (pipeconnect_session *)&SZ;
    SERVER_CAPS = (pipeconnect_caps *)&SZ;
    memset(&EVENT, 0x5a, sizeof EVENT);
    EVENT.struct_size = sizeof EVENT;
    memset(&SUMMARY, 0x5a, sizeof SUMMARY);
    SUMMARY.struct_size = sizeof SUMMARY;
    memset(BUF, 'z', sizeof BUF);
}

static int untouched(void) {
    pipeconnect_outcome o;
    pipeconnect_summary s;
    memset(&o, 0x5a, sizeof o);
    o.struct_size = sizeof o;
    memset(&s, 0x5a, sizeof s);
    s.struct_size = sizeof s;
    return SZ == 4242 && REASON == 4242 && EXT == 4242 &&
           memcmp(&OUTCOME, &o, sizeof o) == 0 && memcmp(&SUMMARY, &s, sizeof s) == 0 &&
           NEW_SESSION == (pipeconnect_session *)&SZ &&
           SERVER_CAPS == (pipeconnect_caps *)&SZ && BUF[0] == 'z';
}

int main(void) {
    size_t r, i;
    int w;
    pipeconnect_intent bad;
    const char *null_rcpt[] = {NULL};
    const char *third_bad[] = {"a@example.org", "b@example.org", "c@exa<mple.org"};
    pipeconnect_error_detail detail = {.struct_size = sizeof(pipeconnect_error_detail)};

    memset(&INTENT, 0, sizeof INTENT);
    INTENT.struct_size = sizeof INTENT;
    INTENT.ehlo_name = "client.example.net";
    INTENT.mail_from = "s@example.net";
    INTENT.rcpts = RCPTS;
    INTENT.rcpt_count = 1;
    INTENT.body_size = 10;

    CHECK_RESULT(pipeconnect_cache_new(0, 0, &CACHE), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_key_new("2001:db8::1", 25, PIPECONNECT_TLS_CLEARTEXT, &KEY),
                 PIPECONNECT_OK);
    {
        const char *e = "250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n";
        CHECK_RESULT(pipeconnect_caps_parse((const uint8_t *)e, strlen(e), 0, &CAPS),
                     PIPECONNECT_OK);
    }
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &INTENT, &SETTINGS, &SESSION, NULL),
                 PIPECONNECT_OK);
    SCMDS[0].struct_size = sizeof SCMDS[0];
    /* A command to format. */
    CHECK_RESULT(pipeconnect_session_feed(SESSION, (const uint8_t *)"220 hi\r\n", 8, &SZ),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_flight(SESSION, SCMDS, 4, &SZ), PIPECONNECT_OK);
    CHECK(SZ == 1 && SCMDS[0].kind == PIPECONNECT_CMD_EHLO);

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

    /* The nullable ones: a NULL cached entry means "nothing cached". */
    CHECK_RESULT(pipeconnect_policy_early_flight(NULL, &SITUATION, &SETTINGS, CMDS, 2, &SZ, &REASON,
                                                 NULL),
                 PIPECONNECT_OK);
    CHECK(SZ == 0 && REASON == PIPECONNECT_REASON_NO_ENTRY);
    CHECK_RESULT(pipeconnect_policy_check_ehlo(NULL, CAPS, 0, &CHECKED), PIPECONNECT_OK);

    /* NULL inside the structs. */
    CMDS[1].kind = PIPECONNECT_CMD_AUTH;
    CHECK_RESULT(pipeconnect_policy_early_flight(CAPS, &SITUATION, &SETTINGS, CMDS, 2, &SZ, &REASON,
                                                 NULL),
                 PIPECONNECT_ERR_NULL_POINTER);
    CMDS[1].kind = PIPECONNECT_CMD_STARTTLS;
    bad = INTENT;
    bad.flags = PIPECONNECT_INTENT_AUTH;
    NEW_SESSION = NULL;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_NULL_POINTER);
    bad = INTENT;
    bad.rcpts = null_rcpt;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_NULL_POINTER);
    CHECK(strcmp(detail.field, "rcpts") == 0 && (detail.flags & PIPECONNECT_DETAIL_HAS_INDEX) &&
          detail.index == 0);
    /* The detail names the refused recipient. */
    bad = INTENT;
    bad.rcpts = third_bad;
    bad.rcpt_count = 3;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_INVALID_INTENT);
    CHECK(detail.result == PIPECONNECT_ERR_INVALID_INTENT);
    CHECK(strcmp(detail.field, "rcpts") == 0 && (detail.flags & PIPECONNECT_DETAIL_HAS_INDEX) &&
          detail.index == 2);
    CHECK(strstr(detail.message, "rcpts[2]") != NULL);
    bad = INTENT;
    bad.ehlo_name = NULL; /* allowed: the name is not known before connecting */
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_reason(NEW_SESSION, &SZ, &REASON), PIPECONNECT_OK);
    CHECK(REASON == PIPECONNECT_REASON_EHLO_NAME_UNKNOWN);
    pipeconnect_session_free(NEW_SESSION);
    /* Bad intents. */
    bad = INTENT;
    bad.rcpt_count = 0;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_INVALID_INTENT);
    bad = INTENT;
    bad.rcpts = NULL;
    bad.rcpt_count = 1001;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_INVALID_INTENT);
    bad = INTENT;
    bad.mail_from = "a@b\r\nRSET";
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_INVALID_INTENT);
    CHECK(strcmp(detail.field, "mail_from") == 0 && detail.flags == 0);
    /* An intent whose struct_size was never set is refused, and says so. */
    bad = INTENT;
    bad.struct_size = 0;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(detail.field, "pipeconnect_intent") == 0);
    CHECK(strstr(detail.message, "struct_size") != NULL);
    bad = INTENT;
    bad.body_mode = 9;
    CHECK_RESULT(pipeconnect_session_begin(CACHE, KEY, &bad, &SETTINGS, &NEW_SESSION, &detail),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);

    /* Freeing NULL is allowed; a length with a NULL buffer is refused even when 0. */
    pipeconnect_session_free(NULL);
    CHECK_RESULT(pipeconnect_session_feed(SESSION, NULL, 0, &SZ), PIPECONNECT_ERR_NULL_POINTER);
    /* Every new result has a message. */
    for (i = 7500; i <= 7505; i++)
        CHECK(strcmp(pipeconnect_result_message((int)i), "unknown result") != 0);

    pipeconnect_session_free(SESSION);
    pipeconnect_caps_free(CAPS);
    pipeconnect_key_free(KEY);
    pipeconnect_cache_free(CACHE);
    CHECK_DONE();
}
