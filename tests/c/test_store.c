/* The shared file store from C: open a store file, learn, look up, share it with a
 * fork()ed child through the same handle and through a second open, and refuse hostile
 * paths with their own results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pipeconnect.h"
#include "check.h"
#include "fixtures.h"

static pipeconnect_result lookup(const pipeconnect_cache *c, const pipeconnect_key *k) {
    pipeconnect_caps *caps = NULL;
    pipeconnect_result r = pipeconnect_cache_lookup(c, k, &caps);
    pipeconnect_caps_free(caps);
    return r;
}

/* Open `path` and expect `expected`; on an error nothing may be written to the out
 * parameter. */
static void open_expect(const char *path, const pipeconnect_store_options *o,
                        pipeconnect_result expected, int line) {
    pipeconnect_cache *c = NULL;
    pipeconnect_result r = pipeconnect_cache_open(path, o, &c, NULL);
    if (r != expected) {
        fprintf(stderr, "line %d: open %s returned %d (%s)\n", line, path, (int)r,
                pipeconnect_result_message((int)r));
    }
    CHECK(r == expected);
    CHECK((r == PIPECONNECT_OK) == (c != NULL));
    pipeconnect_cache_free(c);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, 0600);
}

int main(void) {
    char dir[] = "/tmp/pipeconnect-c-store-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], link_path[256], sub[256], junk[256];
    snprintf(path, sizeof path, "%s/store", dir);
    snprintf(link_path, sizeof link_path, "%s/link", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(junk, sizeof junk, "%s/junk", dir);

    pipeconnect_store_options opts;
    memset(&opts, 0xff, sizeof opts);
    opts.struct_size = sizeof opts;
    CHECK_RESULT(pipeconnect_store_options_default(&opts), PIPECONNECT_OK);
    CHECK(opts.struct_size == sizeof opts);
    CHECK(opts.sets == 0 && opts.ways == 0 && opts.ttl_seconds == 0);
    CHECK(opts.mode == 0600 && opts.flags == 0);
    opts.sets = 64;
    opts.ways = 4;

    pipeconnect_cache *cache = NULL;
    CHECK_RESULT(pipeconnect_cache_open(path, &opts, &cache, NULL), PIPECONNECT_OK);
    CHECK(cache != NULL);
    if (cache == NULL) {
        CHECK_DONE();
    }
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == geteuid());
    CHECK(st.st_size == 4096 + 64 * (64 + 4 * 768));

    pipeconnect_key *k = key("192.0.2.1", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_key *k_tls = key("192.0.2.1", 25, PIPECONNECT_TLS_ENCRYPTED);
    pipeconnect_key *k_child = key("2001:db8::9", 587, PIPECONNECT_TLS_ENCRYPTED);
    CHECK_RESULT(lookup(cache, k), PIPECONNECT_NOT_FOUND);
    CHECK_RESULT(pipeconnect_cache_learn(cache, k, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0),
                 PIPECONNECT_OK);
    CHECK_RESULT(lookup(cache, k), PIPECONNECT_OK);
    CHECK_RESULT(lookup(cache, k_tls), PIPECONNECT_NOT_FOUND);

    /* A child made by fork() uses the handle it inherited: it finds what the parent
     * learned, and what it learns the parent finds. */
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int code = 0;
        if (lookup(cache, k) != PIPECONNECT_OK) code |= 1;
        if (pipeconnect_cache_learn(cache, k_child, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0) !=
            PIPECONNECT_OK)
            code |= 2;
        _exit(code);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RESULT(lookup(cache, k_child), PIPECONNECT_OK);

    /* A second open of the same path (NULL options: the file's own geometry) shares it. */
    pipeconnect_cache *again = NULL;
    CHECK_RESULT(pipeconnect_cache_open(path, NULL, &again, NULL), PIPECONNECT_OK);
    if (again) {
        CHECK_RESULT(lookup(again, k), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_forget(again, k), PIPECONNECT_OK);
        CHECK_RESULT(lookup(cache, k), PIPECONNECT_NOT_FOUND);
        pipeconnect_cache_free(again);
    }

    pipeconnect_cache_stats stats = {.struct_size = sizeof(pipeconnect_cache_stats)};
    CHECK_RESULT(pipeconnect_cache_get_stats(cache, &stats), PIPECONNECT_OK);
    CHECK(stats.entries == 1);
    CHECK(stats.inserts == 2);
    CHECK(stats.hits == 4);
    CHECK(stats.misses == 3);
    CHECK(stats.invalidations == 1);
    CHECK_RESULT(pipeconnect_cache_clear(cache), PIPECONNECT_OK);
    CHECK_RESULT(lookup(cache, k_child), PIPECONNECT_NOT_FOUND);

    /* Hostile paths: each refused with its own result, nothing written to cache_out. */
    CHECK(symlink(path, link_path) == 0);
    open_expect(link_path, &opts, PIPECONNECT_ERR_STORE_SYMLINK, __LINE__);
    opts.flags = PIPECONNECT_STORE_REBUILD_IF_INVALID;
    open_expect(link_path, &opts, PIPECONNECT_ERR_STORE_SYMLINK, __LINE__);
    opts.flags = 0;
    CHECK(mkdir(sub, 0700) == 0);
    open_expect(sub, &opts, PIPECONNECT_ERR_STORE_NOT_REGULAR, __LINE__);
    write_file(junk, "this is not a store file, but it is long enough to have a header\n");
    open_expect(junk, &opts, PIPECONNECT_ERR_STORE_BAD_MAGIC, __LINE__);
    chmod(path, 0620);
    open_expect(path, &opts, PIPECONNECT_ERR_STORE_PERMISSIONS, __LINE__);
    chmod(path, 0600);
    opts.sets = 128;
    open_expect(path, &opts, PIPECONNECT_ERR_STORE_GEOMETRY, __LINE__);
    opts.sets = 64;
    /* With the rebuild flag, a file of ours that is not a store is replaced. */
    opts.flags = PIPECONNECT_STORE_REBUILD_IF_INVALID;
    open_expect(junk, &opts, PIPECONNECT_OK, __LINE__);
    opts.flags = 0;
    open_expect(junk, &opts, PIPECONNECT_OK, __LINE__);

    /* Arguments. */
    pipeconnect_cache *none = NULL;
    CHECK_RESULT(pipeconnect_cache_open(NULL, &opts, &none, NULL), PIPECONNECT_ERR_NULL_POINTER);
    CHECK_RESULT(pipeconnect_cache_open(path, &opts, NULL, NULL), PIPECONNECT_ERR_NULL_POINTER);
    CHECK_RESULT(pipeconnect_store_options_default(NULL), PIPECONNECT_ERR_NULL_POINTER);
    CHECK_RESULT(pipeconnect_cache_open("", &opts, &none, NULL), PIPECONNECT_ERR_INVALID_ARGUMENT);
    opts.flags = 1u << 7;
    CHECK_RESULT(pipeconnect_cache_open(path, &opts, &none, NULL), PIPECONNECT_ERR_INVALID_ARGUMENT);
    opts.flags = 0;
    opts.mode = 0666;
    CHECK_RESULT(pipeconnect_cache_open(path, &opts, &none, NULL), PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(none == NULL);
    CHECK(strlen(pipeconnect_result_message(PIPECONNECT_ERR_STORE_SYMLINK)) > 0);
    opts.mode = 0600;

    /* Error detail: the errno value behind a store I/O error, the option at fault. */
    {
        pipeconnect_error_detail d = {.struct_size = sizeof(pipeconnect_error_detail)};
        char missing[300];
        snprintf(missing, sizeof missing, "%s/no-such-folder/store", dir);
        CHECK_RESULT(pipeconnect_cache_open(missing, &opts, &none, &d), PIPECONNECT_ERR_STORE_IO);
        CHECK(d.result == PIPECONNECT_ERR_STORE_IO);
        CHECK(d.os_errno == ENOENT);
        CHECK(strcmp(d.field, "path") == 0);
        CHECK(strlen(d.message) > 0);
        opts.flags = 1u << 7;
        CHECK_RESULT(pipeconnect_cache_open(path, &opts, &none, &d),
                     PIPECONNECT_ERR_INVALID_ARGUMENT);
        CHECK(d.os_errno == 0 && strcmp(d.field, "options.flags") == 0);
        opts.flags = 0;
        /* Options from an older header (no ways, ttl, mode or flags): the rest default. */
        {
            struct {
                size_t struct_size;
                uint32_t sets;
            } old_opts;
            pipeconnect_cache *c = NULL;
            memset(&old_opts, 0, sizeof old_opts); /* padding too: zero the whole struct */
            old_opts.struct_size = sizeof old_opts;
            old_opts.sets = 64;
            CHECK_RESULT(pipeconnect_cache_open(path, (const pipeconnect_store_options *)&old_opts,
                                                &c, &d),
                         PIPECONNECT_OK);
            if (d.result != 0) fprintf(stderr, "detail: %s: %s\n", d.field, d.message);
            CHECK(d.result == 0);
            pipeconnect_cache_free(c);
        }
    }

    pipeconnect_key_free(k);
    pipeconnect_key_free(k_tls);
    pipeconnect_key_free(k_child);
    pipeconnect_cache_free(cache);
    unlink(link_path);
    unlink(path);
    unlink(junk);
    rmdir(sub);
    rmdir(dir);
    CHECK_DONE();
}
