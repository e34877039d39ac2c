/*
 * Sanitizer canaries: each mode does one deliberate out-of-bounds read, so that
 * `make test-sanitize` can prove AddressSanitizer is really on in both halves of the
 * build before it trusts a clean run.
 *
 *   canary c      a heap read one byte past an 8-byte malloc() in this C program
 *   canary rust   the same inside libpipeconnect, through pipeconnect_sanitizer_canary(),
 *                 which exists only in the sanitizer build (--cfg pipeconnect_sanitizer_canary)
 *   canary none   no fault: exits 0 (the harness checks that too)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not in the header: only the sanitizer build of the library exports it. */
extern uint8_t pipeconnect_sanitizer_canary(size_t index);

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "none";
    volatile size_t past = 8;
    if (strcmp(mode, "c") == 0) {
        char *p = malloc(8);
        if (p == NULL)
            return 2;
        memset(p, 1, 8);
        printf("read %d\n", p[past]);
        free(p);
        return 0;
    }
    if (strcmp(mode, "rust") == 0) {
        printf("read %u\n", (unsigned)pipeconnect_sanitizer_canary(past));
        return 0;
    }
    printf("read %u\n", (unsigned)pipeconnect_sanitizer_canary(past - 1));
    return 0;
}
