/* hintsdb.c: the baseline for benches/store.rs. What a hints-database lookup costs an
 * MTA per delivery, done the way a Berkeley DB hints database is read: open the
 * database's lock file, take an fcntl() read lock on it, open a DB environment
 * (DB_CREATE | DB_INIT_MPOOL | DB_PRIVATE) in the hints folder and the hash database in
 * it read-only, get one key, close the database and the environment, and close the lock
 * file (which releases the lock).
 *
 * Built by the bench at start: cc -O2 -shared -fPIC hintsdb.c -o libhintsdb.so -ldb
 * (Debian: apt-get install libdb5.3-dev). Not part of the library. */
#include <db.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DB_NAME "misc"

static int lock_path(char *buf, size_t len, const char *dir) {
    int n = snprintf(buf, len, "%s/%s.lockfile", dir, DB_NAME);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int take_lock(const char *dir, short type) {
    char path[4096];
    if (lock_path(path, sizeof path, dir) != 0) return -1;
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0) return -1;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLKW, &fl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static DB_ENV *open_db(const char *dir, u_int32_t flags, DB **out) {
    DB_ENV *env = NULL;
    DB *db = NULL;
    if (db_env_create(&env, 0) != 0) return NULL;
    if (env->open(env, dir, DB_CREATE | DB_INIT_MPOOL | DB_PRIVATE, 0) != 0) {
        env->close(env, 0);
        return NULL;
    }
    if (db_create(&db, env, 0) != 0) {
        env->close(env, 0);
        return NULL;
    }
    if (db->open(db, NULL, DB_NAME, NULL, (flags & DB_CREATE) ? DB_HASH : DB_UNKNOWN, flags,
                 0600) != 0) {
        db->close(db, 0);
        env->close(env, 0);
        return NULL;
    }
    *out = db;
    return env;
}

/* Store `count` records: key "<prefix><i>", value `vlen` bytes. Returns 0 on success. */
int hintsdb_fill(const char *dir, const char *prefix, int count, size_t vlen) {
    int lfd = take_lock(dir, F_WRLCK);
    if (lfd < 0) return -1;
    DB *db = NULL;
    DB_ENV *env = open_db(dir, DB_CREATE, &db);
    if (env == NULL) {
        close(lfd);
        return -2;
    }
    unsigned char value[1024];
    if (vlen > sizeof value) vlen = sizeof value;
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        char k[256];
        int n = snprintf(k, sizeof k, "%s%d", prefix, i);
        memset(value, i & 0xff, vlen);
        DBT key, data;
        memset(&key, 0, sizeof key);
        memset(&data, 0, sizeof data);
        key.data = k;
        key.size = (u_int32_t)n;
        data.data = value;
        data.size = (u_int32_t)vlen;
        if (db->put(db, NULL, &key, &data, 0) != 0) rc = -3;
    }
    db->close(db, 0);
    env->close(env, 0);
    close(lfd);
    return rc;
}

/* One lookup as a delivery does it. Returns the value's length when found, 0 when not
 * found, negative on error. */
int hintsdb_lookup(const char *dir, const char *k, size_t klen) {
    int lfd = take_lock(dir, F_RDLCK);
    if (lfd < 0) return -1;
    DB *db = NULL;
    DB_ENV *env = open_db(dir, DB_RDONLY, &db);
    if (env == NULL) {
        close(lfd);
        return -2;
    }
    DBT key, data;
    memset(&key, 0, sizeof key);
    memset(&data, 0, sizeof data);
    key.data = (void *)k;
    key.size = (u_int32_t)klen;
    int r = db->get(db, NULL, &key, &data, 0);
    int found = r == 0 ? (int)data.size : (r == DB_NOTFOUND ? 0 : -3);
    db->close(db, 0);
    env->close(env, 0);
    close(lfd);
    return found;
}
