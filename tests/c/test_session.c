/* test_session.c: the session API through whole conversations with scripted server
 * bytes: a classic connection that learns, then the same delivery as one early flight,
 * then a server that dropped PIPECONNECT, then STARTTLS and its injection guard. */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"

static const char *EHLO_REPLY =
    "250-mx.example.org Hello client.example.net [2001:db8::1]\r\n"
    "250-SIZE 52428800\r\n"
    "250-8BITMIME\r\n"
    "250-PIPELINING\r\n"
    "250-PIPECONNECT\r\n"
    "250-CHUNKING\r\n"
    "250 HELP\r\n";

static const char *EHLO_NO_PIPECONNECT =
    "250-mx.example.org Hello client.example.net\r\n"
    "250-SIZE 52428800\r\n"
    "250-PIPELINING\r\n"
    "250-CHUNKING\r\n"
    "250 HELP\r\n";

static const char *RCPTS[] = {"a@example.org", "b@example.org"};

static pipeconnect_intent make_intent(void) {
    pipeconnect_intent in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.ehlo_name = "client.example.net";
    in.mail_from = "sender@example.net";
    in.rcpts = RCPTS;
    in.rcpt_count = 2;
    in.body_size = 2048;
    in.body_mode = PIPECONNECT_BODY_AUTO;
    return in;
}

static size_t feed(pipeconnect_session *s, const char *bytes) {
    size_t events = 999;
    CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)bytes, strlen(bytes), &events),
                 PIPECONNECT_OK);
    return events;
}

static size_t take(pipeconnect_session *s, pipeconnect_session_command *cmds, size_t cap) {
    size_t n = 999;
    cmds[0].struct_size = sizeof *cmds; /* the array's stride */
    CHECK_RESULT(pipeconnect_session_flight(s, cmds, cap, &n), PIPECONNECT_OK);
    return n;
}

static int line_is(pipeconnect_session *s, const pipeconnect_session_command *c,
                   const char *want) {
    char buf[600];
    size_t len = 0;
    if (pipeconnect_session_command_line(s, c, buf, sizeof buf, &len) != PIPECONNECT_OK)
        return 0;
    return len == strlen(want) && strcmp(buf, want) == 0;
}

static int next(pipeconnect_session *s, pipeconnect_event *ev) {
    ev->struct_size = sizeof *ev;
    return pipeconnect_session_next_event(s, ev) == PIPECONNECT_OK;
}

static int text_is(const pipeconnect_event *ev, const char *want) {
    return ev->text_len == strlen(want) && memcmp(ev->text, want, ev->text_len) == 0;
}

/* 1. Nothing cached: classic, and the EHLO reply is learned. */
static void classic_then_learned(pipeconnect_cache *cache, pipeconnect_key *key) {
    pipeconnect_intent in = make_intent();
    pipeconnect_settings settings = {sizeof(pipeconnect_settings),
                                     PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_session *s = NULL;
    pipeconnect_session_command cmds[8];
    pipeconnect_event ev;
    size_t allowed = 99;
    pipeconnect_reason reason = 99;
    pipeconnect_summary sum = {.struct_size = sizeof(pipeconnect_summary)};
    pipeconnect_caps *caps = NULL;
    bool done = true;

    CHECK_RESULT(pipeconnect_session_begin(cache, key, &in, &settings, &s, NULL), PIPECONNECT_OK);
    CHECK(s != NULL);
    CHECK(take(s, cmds, 8) == 0); /* classic: wait for the banner */
    CHECK_RESULT(pipeconnect_session_reason(s, &allowed, &reason), PIPECONNECT_OK);
    CHECK(allowed == 0 && reason == PIPECONNECT_REASON_NO_ENTRY);
    CHECK(strcmp(pipeconnect_reason_name(reason), "NO_ENTRY") == 0);
    CHECK_RESULT(pipeconnect_session_is_done(s, &done), PIPECONNECT_OK);
    CHECK(!done);

    CHECK(feed(s, "220 mx.example.org ESMTP\r\n") == 1);
    CHECK(next(s, &ev));
    CHECK(ev.kind == PIPECONNECT_CMD_BANNER && ev.code == 220 && ev.seq == 0);
    CHECK(ev.verdict == PIPECONNECT_VERDICT_CONTINUE);
    CHECK(text_is(&ev, "mx.example.org ESMTP"));
    CHECK_RESULT(pipeconnect_session_next_event(s, &ev), PIPECONNECT_NO_EVENT);

    CHECK(take(s, cmds, 8) == 1);
    CHECK(cmds[0].kind == PIPECONNECT_CMD_EHLO && cmds[0].seq == 1);
    CHECK((cmds[0].flags & PIPECONNECT_SESSION_COMMAND_EARLY) == 0);
    CHECK(line_is(s, &cmds[0], "EHLO client.example.net\r\n"));

    /* The EHLO reply split in the middle of a line. */
    CHECK(feed(s, "250-mx.example.org Hello client.example.net [2001:db8::1]\r\n250-SI") == 0);
    CHECK(feed(s, EHLO_REPLY + strlen("250-mx.example.org Hello client.example.net [2001:db8::1]\r\n250-SI")) == 1);
    CHECK(next(s, &ev));
    CHECK(ev.kind == PIPECONNECT_CMD_EHLO && ev.code == 250);
    CHECK(ev.flags & PIPECONNECT_EVENT_CACHE_STORED);

    /* RFC 2920: the transaction goes in one group; CHUNKING: BDAT LAST. */
    CHECK(take(s, cmds, 8) == 4);
    CHECK(cmds[0].kind == PIPECONNECT_CMD_MAIL && cmds[0].size == 2048);
    CHECK(line_is(s, &cmds[0], "MAIL FROM:<sender@example.net> SIZE=2048\r\n"));
    CHECK(cmds[1].kind == PIPECONNECT_CMD_RCPT && cmds[1].rcpt_index == 0);
    CHECK(line_is(s, &cmds[1], "RCPT TO:<a@example.org>\r\n"));
    CHECK(cmds[2].kind == PIPECONNECT_CMD_RCPT && cmds[2].rcpt_index == 1);
    CHECK(line_is(s, &cmds[2], "RCPT TO:<b@example.org>\r\n"));
    CHECK(cmds[3].kind == PIPECONNECT_CMD_BDAT_LAST && cmds[3].size == 2048);
    CHECK(line_is(s, &cmds[3], "BDAT 2048 LAST\r\n"));

    CHECK(feed(s, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 no such user\r\n"
                  "250 2.0.0 OK id=1abc\r\n") == 4);
    CHECK(next(s, &ev) && ev.kind == PIPECONNECT_CMD_MAIL);
    CHECK(next(s, &ev) && ev.kind == PIPECONNECT_CMD_RCPT && ev.rcpt_index == 0);
    CHECK(ev.verdict == PIPECONNECT_VERDICT_CONTINUE);
    CHECK(next(s, &ev) && ev.kind == PIPECONNECT_CMD_RCPT && ev.rcpt_index == 1);
    CHECK(ev.verdict == PIPECONNECT_VERDICT_REJECTED && ev.code == 550);
    CHECK(ev.enhanced_class == 5 && ev.enhanced_subject == 1 && ev.enhanced_detail == 1);
    CHECK(strcmp(pipeconnect_verdict_name(ev.verdict), "REJECTED") == 0);
    CHECK(next(s, &ev) && ev.kind == PIPECONNECT_CMD_BDAT_LAST);
    CHECK(ev.flags & PIPECONNECT_EVENT_MESSAGE_ACCEPTED);
    CHECK(!next(s, &ev));

    CHECK_RESULT(pipeconnect_session_is_done(s, &done), PIPECONNECT_OK);
    CHECK(done);
    CHECK_RESULT(pipeconnect_session_finish(s, &sum), PIPECONNECT_OK);
    CHECK(sum.verdict == PIPECONNECT_VERDICT_CONTINUE);
    CHECK(sum.rcpt_accepted == 1 && sum.rcpt_rejected == 1 && sum.rcpt_not_attempted == 0);
    CHECK(sum.flags & PIPECONNECT_SUMMARY_MESSAGE_ACCEPTED);
    CHECK(sum.flags & PIPECONNECT_SUMMARY_CACHE_STORED);
    CHECK((sum.flags & PIPECONNECT_SUMMARY_CLEARTEXT_EARLY) == 0);
    CHECK(sum.groups == 2);
    CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)"x", 1, &allowed),
                 PIPECONNECT_ERR_BAD_STATE);
    pipeconnect_session_free(s);

    CHECK_RESULT(pipeconnect_cache_lookup(cache, key, &caps), PIPECONNECT_OK);
    pipeconnect_caps_free(caps);
}

/* 2. Cached: the whole delivery is one early flight; replies fed one byte at a time. */
static void early_one_flight(pipeconnect_cache *cache, pipeconnect_key *key) {
    pipeconnect_intent in = make_intent();
    pipeconnect_settings settings = {sizeof(pipeconnect_settings),
                                     PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_session *s = NULL;
    pipeconnect_session_command cmds[8];
    pipeconnect_event ev;
    size_t allowed = 0, pending_cmds = 0, pending_events = 0, n = 0, i, events = 0;
    pipeconnect_reason reason = 99;
    pipeconnect_summary sum = {.struct_size = sizeof(pipeconnect_summary)};
    char stream[1024];
    pipeconnect_command_kind want[5] = {PIPECONNECT_CMD_EHLO, PIPECONNECT_CMD_MAIL,
                                        PIPECONNECT_CMD_RCPT, PIPECONNECT_CMD_RCPT,
                                        PIPECONNECT_CMD_BDAT_LAST};
    pipeconnect_command_kind got_events[8];
    size_t n_events = 0;

    CHECK_RESULT(pipeconnect_session_begin(cache, key, &in, &settings, &s, NULL), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_reason(s, &allowed, &reason), PIPECONNECT_OK);
    CHECK(allowed == 5 && reason == PIPECONNECT_REASON_END_OF_SEQUENCE);
    CHECK_RESULT(pipeconnect_session_pending(s, &pending_cmds, &pending_events), PIPECONNECT_OK);
    CHECK(pending_cmds == 5 && pending_events == 0);
    /* A small array: take the flight two at a time. */
    n = take(s, cmds, 2);
    n += take(s, cmds + 2, 2);
    n += take(s, cmds + 4, 2);
    CHECK(n == 5);
    CHECK(take(s, cmds + 5, 2) == 0);
    for (i = 0; i < 5; i++) {
        CHECK(cmds[i].kind == want[i]);
        CHECK(cmds[i].seq == i + 1);
        CHECK(cmds[i].flags & PIPECONNECT_SESSION_COMMAND_EARLY);
    }

    strcpy(stream, "220 mx.example.org ESMTP\r\n");
    strcat(stream, EHLO_REPLY);
    strcat(stream, "250 OK\r\n250 OK\r\n250 OK\r\n250 OK queued\r\n");
    for (i = 0; i < strlen(stream); i++) {
        CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)stream + i, 1, &events),
                     PIPECONNECT_OK);
        while (next(s, &ev)) {
            CHECK(ev.verdict == PIPECONNECT_VERDICT_CONTINUE);
            if (ev.kind != PIPECONNECT_CMD_BANNER)
                CHECK(ev.flags & PIPECONNECT_EVENT_EARLY);
            if (n_events < 8)
                got_events[n_events] = ev.kind;
            n_events++;
        }
    }
    CHECK(n_events == 6);
    CHECK(got_events[0] == PIPECONNECT_CMD_BANNER && got_events[1] == PIPECONNECT_CMD_EHLO);
    CHECK(got_events[5] == PIPECONNECT_CMD_BDAT_LAST);
    CHECK(take(s, cmds, 8) == 0);

    CHECK_RESULT(pipeconnect_session_finish(s, &sum), PIPECONNECT_OK);
    CHECK(sum.verdict == PIPECONNECT_VERDICT_CONTINUE);
    CHECK(sum.rcpt_accepted == 2 && sum.groups == 1);
    CHECK(sum.flags & PIPECONNECT_SUMMARY_CLEARTEXT_EARLY);
    CHECK((sum.flags & (PIPECONNECT_SUMMARY_CACHE_STORED | PIPECONNECT_SUMMARY_CACHE_INVALIDATED)) == 0);
    pipeconnect_session_free(s);
}

/* 3. The server dropped PIPECONNECT: the entry goes; the EHLO event says so. */
static void pipeconnect_dropped(pipeconnect_cache *cache, pipeconnect_key *key) {
    pipeconnect_intent in = make_intent();
    pipeconnect_settings settings = {sizeof(pipeconnect_settings),
                                     PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_session *s = NULL;
    pipeconnect_session_command cmds[8];
    pipeconnect_event ev;
    pipeconnect_caps *caps = NULL;
    pipeconnect_summary sum = {.struct_size = sizeof(pipeconnect_summary)};
    char stream[1024];
    int saw_ehlo = 0;

    CHECK_RESULT(pipeconnect_session_begin(cache, key, &in, &settings, &s, NULL), PIPECONNECT_OK);
    CHECK(take(s, cmds, 8) == 5);
    strcpy(stream, "220 mx.example.org ESMTP\r\n");
    strcat(stream, EHLO_NO_PIPECONNECT);
    strcat(stream, "250 OK\r\n250 OK\r\n250 OK\r\n250 OK queued\r\n");
    CHECK(feed(s, stream) == 6);
    while (next(s, &ev)) {
        if (ev.kind == PIPECONNECT_CMD_EHLO) {
            saw_ehlo = 1;
            CHECK(ev.flags & PIPECONNECT_EVENT_CACHE_INVALIDATED);
            CHECK(ev.flags & PIPECONNECT_EVENT_EARLY_STOPPED);
            CHECK(ev.changed_extensions & PIPECONNECT_EXT_PIPECONNECT);
        }
    }
    CHECK(saw_ehlo);
    CHECK_RESULT(pipeconnect_cache_lookup(cache, key, &caps), PIPECONNECT_NOT_FOUND);
    CHECK_RESULT(pipeconnect_session_finish(s, &sum), PIPECONNECT_OK);
    CHECK(sum.flags & PIPECONNECT_SUMMARY_EARLY_STOPPED);
    CHECK(sum.verdict == PIPECONNECT_VERDICT_CONTINUE);
    pipeconnect_session_free(s);
}

/* 4. STARTTLS: the encrypted phase after tls_started(); cleartext after the 220 is refused. */
static void starttls(pipeconnect_cache *cache) {
    pipeconnect_key *key = NULL;
    pipeconnect_intent in = make_intent();
    pipeconnect_settings settings = {sizeof(pipeconnect_settings),
                                     PIPECONNECT_SETTINGS_EARLY_ALLOWED, 0};
    pipeconnect_session *s = NULL;
    pipeconnect_session_command cmds[8];
    pipeconnect_event ev;
    pipeconnect_summary sum = {.struct_size = sizeof(pipeconnect_summary)};
    size_t events = 0;

    in.flags = PIPECONNECT_INTENT_STARTTLS;
    CHECK_RESULT(pipeconnect_key_new("192.0.2.26", 25, PIPECONNECT_TLS_CLEARTEXT, &key),
                 PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_session_begin(cache, key, &in, &settings, &s, NULL), PIPECONNECT_OK);
    CHECK(take(s, cmds, 8) == 0);
    CHECK_RESULT(pipeconnect_session_tls_started(s), PIPECONNECT_ERR_BAD_STATE);
    feed(s, "220 mx ESMTP\r\n");
    CHECK(take(s, cmds, 8) == 1);
    feed(s, "250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n");
    CHECK(take(s, cmds, 8) == 1 && cmds[0].kind == PIPECONNECT_CMD_STARTTLS);
    CHECK(line_is(s, &cmds[0], "STARTTLS\r\n"));
    feed(s, "220 2.0.0 go ahead\r\n");
    while (next(s, &ev))
        ;
    CHECK(ev.kind == PIPECONNECT_CMD_STARTTLS && ev.verdict == PIPECONNECT_VERDICT_CONTINUE);
    CHECK_RESULT(pipeconnect_session_tls_started(s), PIPECONNECT_OK);
    CHECK(take(s, cmds, 8) == 1 && cmds[0].kind == PIPECONNECT_CMD_EHLO);
    feed(s, "250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n");
    CHECK(take(s, cmds, 8) == 4 && cmds[3].kind == PIPECONNECT_CMD_DATA);
    feed(s, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    CHECK(take(s, cmds, 8) == 1 && cmds[0].kind == PIPECONNECT_CMD_BODY);
    CHECK_RESULT(pipeconnect_session_command_line(s, &cmds[0], (char *)cmds + 100, 0, &events),
                 PIPECONNECT_ERR_CANNOT_FORMAT);
    feed(s, "250 queued\r\n");
    CHECK_RESULT(pipeconnect_session_finish(s, &sum), PIPECONNECT_OK);
    CHECK(sum.verdict == PIPECONNECT_VERDICT_CONTINUE && sum.rcpt_accepted == 2);
    pipeconnect_session_free(s);

    /* Now both states are cached: EHLO + STARTTLS early, and bytes after the 220 fail. */
    CHECK_RESULT(pipeconnect_session_begin(cache, key, &in, &settings, &s, NULL), PIPECONNECT_OK);
    CHECK(take(s, cmds, 8) == 2 && cmds[1].kind == PIPECONNECT_CMD_STARTTLS);
    feed(s, "220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 STARTTLS\r\n");
    CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)"220 go\r\n250 injected\r\n", 23,
                                          &events),
                 PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS);
    CHECK_RESULT(pipeconnect_session_tls_started(s), PIPECONNECT_ERR_CLEARTEXT_AFTER_STARTTLS);
    CHECK_RESULT(pipeconnect_session_finish(s, &sum), PIPECONNECT_OK);
    CHECK(sum.flags & PIPECONNECT_SUMMARY_FAILED);
    CHECK(sum.verdict == PIPECONNECT_VERDICT_RECONNECT);
    /* After finish, taking commands is a bad state. */
    {
        size_t n = 77;
        cmds[0].struct_size = sizeof cmds[0];
        CHECK_RESULT(pipeconnect_session_flight(s, cmds, 8, &n), PIPECONNECT_ERR_BAD_STATE);
        CHECK(n == 77);
    }
    pipeconnect_session_free(s);
    pipeconnect_key_free(key);
}

int main(void) {
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *key = NULL;

    CHECK_RESULT(pipeconnect_cache_new(0, 0, &cache), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_key_new("[2001:db8::25]", 25, PIPECONNECT_TLS_CLEARTEXT, &key),
                 PIPECONNECT_OK);
    classic_then_learned(cache, key);
    early_one_flight(cache, key);
    pipeconnect_dropped(cache, key);
    starttls(cache);
    pipeconnect_key_free(key);
    /* The cache handle may go before the sessions: they hold their own reference. */
    pipeconnect_cache_free(cache);
    CHECK_DONE();
}
