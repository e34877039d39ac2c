/* test_null_tracker.c: every pointer argument of the tracker functions NULL in turn gives
 * PIPECONNECT_ERR_NULL_POINTER (never a crash) and writes no output. */
#include <pipeconnect.h>
#include <string.h>

#include "check.h"

static pipeconnect_cache *CACHE;
static pipeconnect_tracker *TRACKER;
static pipeconnect_tracker_request REQUEST;
static pipeconnect_tracker *NEW_TRACKER;
static pipeconnect_tracker_plan PLAN;
static pipeconnect_tracker_step STEP;
static const char *EHLO = "250-mx\n250-PIPELINING\n250 PIPECONNECT";

#define P(i, p) ((which) == (i) ? NULL : (p))

static pipeconnect_result tracker_begin(int which) {
    return pipeconnect_tracker_begin(P(0, CACHE), P(1, &REQUEST), P(2, &NEW_TRACKER),
                                     P(3, &PLAN), NULL);
}
static pipeconnect_result tracker_reply(int which) {
    return pipeconnect_tracker_reply(P(0, TRACKER), PIPECONNECT_CMD_EHLO, 250,
                                     (const uint8_t *)EHLO, strlen(EHLO), P(1, &STEP));
}

struct row {
    const char *name;
    pipeconnect_result (*call)(int which);
    int pointers;
};

static const struct row ROWS[] = {
    {"pipeconnect_tracker_begin", tracker_begin, 4},
    {"pipeconnect_tracker_reply", tracker_reply, 2},
};

static void preset(void) {
    NEW_TRACKER = (pipeconnect_tracker *)&PLAN;
    memset(&PLAN, 0x5a, sizeof PLAN);
    PLAN.struct_size = sizeof PLAN;
    memset(&STEP, 0x5a, sizeof STEP);
    STEP.struct_size = sizeof STEP;
}

static int untouched(void) {
    pipeconnect_tracker_plan p;
    pipeconnect_tracker_step s;
    memset(&p, 0x5a, sizeof p);
    p.struct_size = sizeof p;
    memset(&s, 0x5a, sizeof s);
    s.struct_size = sizeof s;
    return NEW_TRACKER == (pipeconnect_tracker *)&PLAN && memcmp(&PLAN, &p, sizeof p) == 0 &&
           memcmp(&STEP, &s, sizeof s) == 0;
}

int main(void) {
    size_t r;
    int w;
    pipeconnect_tracker_plan plan = {.struct_size = sizeof(pipeconnect_tracker_plan)};
    pipeconnect_error_detail detail = {.struct_size = sizeof(pipeconnect_error_detail)};

    memset(&REQUEST, 0, sizeof REQUEST);
    REQUEST.struct_size = sizeof REQUEST;
    REQUEST.server = "2001:db8::25";
    REQUEST.port = 25;
    REQUEST.flags = PIPECONNECT_TRACKER_EARLY_ALLOWED;
    REQUEST.rcpt_count = 1;
    CHECK_RESULT(pipeconnect_cache_new(0, 0, &CACHE), PIPECONNECT_OK);
    CHECK_RESULT(pipeconnect_tracker_begin(CACHE, &REQUEST, &TRACKER, &plan, NULL),
                 PIPECONNECT_OK);

    for (r = 0; r < sizeof ROWS / sizeof ROWS[0]; r++) {
        for (w = 0; w < ROWS[r].pointers; w++) {
            pipeconnect_result got;
            preset();
            got = ROWS[r].call(w);
            if (got != PIPECONNECT_ERR_NULL_POINTER)
                fprintf(stderr, "%s with pointer argument %d NULL returned %d\n", ROWS[r].name,
                        w, (int)got);
            CHECK(got == PIPECONNECT_ERR_NULL_POINTER);
            CHECK(untouched());
        }
    }

    /* NULL inside the request: the server is required, the rest may be NULL. */
    REQUEST.server = NULL;
    NEW_TRACKER = NULL;
    CHECK_RESULT(pipeconnect_tracker_begin(CACHE, &REQUEST, &NEW_TRACKER, &plan, &detail),
                 PIPECONNECT_ERR_NULL_POINTER);
    CHECK(NEW_TRACKER == NULL && strcmp(detail.field, "server") == 0);
    /* The reply text may be NULL (with length 0) where it is not read; a length with a
     * NULL text is refused. */
    STEP.struct_size = sizeof STEP;
    CHECK_RESULT(pipeconnect_tracker_reply(TRACKER, PIPECONNECT_CMD_MAIL, 250, NULL, 0, &STEP),
                 PIPECONNECT_OK);
    CHECK(STEP.action == PIPECONNECT_TRACKER_ACTION_PROCEED);
    CHECK_RESULT(pipeconnect_tracker_reply(TRACKER, PIPECONNECT_CMD_MAIL, 250, NULL, 5, &STEP),
                 PIPECONNECT_ERR_NULL_POINTER);

    pipeconnect_tracker_free(TRACKER);
    pipeconnect_cache_free(CACHE);
    CHECK_DONE();
}
