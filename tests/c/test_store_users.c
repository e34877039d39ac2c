/* The shared file store and the MTA's users, from C, run as root with other user ids
 * (fork() + setuid() in this program): a store created by `nobody` is read and written by
 * root without changing its owner, and `nobody` still gets in afterwards; root creates a
 * store owned by the MTA's user; group mode lets the members of one group share a store;
 * everything else stays refused. Needs root: without it, it says so and exits 77. */
#define _DEFAULT_SOURCE
#include <grp.h>
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

#define NOBODY 65534u
#define MTA_USER 40001u
#define OTHER_USER 40002u
#define MTA_GROUP 40100u

static pipeconnect_result lookup(const pipeconnect_cache *c, const pipeconnect_key *k) {
    pipeconnect_caps *caps = NULL;
    pipeconnect_result r = pipeconnect_cache_lookup(c, k, &caps);
    pipeconnect_caps_free(caps);
    return r;
}

/* What a child does as another user: open `path` with `opts`, expect `open_expected`;
 * when open, look `find` up (if given) and learn `learn` (if given). */
struct as_user {
    uid_t uid;
    gid_t gid;
    gid_t extra_group; /* a supplementary group, or 0 for none */
    const char *path;
    const pipeconnect_store_options *opts;
    pipeconnect_result open_expected;
    const char *find;
    const char *learn;
};

/* Run `a` in a child process as another user; its exit status: 0 when all went as
 * expected, else a bit per failed step. */
static int run_as(const struct as_user *a) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        gid_t groups[1] = {a->extra_group};
        if (setgroups(a->extra_group ? 1 : 0, groups) != 0 || setgid(a->gid) != 0 ||
            setuid(a->uid) != 0 || setuid(0) == 0)
            _exit(100);
        int code = 0;
        pipeconnect_cache *c = NULL;
        pipeconnect_result r = pipeconnect_cache_open(a->path, a->opts, &c, NULL);
        if (r != a->open_expected) {
            fprintf(stderr, "uid %u: open %s returned %d (%s)\n", (unsigned)a->uid, a->path,
                    (int)r, pipeconnect_result_message((int)r));
            code |= 1;
        }
        if (c != NULL) {
            pipeconnect_key *k = NULL;
            if (a->find) {
                if (pipeconnect_key_new(a->find, 25, PIPECONNECT_TLS_CLEARTEXT, &k) !=
                        PIPECONNECT_OK ||
                    lookup(c, k) != PIPECONNECT_OK)
                    code |= 2;
                pipeconnect_key_free(k);
                k = NULL;
            }
            if (a->learn) {
                if (pipeconnect_key_new(a->learn, 25, PIPECONNECT_TLS_CLEARTEXT, &k) !=
                        PIPECONNECT_OK ||
                    pipeconnect_cache_learn(c, k, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0) !=
                        PIPECONNECT_OK)
                    code |= 4;
                pipeconnect_key_free(k);
            }
            pipeconnect_cache_free(c);
        }
        _exit(code);
    }
    int status = -1;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static void check_owner(const char *path, uid_t uid, gid_t gid, mode_t mode, int line) {
    struct stat st;
    int ok = stat(path, &st) == 0 && st.st_uid == uid && st.st_gid == gid &&
             (st.st_mode & 07777) == mode;
    if (!ok) {
        fprintf(stderr, "line %d: %s is %u:%u %o, expected %u:%u %o\n", line, path,
                (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777),
                (unsigned)uid, (unsigned)gid, (unsigned)mode);
    }
    CHECK(ok);
}

int main(void) {
    if (geteuid() != 0) {
        printf("skipped: needs root to run as other users\n");
        return 77;
    }
    char dir[] = "/tmp/pipeconnect-c-users-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* Everyone may enter; only nobody may create files here (the folder is the MTA
     * user's, as an MTA's spool folder is). */
    CHECK(chown(dir, NOBODY, NOBODY) == 0);
    CHECK(chmod(dir, 0755) == 0);
    char path[256], owned[256], shared[256], roots[256];
    snprintf(path, sizeof path, "%s/store", dir);
    snprintf(owned, sizeof owned, "%s/owned", dir);
    snprintf(shared, sizeof shared, "%s/shared", dir);
    snprintf(roots, sizeof roots, "%s/roots", dir);

    pipeconnect_store_options opts = {.struct_size = sizeof(pipeconnect_store_options)};
    CHECK_RESULT(pipeconnect_store_options_default(&opts), PIPECONNECT_OK);
    CHECK((opts.flags & (PIPECONNECT_STORE_SET_OWNER | PIPECONNECT_STORE_GROUP_MODE)) == 0);
    opts.sets = 16;
    opts.ways = 2;

    /* 1. nobody creates the store and learns a server. */
    struct as_user create = {NOBODY, NOBODY, 0, path, &opts, PIPECONNECT_OK, NULL,
                             "192.0.2.1"};
    CHECK(run_as(&create) == 0);
    check_owner(path, NOBODY, NOBODY, 0600, __LINE__);

    /* 2. root reads and writes it; its owner and mode stay. */
    pipeconnect_cache *c = NULL;
    CHECK_RESULT(pipeconnect_cache_open(path, NULL, &c, NULL), PIPECONNECT_OK);
    pipeconnect_key *k1 = key("192.0.2.1", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_key *k2 = key("192.0.2.2", 25, PIPECONNECT_TLS_CLEARTEXT);
    pipeconnect_key *k3 = key("192.0.2.3", 25, PIPECONNECT_TLS_CLEARTEXT);
    if (c) {
        CHECK_RESULT(lookup(c, k1), PIPECONNECT_OK);
        CHECK_RESULT(pipeconnect_cache_learn(c, k2, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0),
                     PIPECONNECT_OK);
        pipeconnect_cache_free(c);
        c = NULL;
    }
    check_owner(path, NOBODY, NOBODY, 0600, __LINE__);
    /* Rebuilt by root (asked for another geometry), it stays nobody's. */
    pipeconnect_store_options rebuild = opts;
    rebuild.sets = 32;
    rebuild.flags = PIPECONNECT_STORE_REBUILD_IF_INVALID;
    CHECK_RESULT(pipeconnect_cache_open(path, &rebuild, &c, NULL), PIPECONNECT_OK);
    pipeconnect_cache_free(c);
    c = NULL;
    check_owner(path, NOBODY, NOBODY, 0600, __LINE__);
    CHECK_RESULT(pipeconnect_cache_open(path, NULL, &c, NULL), PIPECONNECT_OK);
    if (c) {
        CHECK_RESULT(pipeconnect_cache_learn(c, k2, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0),
                     PIPECONNECT_OK);
        pipeconnect_cache_free(c);
        c = NULL;
    }

    /* 3. nobody still gets in, finds what root learned, and learns more. */
    struct as_user again = {NOBODY, NOBODY, 0, path, NULL, PIPECONNECT_OK, "192.0.2.2",
                            "192.0.2.3"};
    CHECK(run_as(&again) == 0);
    CHECK_RESULT(pipeconnect_cache_open(path, NULL, &c, NULL), PIPECONNECT_OK);
    if (c) {
        CHECK_RESULT(lookup(c, k3), PIPECONNECT_OK);
        pipeconnect_cache_free(c);
        c = NULL;
    }
    check_owner(path, NOBODY, NOBODY, 0600, __LINE__);

    /* 4. Everything else is refused as before: another user than the owner. */
    struct as_user stranger = {OTHER_USER, OTHER_USER, 0, path, NULL,
                               PIPECONNECT_ERR_STORE_WRONG_OWNER, NULL, NULL};
    CHECK(run_as(&stranger) == 0);
    /* A store root made for itself is refused to nobody. */
    CHECK(mkdir(roots, 0755) == 0);
    char root_store[300];
    snprintf(root_store, sizeof root_store, "%s/store", roots);
    CHECK_RESULT(pipeconnect_cache_open(root_store, &opts, &c, NULL), PIPECONNECT_OK);
    pipeconnect_cache_free(c);
    c = NULL;
    struct as_user locked_out = {NOBODY, NOBODY, 0, root_store, NULL,
                                 PIPECONNECT_ERR_STORE_WRONG_OWNER, NULL, NULL};
    CHECK(run_as(&locked_out) == 0);

    /* 5. Root creates the store its MTA's user uses: the owner option. */
    pipeconnect_store_options own = opts;
    own.flags |= PIPECONNECT_STORE_SET_OWNER;
    own.owner_uid = NOBODY;
    own.owner_gid = NOBODY;
    CHECK_RESULT(pipeconnect_cache_open(owned, &own, &c, NULL), PIPECONNECT_OK);
    if (c) {
        CHECK_RESULT(pipeconnect_cache_learn(c, k1, EXIM_EHLO_BYTES, EXIM_EHLO_LEN, 0),
                     PIPECONNECT_OK);
        pipeconnect_cache_free(c);
        c = NULL;
    }
    check_owner(owned, NOBODY, NOBODY, 0600, __LINE__);
    struct as_user owner_in = {NOBODY, NOBODY, 0, owned, NULL, PIPECONNECT_OK, "192.0.2.1",
                               "192.0.2.2"};
    CHECK(run_as(&owner_in) == 0);
    /* The reserved field must stay 0. */
    own.reserved = 1;
    CHECK_RESULT(pipeconnect_cache_open(owned, &own, &c, NULL), PIPECONNECT_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);

    /* 6. Group mode: root makes a 0660 store of the MTA's group; a member that is not
     * its owner gets in with the group named; a non-member, or a member who does not
     * ask for group mode, is refused. Group write without group mode is refused. */
    pipeconnect_store_options group = opts;
    group.mode = 0660;
    CHECK_RESULT(pipeconnect_cache_open(shared, &group, &c, NULL), PIPECONNECT_ERR_INVALID_ARGUMENT);
    group.flags |= PIPECONNECT_STORE_GROUP_MODE | PIPECONNECT_STORE_SET_OWNER;
    group.group_gid = MTA_GROUP;
    group.owner_uid = MTA_USER;
    group.owner_gid = MTA_USER;
    CHECK(chmod(dir, 0777) == 0); /* the members create nothing; root creates here */
    CHECK_RESULT(pipeconnect_cache_open(shared, &group, &c, NULL), PIPECONNECT_OK);
    pipeconnect_cache_free(c);
    c = NULL;
    CHECK(chmod(dir, 0755) == 0);
    check_owner(shared, MTA_USER, MTA_GROUP, 0660, __LINE__);
    pipeconnect_store_options member_opts = {.struct_size = sizeof(pipeconnect_store_options)};
    CHECK_RESULT(pipeconnect_store_options_default(&member_opts), PIPECONNECT_OK);
    member_opts.flags |= PIPECONNECT_STORE_GROUP_MODE;
    member_opts.group_gid = MTA_GROUP;
    struct as_user owner_writes = {MTA_USER, MTA_USER, MTA_GROUP, shared, &member_opts,
                                   PIPECONNECT_OK, NULL, "192.0.2.1"};
    CHECK(run_as(&owner_writes) == 0);
    struct as_user member = {OTHER_USER, OTHER_USER, MTA_GROUP, shared, &member_opts,
                             PIPECONNECT_OK, "192.0.2.1", "192.0.2.2"};
    CHECK(run_as(&member) == 0);
    struct as_user not_member = {OTHER_USER, OTHER_USER, 0, shared, &member_opts,
                                 PIPECONNECT_ERR_STORE_WRONG_OWNER, NULL, NULL};
    CHECK(run_as(&not_member) == 0);
    struct as_user no_group_mode = {OTHER_USER, OTHER_USER, MTA_GROUP, shared, NULL,
                                    PIPECONNECT_ERR_STORE_WRONG_OWNER, NULL, NULL};
    CHECK(run_as(&no_group_mode) == 0);
    /* Its owner without group mode: a group-writable file is refused as before. */
    struct as_user owner_plain = {MTA_USER, MTA_USER, 0, shared, NULL,
                                  PIPECONNECT_ERR_STORE_PERMISSIONS, NULL, NULL};
    CHECK(run_as(&owner_plain) == 0);
    /* Writable by others: refused even in group mode. */
    CHECK(chmod(shared, 0662) == 0);
    struct as_user others_write = {OTHER_USER, OTHER_USER, MTA_GROUP, shared, &member_opts,
                                   PIPECONNECT_ERR_STORE_PERMISSIONS, NULL, NULL};
    CHECK(run_as(&others_write) == 0);
    check_owner(shared, MTA_USER, MTA_GROUP, 0662, __LINE__);

    /* The flag for non-local filesystems is known (the folder here is local). */
    pipeconnect_store_options remote = opts;
    remote.flags = PIPECONNECT_STORE_ALLOW_REMOTE_FS;
    CHECK_RESULT(pipeconnect_cache_open(root_store, &remote, &c, NULL), PIPECONNECT_OK);
    pipeconnect_cache_free(c);
    CHECK(strlen(pipeconnect_result_message(PIPECONNECT_ERR_STORE_REMOTE_FS)) > 0);

    pipeconnect_key_free(k1);
    pipeconnect_key_free(k2);
    pipeconnect_key_free(k3);
    unlink(path);
    unlink(owned);
    unlink(shared);
    unlink(root_store);
    rmdir(roots);
    rmdir(dir);
    CHECK_DONE();
}
