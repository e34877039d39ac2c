/* check.h: a tiny assertion helper for the C tests. Each failed CHECK prints where and
 * what, and the program's exit status counts the failures. */
#ifndef PIPECONNECT_TEST_CHECK_H
#define PIPECONNECT_TEST_CHECK_H

#include <stdio.h>

static int check_failures = 0;
static int check_passes = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            check_passes++;                                                             \
        } else {                                                                        \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                               \
    } while (0)

/* CHECK_RESULT(call, expected): the call returns the expected pipeconnect_result. */
#define CHECK_RESULT(call, expected)                                                    \
    do {                                                                                \
        pipeconnect_result check_r_ = (call);                                           \
        if (check_r_ == (expected)) {                                                   \
            check_passes++;                                                             \
        } else {                                                                        \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s\n", __FILE__,      \
                    __LINE__, #call, (int)check_r_,                                     \
                    pipeconnect_result_message((int)check_r_), #expected);             \
        }                                                                               \
    } while (0)

#define CHECK_DONE()                                                                    \
    do {                                                                                \
        printf("%d passed, %d failed\n", check_passes, check_failures);                 \
        return check_failures == 0 ? 0 : 1;                                             \
    } while (0)

#endif
