/* test_out_of_step.c: no false deliveries (issue 9). Every reply must be the code its
 * command calls for; a positive reply of the wrong code puts the stream out of step: the
 * message is never reported accepted, the entry is removed, and the summary says
 * TEMPFAIL once a body went out, RECONNECT after an early flight otherwise. QUIT wants
 * 221, and a 221 read with the final 250 is no error. The raw reply and the server's
 * capabilities are there for callers that parse replies themselves. */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"

static const char *RCPTS[] = {"a@example.org"};

static pipeconnect_intent make_intent(uint32_t flags, pipeconnect_body_mode mode,
                                      uint64_t size) {
    pipeconnect_intent in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.ehlo_name = "client.example.net";
    in.flags = flags;
    in.auth_mechanism = (flags & PIPECONNECT_INTENT_AUTH) ? "PLAIN" : NULL;
    in.mail_from = "sender@example.net";
    in.rcpts = RCPTS;
    in.rcpt_count = 1;
    in.body_size = size;
    in.body_mode = mode;
    return in;
}

/* What a run saw. */
struct run {
    pipeconnect_command_kind sent[16];
    size_t n_sent;
    int accepted;              /* some event had MESSAGE_ACCEPTED */
    int out_of_step;           /* some event had OUT_OF_STEP */
    pipeconnect_command_kind oos_kind;
    uint32_t oos_code;
    pipeconnect_result feed_result; /* the first feed that failed, or OK */
    int entry_left;            /* the cache still holds the key's entry */
    pipeconnect_summary sum;
};

static void take_all(pipeconnect_session *s, struct run *r) {
    pipeconnect_session_command cmds[16];
    size_t n = 0, i;
    cmds[0].struct_size = sizeof *cmds; /* the array's stride */
    CHECK_RESULT(pipeconnect_session_flight(s, cmds, 16, &n), PIPECONNECT_OK);
    for (i = 0; i < n && r->n_sent < 16; i++)
        r->sent[r->n_sent++] = cmds[i].kind;
}

static void drain(pipeconnect_session *s, struct run *r) {
    pipeconnect_event ev = {.struct_size = sizeof(pipeconnect_event)};
    while (pipeconnect_session_next_event(s, &ev) == PIPECONNECT_OK) {
        if (ev.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED)
            r->accepted = 1;
        if ((ev.flags & PIPECONNECT_EVENT_OUT_OF_STEP) && !r->out_of_step) {
            r->out_of_step = 1;
            r->oos_kind = ev.kind;
            r->oos_code = ev.code;
        }
    }
}

/* Prime the cache (when `cached`), begin, take the first flight, then feed `stream`
 * line by line (or whole, with `whole`), taking commands after each feed like a client
 * would; `quit` plans a QUIT as soon as the session allows it. */
static struct run run_stream(const pipeconnect_intent *in, uint64_t max_first_flight_body,
                             int cached, const char *stream, int whole, int quit) {
    struct run r;
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *k = key("192.0.2.25", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_settings settings = {sizeof(pipeconnect_settings), PIPECONNECT_SETTINGS_EARLY_ALLOWED, max_first_flight_body};
    pipeconnect_session *s = NULL;
    pipeconnect_caps *caps = NULL;
    const char *p = stream;
    int quit_planned = 0;

    memset(&r, 0, sizeof r);
    r.feed_result = PIPECONNECT_OK;
    CHECK_RESULT(pipeconnect_cache_new(0, 0, &cache), PIPECONNECT_OK);
    if (cached)
        CHECK_RESULT(pipeconnect_cache_learn(cache, k, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0),
                     PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_begin(cache, k, in, &settings, &s, NULL), PIPECONNECT_OK);
    take_all(s, &r);
    while (*p) {
        const char *nl = whole ? NULL : strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        size_t events = 0;
        pipeconnect_result fr;
        if (quit && !quit_planned && pipeconnect_session_quit(s) == PIPECONNECT_OK) {
            quit_planned = 1;
            take_all(s, &r);
        }
        fr = pipeconnect_session_feed(s, (const uint8_t *)p, len, &events);
        drain(s, &r);
        take_all(s, &r);
        if (fr != PIPECONNECT_OK) {
            r.feed_result = fr;
            break;
        }
        p += len;
    }
    r.sum.struct_size = sizeof r.sum;
    CHECK_RESULT(pipeconnect_session_finish(s, &r.sum), PIPECONNECT_OK);
    pipeconnect_session_free(s);
    if (pipeconnect_cache_lookup(cache, k, &caps) == PIPECONNECT_OK) {
        r.entry_left = 1;
        pipeconnect_caps_free(caps);
    }
    pipeconnect_key_free(k);
    pipeconnect_cache_free(cache);
    return r;
}

static int sent(const struct run *r, pipeconnect_command_kind k) {
    size_t i;
    for (i = 0; i < r->n_sent; i++)
        if (r->sent[i] == k)
            return 1;
    return 0;
}

/* The stream of issue 9: four 250 lines, then 220, answering an early flight of EHLO,
 * MAIL, RCPT, BDAT LAST and its body. Read in step it would say "delivered". */
static void four_250_then_220(void) {
    pipeconnect_intent in = make_intent(0, PIPECONNECT_BODY_AUTO, 2048);
    const char *stream = "250 a\r\n250 b\r\n250 c\r\n250 d\r\n220 e\r\n";
    struct run r = run_stream(&in, 0, 1, stream, 1, 0);

    CHECK(r.n_sent == 4 && r.sent[3] == PIPECONNECT_CMD_BDAT_LAST);
    CHECK(!r.accepted);
    CHECK(r.out_of_step && r.oos_kind == PIPECONNECT_CMD_BANNER && r.oos_code == 250);
    CHECK(r.feed_result == PIPECONNECT_OK);
    CHECK(r.sum.verdict == PIPECONNECT_VERDICT_TEMPFAIL);
    CHECK((r.sum.flags & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED) == 0);
    CHECK(r.sum.flags & PIPECONNECT_SUMMARY_CACHE_INVALIDATED);
    CHECK(r.sum.rcpt_accepted == 0);
    CHECK(!r.entry_left);

    /* The same, line by line. */
    r = run_stream(&in, 0, 1, stream, 0, 0);
    CHECK(!r.accepted && r.sum.verdict == PIPECONNECT_VERDICT_TEMPFAIL && !r.entry_left);
}

/* The same stream when the body waits for a recipient (a body over the first-flight
 * limit): nothing of the message went out, so reconnect at once. The fifth reply answers
 * nothing sent. */
static void four_250_then_220_without_body(void) {
    pipeconnect_intent in = make_intent(0, PIPECONNECT_BODY_AUTO, 2048);
    struct run r = run_stream(&in, 1024, 1, "250 a\r\n250 b\r\n250 c\r\n250 d\r\n220 e\r\n", 1, 0);

    CHECK(r.n_sent == 3 && !sent(&r, PIPECONNECT_CMD_BDAT_LAST));
    CHECK(!r.accepted);
    CHECK(r.out_of_step && r.oos_kind == PIPECONNECT_CMD_BANNER);
    CHECK(r.feed_result == PIPECONNECT_ERR_UNEXPECTED_REPLY);
    CHECK(r.sum.verdict == PIPECONNECT_VERDICT_RECONNECT);
    CHECK((r.sum.flags & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED) == 0);
    CHECK(!r.entry_left);
}

/* One wrong positive code per command kind. */
struct wrong {
    const char *what;
    uint32_t intent_flags;
    pipeconnect_body_mode mode;
    int cached;
    int quit;
    const char *stream;
    pipeconnect_command_kind kind;
    uint32_t code;
    pipeconnect_verdict verdict;
    int accepted; /* the message was accepted before the wrong reply (QUIT only) */
};

static void wrong_code_per_command(void) {
    static char ehlo_then[8][512];
    const struct wrong cases[] = {
        {"banner 250", 0, PIPECONNECT_BODY_AUTO, 1, 0, "250 hi\r\n", PIPECONNECT_CMD_BANNER,
         250, PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"EHLO 220", 0, PIPECONNECT_BODY_AUTO, 1, 0, "220 hi\r\n220 hello\r\n",
         PIPECONNECT_CMD_EHLO, 220, PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"STARTTLS 250", PIPECONNECT_INTENT_STARTTLS, PIPECONNECT_BODY_AUTO, 1, 0, ehlo_then[0],
         PIPECONNECT_CMD_STARTTLS, 250, PIPECONNECT_VERDICT_RECONNECT, 0},
        {"AUTH 250", PIPECONNECT_INTENT_AUTH | PIPECONNECT_INTENT_AUTH_INITIAL_RESPONSE,
         PIPECONNECT_BODY_AUTO, 0, 0, ehlo_then[1], PIPECONNECT_CMD_AUTH, 250,
         PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"MAIL 251", 0, PIPECONNECT_BODY_AUTO, 1, 0, ehlo_then[2], PIPECONNECT_CMD_MAIL, 251,
         PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"RCPT 354", 0, PIPECONNECT_BODY_AUTO, 1, 0, ehlo_then[3], PIPECONNECT_CMD_RCPT, 354,
         PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"DATA 250", 0, PIPECONNECT_BODY_DATA, 1, 0, ehlo_then[4], PIPECONNECT_CMD_DATA, 250,
         PIPECONNECT_VERDICT_RECONNECT, 0},
        {"end of data 220", 0, PIPECONNECT_BODY_DATA, 1, 0, ehlo_then[5], PIPECONNECT_CMD_BODY,
         220, PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"BDAT LAST 220", 0, PIPECONNECT_BODY_AUTO, 1, 0, ehlo_then[6],
         PIPECONNECT_CMD_BDAT_LAST, 220, PIPECONNECT_VERDICT_TEMPFAIL, 0},
        {"QUIT 250", 0, PIPECONNECT_BODY_AUTO, 1, 1, ehlo_then[7], PIPECONNECT_CMD_QUIT, 250,
         PIPECONNECT_VERDICT_CONTINUE, 1},
    };
    const char *tails[8] = {
        "250 2.0.0 go\r\n",                                          /* STARTTLS */
        "250 2.7.0 ok\r\n250 ok\r\n250 ok\r\n250 queued\r\n",        /* AUTH */
        "251 odd\r\n250 ok\r\n250 queued\r\n",                       /* MAIL */
        "250 ok\r\n354 go on\r\n250 queued\r\n",                     /* RCPT */
        "250 ok\r\n250 ok\r\n250 ok\r\n",                            /* DATA */
        "250 ok\r\n250 ok\r\n354 go\r\n220 what\r\n",                /* end of data */
        "250 ok\r\n250 ok\r\n220 ready\r\n",                         /* BDAT LAST */
        "250 ok\r\n250 ok\r\n250 queued\r\n250 bye?\r\n",            /* QUIT */
    };
    size_t i;

    for (i = 0; i < 8; i++) {
        strcpy(ehlo_then[i], "220 mx ESMTP\r\n");
        strcat(ehlo_then[i], EXIM_EHLO);
        strcat(ehlo_then[i], tails[i]);
    }
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct wrong *w = &cases[i];
        pipeconnect_intent in = make_intent(w->intent_flags, w->mode, 2048);
        struct run r = run_stream(&in, 0, w->cached, w->stream, 0, w->quit);
        int ok = r.out_of_step && r.oos_kind == w->kind && r.oos_code == w->code &&
                 r.accepted == w->accepted && r.sum.verdict == w->verdict && !r.entry_left &&
                 ((r.sum.flags & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED) != 0) == w->accepted;
        if (!ok)
            fprintf(stderr,
                    "%s: out_of_step=%d kind=%u code=%u accepted=%d verdict=%u entry_left=%d\n",
                    w->what, r.out_of_step, r.oos_kind, r.oos_code, r.accepted,
                    r.sum.verdict, r.entry_left);
        CHECK(ok);
    }
}

/* QUIT pipelined behind BDAT LAST: the 250 and the 221 in one read. No error, the
 * message delivered, the entry kept; the same when the caller sent QUIT unplanned. */
static void final_250_and_221_in_one_read(void) {
    pipeconnect_intent in = make_intent(0, PIPECONNECT_BODY_AUTO, 2048);
    char stream[1024];
    struct run r;
    int planned;

    strcpy(stream, "220 mx ESMTP\r\n");
    strcat(stream, EXIM_EHLO);
    strcat(stream, "250 ok\r\n250 ok\r\n250 queued\r\n221 bye\r\n");
    for (planned = 0; planned <= 1; planned++) {
        r = run_stream(&in, 0, 1, stream, 1, planned);
        CHECK(r.feed_result == PIPECONNECT_OK);
        CHECK(sent(&r, PIPECONNECT_CMD_QUIT) == planned);
        CHECK(r.accepted && !r.out_of_step);
        CHECK(r.sum.verdict == PIPECONNECT_VERDICT_CONTINUE);
        CHECK((r.sum.flags & (PIPECONNECT_SUMMARY_FAILED | PIPECONNECT_SUMMARY_CACHE_INVALIDATED)) == 0);
        CHECK(r.sum.replies_outstanding == 0);
        CHECK(r.entry_left);
    }

    /* Shifted by one (the RCPT's reply lost): the 221 lands on BDAT LAST. */
    strcpy(stream, "220 mx ESMTP\r\n");
    strcat(stream, EXIM_EHLO);
    strcat(stream, "250 ok\r\n250 queued\r\n221 bye\r\n");
    r = run_stream(&in, 0, 1, stream, 1, 1);
    CHECK(!r.accepted);
    CHECK(r.out_of_step && r.oos_kind == PIPECONNECT_CMD_BDAT_LAST && r.oos_code == 221);
    CHECK(r.sum.verdict == PIPECONNECT_VERDICT_TEMPFAIL && !r.entry_left);
}

/* The policy function applies the same rule. */
static void policy_outcome_agrees(void) {
    pipeconnect_settings settings = {sizeof(pipeconnect_settings), PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_outcome o = {.struct_size = sizeof(pipeconnect_outcome)};

    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_BANNER, 250,
                                            PIPECONNECT_CONTEXT_EARLY_USED, &settings, &o),
                 PIPECONNECT_OK);
    CHECK((o.flags & PIPECONNECT_EVENT_OUT_OF_STEP) && o.verdict == PIPECONNECT_VERDICT_RECONNECT);
    CHECK(o.cache == PIPECONNECT_CACHE_INVALIDATE);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_BANNER, 250,
                                            PIPECONNECT_CONTEXT_EARLY_USED |
                                                PIPECONNECT_CONTEXT_BODY_SENT,
                                            &settings, &o),
                 PIPECONNECT_OK);
    CHECK(o.verdict == PIPECONNECT_VERDICT_TEMPFAIL);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_BDAT_LAST, 220, 0, &settings, &o),
                 PIPECONNECT_OK);
    CHECK((o.flags & PIPECONNECT_EVENT_OUT_OF_STEP) && !(o.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED));
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_QUIT, 221, 0, &settings, &o),
                 PIPECONNECT_OK);
    CHECK(o.verdict == PIPECONNECT_VERDICT_CONTINUE && (o.flags & PIPECONNECT_EVENT_CONNECTION_DONE));
    CHECK(strcmp(pipeconnect_command_name(PIPECONNECT_CMD_QUIT), "QUIT") == 0);
    CHECK_RESULT(pipeconnect_policy_outcome(PIPECONNECT_CMD_BANNER, 220, 16, &settings, &o),
                 PIPECONNECT_ERR_INVALID_ARGUMENT);
}

/* The reply as received, and the server's capabilities. */
static void raw_reply_and_server_caps(void) {
    pipeconnect_intent in = make_intent(0, PIPECONNECT_BODY_AUTO, 2048);
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *k = key("192.0.2.26", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_settings settings = {sizeof(pipeconnect_settings), PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_session *s = NULL;
    pipeconnect_session_command cmds[8];
    pipeconnect_event ev = {.struct_size = sizeof(pipeconnect_event)};
    pipeconnect_caps *caps = NULL;
    pipeconnect_summary sum = {.struct_size = sizeof(pipeconnect_summary)};
    size_t n = 0, events = 0;
    bool has = false;
    const char *rcpt = "550-5.1.1 <a@example.org>: no such user\r\n550 5.1.1 try another\n";
    const char *rcpt_raw = "550-5.1.1 <a@example.org>: no such user\r\n550 5.1.1 try another\r\n";

    memset(cmds, 0, sizeof cmds);
    cmds[0].struct_size = sizeof cmds[0]; /* the array's stride */
    CHECK_RESULT(pipeconnect_cache_new(0, 0, &cache), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_begin(cache, k, &in, &settings, &s, NULL), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_server_caps(s, &caps), PIPECONNECT_NOT_FOUND);
    CHECK(caps == NULL);
    CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)"220 mx ESMTP\r\n", 14, &events),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_next_event(s, &ev), PIPECONNECT_OK);
    CHECK(ev.raw_len == 14 && memcmp(ev.raw, "220 mx ESMTP\r\n", 14) == 0);
    CHECK_RESULT(pipeconnect_session_flight(s, cmds, 8, &n), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_feed(s, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, &events),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_next_event(s, &ev), PIPECONNECT_OK);
    CHECK(ev.raw_len == EXIM_EHLO_LEN && memcmp(ev.raw, EXIM_EHLO, ev.raw_len) == 0);
    CHECK_RESULT(pipeconnect_session_server_caps(s, &caps), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_caps_has(caps, PIPECONNECT_EXT_PIPECONNECT, &has), PIPECONNECT_OK);
    CHECK(has);
    pipeconnect_caps_free(caps);
    CHECK_RESULT(pipeconnect_session_flight(s, cmds, 8, &n), PIPECONNECT_OK);
    CHECK(n == 3);
    CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)"250 2.1.0 ok\r\n", 14, &events),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)rcpt, strlen(rcpt), &events),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_next_event(s, &ev), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_next_event(s, &ev), PIPECONNECT_OK);
    CHECK(ev.kind == PIPECONNECT_CMD_RCPT && ev.code == 550);
    CHECK(ev.raw_len == strlen(rcpt_raw) && memcmp(ev.raw, rcpt_raw, ev.raw_len) == 0);
    CHECK_RESULT(pipeconnect_session_finish(s, &sum), PIPECONNECT_OK);
    pipeconnect_session_free(s);
    pipeconnect_key_free(k);
    pipeconnect_cache_free(cache);
}

int main(void) {
    four_250_then_220();
    four_250_then_220_without_body();
    wrong_code_per_command();
    final_250_and_221_in_one_read();
    policy_outcome_agrees();
    raw_reply_and_server_caps();
    CHECK_DONE();
}
