/* test_old_structs.c: callers built against other versions of the header. An "old"
 * caller has a prefix of each struct (fields added later missing); a "new" caller has
 * fields this library does not know yet. Both must work against this library:
 *   - a struct the library reads: missing fields count as 0 (the default); unknown
 *     fields must be 0, else PIPECONNECT_ERR_INVALID_ARGUMENT;
 *   - a struct the library writes: it writes no byte past the caller's struct_size (a
 *     canary after each old struct stays intact) and zero-fills fields it does not know;
 *   - arrays: the stride is the first element's struct_size. */
#include <pipeconnect.h>
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "fixtures.h"

#define CANARY 0xC5C5C5C5C5C5C5C5ull

/* Old layouts: the current ones cut after some field. */
struct old_settings { size_t struct_size; uint32_t flags; }; /* no max_first_flight_body */
struct old_intent {                                         /* no body_size */
    size_t struct_size;
    const char *ehlo_name;
    uint32_t flags;
    uint32_t body_mode;
    const char *auth_mechanism;
    const char *mail_from;
    const char *const *rcpts;
    size_t rcpt_count;
};
struct old_command { size_t struct_size; uint32_t kind; uint32_t flags; }; /* no size, mechanism */
struct old_event {                                                    /* up to code */
    size_t struct_size;
    size_t seq;
    uint32_t kind, verdict, flags, code;
};
struct old_summary { size_t struct_size; uint32_t verdict, flags; size_t rcpt_accepted; };
struct old_stats { size_t struct_size; uint64_t entries, hits; };
struct old_limits { size_t struct_size; uint32_t mail_max; uint32_t pad_; };
struct old_session_command { size_t struct_size; size_t seq; uint32_t kind, flags; };

/* New layouts: the current ones with a field appended. */
struct new_settings { pipeconnect_settings cur; uint64_t future; };
struct new_command { pipeconnect_command cur; uint64_t future; };
struct new_event { pipeconnect_event cur; uint64_t future[4]; };
struct new_stats { pipeconnect_cache_stats cur; uint64_t future[2]; };
struct new_session_command { pipeconnect_session_command cur; uint64_t future; };

/* An old struct followed by a canary, to see that the library writes no further. */
#define GUARDED(T) struct { T s; uint64_t canary; }

static const char *RCPTS[] = {"a@example.org"};

static void learn(pipeconnect_cache *cache, pipeconnect_key *key) {
    CHECK_RESULT(pipeconnect_cache_learn(cache, key, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0),
                 PIPECONNECT_OK);
}

int main(void) {
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *k = key("192.0.2.25", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_caps *caps = NULL;
    pipeconnect_session *s = NULL;
    size_t n = 0, allowed = 0;
    pipeconnect_reason reason = 0;

    CHECK_RESULT(pipeconnect_cache_new(0, 0, &cache), PIPECONNECT_OK);
    learn(cache, k);
    CHECK_RESULT(pipeconnect_cache_lookup(cache, k, &caps), PIPECONNECT_OK);

    /* Output: old stats get a prefix; the canary after them is untouched. */
    {
        GUARDED(struct old_stats) g;
        memset(&g, 0, sizeof g);
        g.s.struct_size = sizeof g.s;
        g.canary = CANARY;
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, (pipeconnect_cache_stats *)&g.s),
                     PIPECONNECT_OK);
        CHECK(g.s.struct_size == sizeof g.s);
        CHECK(g.s.entries == 1 && g.s.hits == 1);
        CHECK(g.canary == CANARY);
    }
    /* Output: new stats get every known field and zero in the unknown ones. */
    {
        struct new_stats ns;
        memset(&ns, 0x77, sizeof ns);
        ns.cur.struct_size = sizeof ns;
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &ns.cur), PIPECONNECT_OK);
        CHECK(ns.cur.entries == 1 && ns.cur.inserts == 1);
        CHECK(ns.future[0] == 0 && ns.future[1] == 0);
        CHECK(ns.cur.struct_size == sizeof ns);
    }
    /* Output: old limits. */
    {
        GUARDED(struct old_limits) g;
        memset(&g, 0x11, sizeof g);
        g.s.struct_size = sizeof g.s;
        g.canary = CANARY;
        CHECK_RESULT(pipeconnect_caps_limits(caps, (pipeconnect_limits *)&g.s), PIPECONNECT_OK);
        CHECK(g.s.mail_max == 0 && g.canary == CANARY);
    }

    /* Input: old settings (no body limit: the default) and an old command array. */
    {
        struct old_settings os;
        struct old_command seq[4];
        pipeconnect_situation sit;
        size_t i;
        memset(&os, 0, sizeof os);
        os.struct_size = sizeof os;
        os.flags = PIPECONNECT_SETTINGS_EARLY_ALLOWED;
        memset(&sit, 0, sizeof sit);
        sit.struct_size = sizeof sit;
        sit.phase = PIPECONNECT_PHASE_CLEARTEXT;
        sit.flags = PIPECONNECT_SITUATION_EHLO_NAME_KNOWN;
        memset(seq, 0, sizeof seq);
        for (i = 0; i < 4; i++) seq[i].struct_size = sizeof seq[i];
        seq[0].kind = PIPECONNECT_CMD_EHLO;
        seq[1].kind = PIPECONNECT_CMD_MAIL;
        seq[2].kind = PIPECONNECT_CMD_RCPT;
        seq[3].kind = PIPECONNECT_CMD_DATA;
        CHECK_RESULT(pipeconnect_policy_early_flight(caps, &sit, (pipeconnect_settings *)&os,
                                                     (pipeconnect_command *)seq, 4, &allowed,
                                                     &reason, NULL),
                     PIPECONNECT_OK);
        CHECK(allowed == 4 && reason == PIPECONNECT_REASON_DATA_ENDS_FLIGHT);
    }
    /* Input: new settings and commands, their unknown fields 0: accepted; set: refused. */
    {
        struct new_settings ns;
        struct new_command seq[2];
        pipeconnect_situation sit;
        pipeconnect_error_detail d;
        memset(&d, 0, sizeof d);
        d.struct_size = sizeof d;
        memset(&ns, 0, sizeof ns);
        ns.cur.struct_size = sizeof ns;
        ns.cur.flags = PIPECONNECT_SETTINGS_EARLY_ALLOWED;
        memset(&sit, 0, sizeof sit);
        sit.struct_size = sizeof sit;
        sit.flags = PIPECONNECT_SITUATION_EHLO_NAME_KNOWN;
        memset(seq, 0, sizeof seq);
        seq[0].cur.struct_size = sizeof seq[0];
        seq[0].cur.kind = PIPECONNECT_CMD_EHLO;
        seq[1].cur.struct_size = sizeof seq[1];
        seq[1].cur.kind = PIPECONNECT_CMD_STARTTLS;
        CHECK_RESULT(pipeconnect_policy_early_flight(caps, &sit, &ns.cur, &seq[0].cur, 2, &allowed,
                                                     &reason, &d),
                     PIPECONNECT_OK);
        CHECK(allowed == 2 && reason == PIPECONNECT_REASON_STARTTLS_ENDS_FLIGHT);
        seq[1].future = 1;
        CHECK_RESULT(pipeconnect_policy_early_flight(caps, &sit, &ns.cur, &seq[0].cur, 2, &allowed,
                                                     &reason, &d),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK((d.flags & PIPECONNECT_DETAIL_HAS_INDEX) && d.index == 1);
        seq[1].future = 0;
        ns.future = 42;
        CHECK_RESULT(pipeconnect_policy_early_flight(caps, &sit, &ns.cur, &seq[0].cur, 2, &allowed,
                                                     &reason, &d),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK(strcmp(d.field, "pipeconnect_settings") == 0);
    }

    /* A whole session through old structs: old intent (no body_size), old settings, an
     * old command array taken at its own stride, old events and an old summary. */
    {
        struct old_intent in;
        struct old_settings os;
        struct old_session_command cmds[8];
        GUARDED(struct old_event) ev;
        GUARDED(struct old_summary) sum;
        const size_t stride = sizeof cmds[0]; /* smaller than this library's */
        size_t i, events = 0;
        int saw_ehlo = 0;
        memset(&in, 0, sizeof in);
        in.struct_size = sizeof in;
        in.ehlo_name = "client.example.net";
        in.mail_from = "s@example.net";
        in.rcpts = RCPTS;
        in.rcpt_count = 1;
        memset(&os, 0, sizeof os);
        os.struct_size = sizeof os;
        os.flags = PIPECONNECT_SETTINGS_EARLY_ALLOWED;
        CHECK_RESULT(pipeconnect_session_begin(cache, k, (pipeconnect_intent *)&in,
                                               (pipeconnect_settings *)&os, &s, NULL),
                     PIPECONNECT_OK);
        /* The array is taken at the old stride: element i at cmds + i * stride. */
        memset(cmds, 0x66, sizeof cmds);
        cmds[0].struct_size = stride;
        CHECK_RESULT(pipeconnect_session_flight(s, (pipeconnect_session_command *)cmds, 8, &n),
                     PIPECONNECT_OK);
        CHECK(n >= 3 && n < 8);
        for (i = 0; i < n && i < 8; i++) {
            CHECK(cmds[i].struct_size == stride);
            CHECK(cmds[i].seq == i + 1);
            if (cmds[i].kind == PIPECONNECT_CMD_EHLO) saw_ehlo = 1;
        }
        CHECK(saw_ehlo);
        if (n < 8) CHECK(cmds[n].seq == (size_t)0x6666666666666666ull); /* not written */
        {
            char line[600];
            size_t len = 0;
            /* An old command read back (its missing fields 0) formats. */
            CHECK_RESULT(pipeconnect_session_command_line(
                             s, (const pipeconnect_session_command *)&cmds[0], line,
                             sizeof line, &len),
                         PIPECONNECT_OK);
            CHECK(strcmp(line, "EHLO client.example.net\r\n") == 0);
        }
        {
            static const char R[] = "220 mx ESMTP\r\n";
            CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)R, strlen(R), &events),
                         PIPECONNECT_OK);
        }
        memset(&ev, 0x33, sizeof ev);
        ev.s.struct_size = sizeof ev.s;
        ev.canary = CANARY;
        CHECK_RESULT(pipeconnect_session_next_event(s, (pipeconnect_event *)&ev.s), PIPECONNECT_OK);
        CHECK(ev.s.kind == PIPECONNECT_CMD_BANNER && ev.s.code == 220 && ev.s.seq == 0);
        CHECK(ev.canary == CANARY);
        memset(&sum, 0x44, sizeof sum);
        sum.s.struct_size = sizeof sum.s;
        sum.canary = CANARY;
        CHECK_RESULT(pipeconnect_session_finish(s, (pipeconnect_summary *)&sum.s), PIPECONNECT_OK);
        CHECK(sum.s.verdict == PIPECONNECT_VERDICT_RECONNECT);
        CHECK(sum.canary == CANARY);
        pipeconnect_session_free(s);
        s = NULL;
    }

    /* A whole session through new structs: a bigger command stride and bigger events. */
    {
        pipeconnect_intent in;
        pipeconnect_settings set;
        struct new_session_command cmds[8];
        struct new_event ev;
        size_t i, events = 0;
        learn(cache, k); /* the old session's failure invalidated the entry */
        memset(&in, 0, sizeof in);
        in.struct_size = sizeof in;
        in.ehlo_name = "client.example.net";
        in.mail_from = "s@example.net";
        in.rcpts = RCPTS;
        in.rcpt_count = 1;
        memset(&set, 0, sizeof set);
        set.struct_size = sizeof set;
        set.flags = PIPECONNECT_SETTINGS_EARLY_ALLOWED;
        CHECK_RESULT(pipeconnect_session_begin(cache, k, &in, &set, &s, NULL), PIPECONNECT_OK);
        memset(cmds, 0x66, sizeof cmds);
        cmds[0].cur.struct_size = sizeof cmds[0];
        CHECK_RESULT(pipeconnect_session_flight(s, &cmds[0].cur, 8, &n), PIPECONNECT_OK);
        CHECK(n >= 3);
        for (i = 0; i < n; i++) {
            CHECK(cmds[i].cur.struct_size == sizeof cmds[0]);
            CHECK(cmds[i].future == 0);
            CHECK(cmds[i].cur.seq == i + 1);
        }
        {
            static const char R[] = "220 mx ESMTP\r\n";
            CHECK_RESULT(pipeconnect_session_feed(s, (const uint8_t *)R, strlen(R), &events),
                         PIPECONNECT_OK);
        }
        memset(&ev, 0x55, sizeof ev);
        ev.cur.struct_size = sizeof ev;
        CHECK_RESULT(pipeconnect_session_next_event(s, &ev.cur), PIPECONNECT_OK);
        CHECK(ev.cur.code == 220 && ev.cur.text_len > 0);
        CHECK(ev.future[0] == 0 && ev.future[3] == 0);
        pipeconnect_session_free(s);
    }

    /* A forgotten struct_size is refused, on input and on output. */
    {
        pipeconnect_cache_stats st;
        memset(&st, 0, sizeof st);
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &st), PIPECONNECT_ERR_INVALID_ARGUMENT);
        st.struct_size = 3;
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &st), PIPECONNECT_ERR_INVALID_ARGUMENT);
        st.struct_size = 1u << 20;
        CHECK_RESULT(pipeconnect_cache_get_stats(cache, &st), PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK(PIPECONNECT_STRUCT_SIZE_MAX == 4096);
    }

    pipeconnect_caps_free(caps);
    pipeconnect_key_free(k);
    pipeconnect_cache_free(cache);
    CHECK_DONE();
}
