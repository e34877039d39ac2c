/* test_tracker.c: the tracker from C, as an MTA with its own SMTP engine uses it (the
 * Postfix patch's calls): plan from the cache, send the commands yourself, pass each reply
 * read, in the form the MTA keeps it (LF-joined lines, no final line end). */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"

static const char *EHLO_PC = "250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n"
                             "250-PIPELINING\n250-PIPECONNECT\n250-DSN\n250-STARTTLS\n"
                             "250 CHUNKING";
static const char *EHLO_NO_PC = "250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n"
                                "250-PIPELINING\n250-DSN\n250 CHUNKING";

static pipeconnect_tracker_request request(unsigned rcpts, uint32_t flags) {
    pipeconnect_tracker_request r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.server = "192.0.2.25";
    r.port = 25;
    r.phase = PIPECONNECT_PHASE_CLEARTEXT;
    r.flags = flags;
    r.rcpt_count = rcpts;
    r.message_size = 2048;
    r.relies_on = PIPECONNECT_EXT_SIZE | PIPECONNECT_EXT_8BITMIME | PIPECONNECT_EXT_DSN;
    return r;
}

static pipeconnect_tracker_step reply(pipeconnect_tracker *t, pipeconnect_command_kind kind,
                                      unsigned code, const char *text) {
    pipeconnect_tracker_step s;
    memset(&s, 0x5a, sizeof s);
    s.struct_size = sizeof s;
    CHECK_RESULT(pipeconnect_tracker_reply(t, kind, code, (const uint8_t *)text,
                                           text ? strlen(text) : 0, &s),
                 PIPECONNECT_OK);
    return s;
}

static pipeconnect_tracker *begin(pipeconnect_cache *c, const pipeconnect_tracker_request *r,
                                  pipeconnect_tracker_plan *plan) {
    pipeconnect_tracker *t = NULL;
    memset(plan, 0x5a, sizeof *plan);
    plan->struct_size = sizeof *plan;
    CHECK_RESULT(pipeconnect_tracker_begin(c, r, &t, plan, NULL), PIPECONNECT_OK);
    CHECK(t != NULL);
    return t;
}

int main(void) {
    pipeconnect_cache *cache = NULL;
    pipeconnect_tracker *t;
    pipeconnect_tracker_plan plan;
    pipeconnect_tracker_step s;
    pipeconnect_tracker_request r;
    pipeconnect_error_detail detail = {.struct_size = sizeof(pipeconnect_error_detail)};
    const uint32_t early = PIPECONNECT_TRACKER_EARLY_ALLOWED;

    CHECK_RESULT(pipeconnect_cache_new(0, 0, &cache), PIPECONNECT_OK);

    /* 1. Nothing cached: classic; the classic EHLO reply is learned. */
    r = request(2, early);
    t = begin(cache, &r, &plan);
    CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_CLASSIC);
    CHECK(plan.reason == PIPECONNECT_REASON_NO_ENTRY);
    CHECK(plan.command_count == 0 && plan.extensions == 0 && plan.size_limit == 0);
    s = reply(t, PIPECONNECT_CMD_EHLO, 250, EHLO_PC);
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_PROCEED);
    CHECK(s.flags & PIPECONNECT_EVENT_CACHE_STORED);
    CHECK((s.extensions & PIPECONNECT_EXT_PIPECONNECT) && s.size_limit == 52428800);
    pipeconnect_tracker_free(t);

    /* 2. Cached: EHLO, MAIL, two RCPT, DATA go early; the replies proceed. The cache may be
     * freed before the tracker. */
    r = request(2, early | PIPECONNECT_TRACKER_RELAXED);
    r.ignored_keywords = "silent-discard, dsn";
    t = begin(cache, &r, &plan);
    CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_TRANSACTION);
    CHECK(plan.command_count == 5);
    CHECK(plan.reason == PIPECONNECT_REASON_END_OF_SEQUENCE);
    CHECK((plan.extensions & PIPECONNECT_EXT_8BITMIME) && !(plan.extensions & PIPECONNECT_EXT_DSN));
    CHECK(plan.size_limit == 52428800);
    CHECK(reply(t, PIPECONNECT_CMD_BANNER, 220, "220 mx ESMTP").action ==
          PIPECONNECT_TRACKER_ACTION_PROCEED);
    s = reply(t, PIPECONNECT_CMD_EHLO, 250, EHLO_PC);
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_PROCEED && !(s.extensions & PIPECONNECT_EXT_DSN));
    CHECK(reply(t, PIPECONNECT_CMD_MAIL, 250, NULL).action == PIPECONNECT_TRACKER_ACTION_PROCEED);
    s = reply(t, PIPECONNECT_CMD_RCPT, 550, NULL);
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_PROCEED && s.verdict == PIPECONNECT_VERDICT_REJECTED);
    CHECK(!(s.flags & PIPECONNECT_EVENT_CACHE_INVALIDATED)); /* relaxed: the entry stays */
    CHECK(reply(t, PIPECONNECT_CMD_RCPT, 250, NULL).action == PIPECONNECT_TRACKER_ACTION_PROCEED);
    CHECK(reply(t, PIPECONNECT_CMD_DATA, 354, NULL).action == PIPECONNECT_TRACKER_ACTION_PROCEED);
    s = reply(t, PIPECONNECT_CMD_BODY, 250, NULL);
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_PROCEED && (s.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED));
    pipeconnect_tracker_free(t);

    /* 3. STARTTLS when offered: EHLO and STARTTLS early. */
    r = request(1, early | PIPECONNECT_TRACKER_STARTTLS_IF_OFFERED);
    t = begin(cache, &r, &plan);
    CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_STARTTLS && plan.command_count == 2);
    pipeconnect_tracker_free(t);

    /* 3b. No transaction early (AUTH or XFORWARD between EHLO and MAIL): EHLO alone. */
    r = request(0, early);
    t = begin(cache, &r, &plan);
    CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_EHLO && plan.command_count == 1);
    pipeconnect_tracker_free(t);

    /* 4. A server that no longer offers PIPECONNECT answers with Exim's 554: reconnect, the
     * entry is gone and the server held down. Later replies repeat the step. */
    r = request(1, early);
    t = begin(cache, &r, &plan);
    CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_TRANSACTION);
    s = reply(t, PIPECONNECT_CMD_BANNER, 554, "554 SMTP synchronization error");
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_RECONNECT && s.verdict == PIPECONNECT_VERDICT_RECONNECT);
    CHECK(s.flags & PIPECONNECT_EVENT_CACHE_INVALIDATED);
    s = reply(t, PIPECONNECT_CMD_EHLO, 250, EHLO_NO_PC);
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_RECONNECT && (s.flags & PIPECONNECT_EVENT_FOLLOWS_FAILURE));
    pipeconnect_tracker_free(t);
    {
        pipeconnect_key *k = NULL;
        uint64_t until = 0;
        CHECK_RESULT(pipeconnect_key_new("192.0.2.25", 25, PIPECONNECT_TLS_CLEARTEXT, &k),
                     PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_held_down(cache, k, &until), PIPECONNECT_OK);
        CHECK(until > 0);
        pipeconnect_key_free(k);
    }
    r = request(1, early);
    t = begin(cache, &r, &plan);
    CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_CLASSIC);
    CHECK(plan.reason == PIPECONNECT_REASON_NO_ENTRY);
    /* The classic reconnect learns the reply without PIPECONNECT: nothing to store. */
    s = reply(t, PIPECONNECT_CMD_BANNER, 220, "220 mx");
    s = reply(t, PIPECONNECT_CMD_EHLO, 250, EHLO_NO_PC);
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_PROCEED && !(s.flags & PIPECONNECT_EVENT_CACHE_STORED));
    pipeconnect_tracker_free(t);

    /* 5. Out of step after the body: defer, never resend at once. */
    {
        pipeconnect_cache *c2 = NULL;
        CHECK_RESULT(pipeconnect_cache_new(0, 0, &c2), PIPECONNECT_OK);
        r = request(1, early);
        t = begin(c2, &r, &plan);
        reply(t, PIPECONNECT_CMD_EHLO, 250, EHLO_PC);
        pipeconnect_tracker_free(t);
        t = begin(c2, &r, &plan);
        pipeconnect_cache_free(c2); /* the tracker keeps what it needs */
        CHECK(plan.mode == PIPECONNECT_TRACKER_MODE_TRANSACTION);
        reply(t, PIPECONNECT_CMD_BANNER, 220, "220 mx");
        reply(t, PIPECONNECT_CMD_EHLO, 250, EHLO_PC);
        reply(t, PIPECONNECT_CMD_MAIL, 250, NULL);
        reply(t, PIPECONNECT_CMD_RCPT, 250, NULL);
        reply(t, PIPECONNECT_CMD_DATA, 354, NULL);
        s = reply(t, PIPECONNECT_CMD_BODY, 354, NULL);
        CHECK(s.action == PIPECONNECT_TRACKER_ACTION_DEFER && s.verdict == PIPECONNECT_VERDICT_TEMPFAIL);
        CHECK(!(s.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED) &&
              (s.flags & PIPECONNECT_EVENT_OUT_OF_STEP));
        pipeconnect_tracker_free(t);
    }

    /* 6. Bad arguments: clear errors, the detail names the field. */
    r = request(1, early);
    r.server = "not an address";
    t = NULL;
    memset(&plan, 0, sizeof plan);
    plan.struct_size = sizeof plan;
    CHECK_RESULT(pipeconnect_tracker_begin(cache, &r, &t, &plan, &detail),
                 PIPECONNECT_ERR_INVALID_ADDRESS);
    CHECK(t == NULL && strcmp(detail.field, "server") == 0);
    r = request(1, 1u << 20);
    CHECK_RESULT(pipeconnect_tracker_begin(cache, &r, &t, &plan, &detail),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(detail.field, "flags") == 0);
    r = request(1, early);
    r.phase = 7;
    CHECK_RESULT(pipeconnect_tracker_begin(cache, &r, &t, &plan, &detail),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    r = request(1, early);
    r.struct_size = 0;
    CHECK_RESULT(pipeconnect_tracker_begin(cache, &r, &t, &plan, &detail),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(t == NULL);
    r = request(1, early);
    t = begin(cache, &r, &plan);
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK_RESULT(pipeconnect_tracker_reply(t, 99, 250, NULL, 0, &s),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_tracker_reply(t, PIPECONNECT_CMD_MAIL, 600, NULL, 0, &s),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(pipeconnect_tracker_reply(t, PIPECONNECT_CMD_MAIL, 99, NULL, 0, &s),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
    /* An unreadable EHLO reply on a classic connection is no error and teaches nothing. */
    s = reply(t, PIPECONNECT_CMD_EHLO, 250, "250-mx\n251 mixed codes");
    CHECK(s.action == PIPECONNECT_TRACKER_ACTION_PROCEED && s.flags == 0);
    pipeconnect_tracker_free(t);
    pipeconnect_tracker_free(NULL);
    CHECK(strcmp(pipeconnect_reason_name(PIPECONNECT_REASON_EXTENSION_MISSING),
                 "EXTENSION_MISSING") == 0);

    pipeconnect_cache_free(cache);
    CHECK_DONE();
}
