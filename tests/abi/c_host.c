/* c_host: a datastore driver host written in plain C11, the way a third-party
 * host would use oneds/plugin.h: dlopen() the plugin, dlsym() its one entry,
 * and drive an instance only through the C table and callbacks.
 *
 *   c_host <path/to/libone_ds_X.so> <testdrv|restic>
 *
 * The second argument names the plugin, which decides the checks that apply:
 * the test plugin has echo/sleep/log actions and a fail_create switch, the
 * restic plugin only answers its unsupported stubs (cp, ...) so far. Prints
 * one line per failed check and exits 1 when any failed. */
#define _POSIX_C_SOURCE 200809L

#include <oneds/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------
 * Failure reporting: a check prints why and makes the process exit 1, but the
 * remaining checks still run so one run shows every broken promise.
 * ---------------------------------------------------------------------- */
static int g_failures;
static const char *g_check = "setup";

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "c_host: FAIL [%s]: ", g_check);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    ++g_failures;
}

#define CHECK(cond, ...)       \
    do {                       \
        if (!(cond)) {         \
            fail(__VA_ARGS__); \
            return;            \
        }                      \
    } while (0)

/* ------------------------------------------------------------------------
 * Time
 * ---------------------------------------------------------------------- */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* How long a completion may take to arrive. Generous because sanitizer builds
 * and loaded CI machines are slow; "quickly" for cancellation is checked
 * separately against a bound far below the 10 s the sleep would take. */
enum { k_wait_ms = 5000, k_quiet_ms = 200, k_max_completions = 512, k_text_size = 256 };

/* ------------------------------------------------------------------------
 * The host side of the callbacks: everything the plugin reports is recorded
 * under one mutex, and waiters are woken through one condition variable.
 * ---------------------------------------------------------------------- */
typedef struct completion {
    uint64_t id;
    int32_t status;
    char info[k_text_size];
    char error[k_text_size];
} completion;

typedef struct recorder {
    pthread_mutex_t mutex;
    pthread_cond_t changed; /* CLOCK_MONOTONIC, so timeouts ignore clock jumps */
    completion done[k_max_completions];
    size_t done_count;
    size_t overflow;
    size_t log_count;
    uint64_t last_log_id;
    char last_log[k_text_size];
    /* ABI 1.2 log_object: lines about one object (a VM). */
    size_t object_log_count;
    size_t object_warning_count;
    int64_t last_object_id;
    /* log_object called although the host's struct_size does not cover it. */
    int log_object_beyond_struct;
    /* Contract violations seen inside callbacks, reported by the main thread. */
    int log_after_complete;
    int callback_inside_host_call;
} recorder;

/* Set while this thread is inside create(), submit() or cancel(): plugin.h
 * promises never to call back on the caller's stack, because a host may hold
 * its own locks around those calls. */
static _Thread_local int t_inside_host_call;

static void copy_text(char *dst, const char *src) {
    if (src == NULL) src = "";
    strncpy(dst, src, k_text_size - 1);
    dst[k_text_size - 1] = '\0';
}

static void on_complete(void *host_data, uint64_t request_id, int32_t status, const char *info, const char *error) {
    recorder *r = host_data;
    pthread_mutex_lock(&r->mutex);
    if (t_inside_host_call) r->callback_inside_host_call = 1;
    if (r->done_count < k_max_completions) {
        completion *c = &r->done[r->done_count++];
        c->id = request_id;
        c->status = status;
        copy_text(c->info, info);
        copy_text(c->error, error);
    } else {
        ++r->overflow;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mutex);
}

static size_t count_locked(const recorder *r, uint64_t id) {
    size_t n = 0;
    for (size_t i = 0; i < r->done_count; ++i)
        if (r->done[i].id == id) ++n;
    return n;
}

static void on_log(void *host_data, uint64_t request_id, int32_t level, const char *text) {
    recorder *r = host_data;
    (void)level;
    pthread_mutex_lock(&r->mutex);
    if (t_inside_host_call) r->callback_inside_host_call = 1;
    if (request_id != 0 && count_locked(r, request_id) > 0) r->log_after_complete = 1;
    ++r->log_count;
    r->last_log_id = request_id;
    copy_text(r->last_log, text);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mutex);
}

static void on_log_object(void *host_data, uint64_t request_id, int32_t level, int64_t object_id, const char *text) {
    recorder *r = host_data;
    pthread_mutex_lock(&r->mutex);
    if (t_inside_host_call) r->callback_inside_host_call = 1;
    if (request_id != 0 && count_locked(r, request_id) > 0) r->log_after_complete = 1;
    ++r->object_log_count;
    if (level == ONEDS_LOG_WARNING) ++r->object_warning_count;
    r->last_object_id = object_id;
    copy_text(r->last_log, text);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mutex);
}

/* Installed past the struct_size of a simulated ABI 1.1 host: must never run. */
static void on_log_object_beyond_struct(void *host_data, uint64_t request_id, int32_t level, int64_t object_id,
                                        const char *text) {
    recorder *r = host_data;
    (void)request_id;
    (void)level;
    (void)object_id;
    (void)text;
    pthread_mutex_lock(&r->mutex);
    r->log_object_beyond_struct = 1;
    pthread_mutex_unlock(&r->mutex);
}

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mutex, NULL);
    pthread_cond_init(&r->changed, &attr);
    pthread_condattr_destroy(&attr);
}

static void recorder_destroy(recorder *r) {
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->mutex);
}

static size_t completions_of(recorder *r, uint64_t id) {
    pthread_mutex_lock(&r->mutex);
    const size_t n = count_locked(r, id);
    pthread_mutex_unlock(&r->mutex);
    return n;
}

static size_t completions_total(recorder *r) {
    pthread_mutex_lock(&r->mutex);
    const size_t n = r->done_count + r->overflow;
    pthread_mutex_unlock(&r->mutex);
    return n;
}

/* Waits up to timeout_ms until request id has at least `want` completions.
 * Copies the first one into *out when given. Returns the count seen. */
static size_t wait_for(recorder *r, uint64_t id, size_t want, long timeout_ms, completion *out) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mutex);
    size_t n = count_locked(r, id);
    while (n < want) {
        if (pthread_cond_timedwait(&r->changed, &r->mutex, &deadline) == ETIMEDOUT) {
            n = count_locked(r, id);
            break;
        }
        n = count_locked(r, id);
    }
    if (out != NULL)
        for (size_t i = 0; i < r->done_count; ++i)
            if (r->done[i].id == id) {
                *out = r->done[i];
                break;
            }
    pthread_mutex_unlock(&r->mutex);
    return n;
}

/* ------------------------------------------------------------------------
 * Calling the plugin
 * ---------------------------------------------------------------------- */
typedef struct host {
    const oneds_plugin_api *api;
    oneds_host_api callbacks;
    recorder rec;
    int is_testdrv;
    const char *name;
} host;

static int32_t create_instance(host *h, const oneds_host_api *callbacks, const oneds_config *config,
                               oneds_instance **out, char *errbuf, size_t errbuf_size) {
    t_inside_host_call = 1;
    const int32_t rc = h->api->create(callbacks, config, out, errbuf, errbuf_size);
    t_inside_host_call = 0;
    return rc;
}

static int32_t submit(host *h, oneds_instance *inst, uint64_t id, const char *action, int32_t argc,
                      const char *const *argv) {
    static const char *const no_args[] = {NULL};
    oneds_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.id = id;
    req.action = action;
    req.argc = argc;
    req.argv = argv != NULL ? argv : no_args;
    req.document = "";
    req.document_size = 0;
    req.origin = ONEDS_ORIGIN_ACTION;
    req.oned_id = -1;
    t_inside_host_call = 1;
    const int32_t rc = h->api->submit(inst, &req);
    t_inside_host_call = 0;
    return rc;
}

static int32_t cancel(host *h, oneds_instance *inst, uint64_t id) {
    t_inside_host_call = 1;
    const int32_t rc = h->api->cancel(inst, id);
    t_inside_host_call = 0;
    return rc;
}

static oneds_instance *new_instance(host *h) {
    oneds_instance *inst = NULL;
    char errbuf[256] = "";
    const int32_t rc = create_instance(h, &h->callbacks, NULL, &inst, errbuf, sizeof errbuf);
    if (rc != ONEDS_OK || inst == NULL) {
        fail("create() returned %d (%s)", (int)rc, errbuf);
        return NULL;
    }
    return inst;
}

static int lists_action(const oneds_plugin_api *api, const char *action) {
    for (const char *const *a = api->actions; *a != NULL; ++a)
        if (strcmp(*a, action) == 0) return 1;
    return 0;
}

/* The action every plugin of the run answers at once, and what it answers. */
static const char *basic_action(const host *h) { return h->is_testdrv ? "echo" : "cp"; }

/* ------------------------------------------------------------------------
 * Checks
 * ---------------------------------------------------------------------- */
static void table_describes_the_plugin(host *h) {
    g_check = "table_describes_the_plugin";
    const oneds_plugin_api *api = h->api;
    /* Every member this host uses must be inside the plugin's struct_size. */
    CHECK(ONEDS_HAS_MEMBER(oneds_plugin_api, api, cancel), "struct_size %u too small", (unsigned)api->struct_size);
    CHECK(api->abi_major == ONEDS_ABI_MAJOR, "abi_major %u, want %u", (unsigned)api->abi_major,
          (unsigned)ONEDS_ABI_MAJOR);
    CHECK(api->name != NULL && strcmp(api->name, h->name) == 0, "name '%s', want '%s'",
          api->name != NULL ? api->name : "(null)", h->name);
    CHECK(api->version != NULL && api->version[0] != '\0', "no version");
    CHECK(api->actions != NULL && api->actions[0] != NULL, "no action list");
    CHECK(api->create != NULL && api->destroy != NULL && api->submit != NULL && api->cancel != NULL,
          "a function pointer is NULL");
    CHECK(lists_action(api, basic_action(h)), "'%s' not in the action list", basic_action(h));
    if (h->is_testdrv) CHECK(lists_action(api, "sleep"), "'sleep' not in the action list");
}

static void wrong_major_is_refused(oneds_plugin_entry_fn entry) {
    g_check = "wrong_major_is_refused";
    CHECK(entry(ONEDS_ABI_MAJOR + 1) == NULL, "entry(major + 1) returned a table");
    CHECK(entry(0) == NULL, "entry(0) returned a table");
    CHECK(entry(ONEDS_ABI_MAJOR) == entry(ONEDS_ABI_MAJOR), "entry() is not a static table");
}

static void request_completes_exactly_once(host *h) {
    g_check = "request_completes_exactly_once";
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    static const char *const args[] = {"a", "b c", NULL};
    const uint64_t id = 11;
    int32_t rc = submit(h, inst, id, basic_action(h), 2, args);
    if (rc != ONEDS_OK) {
        fail("submit(%s) returned %d", basic_action(h), (int)rc);
    } else {
        completion c = {0};
        const size_t n = wait_for(&h->rec, id, 1, k_wait_ms, &c);
        if (n != 1) {
            fail("%zu completions within %d ms, want 1", n, (int)k_wait_ms);
        } else if (h->is_testdrv) {
            if (c.status != ONEDS_OK) fail("status %d, want ONEDS_OK (%s)", (int)c.status, c.error);
            if (strcmp(c.info, "echo a b c") != 0) fail("info '%s', want 'echo a b c'", c.info);
        } else {
            if (c.status != ONEDS_ERR_UNSUPPORTED) fail("status %d, want ONEDS_ERR_UNSUPPORTED", (int)c.status);
            if (strcmp(c.error, "cp: Operation not supported") != 0)
                fail("error '%s', want 'cp: Operation not supported'", c.error);
        }
        sleep_ms(k_quiet_ms);
        if (completions_of(&h->rec, id) != 1)
            fail("%zu completions after a quiet period, want exactly 1", completions_of(&h->rec, id));
    }
    h->api->destroy(inst);
}

static void unlisted_action_is_refused_without_callback(host *h) {
    g_check = "unlisted_action_is_refused_without_callback";
    CHECK(!lists_action(h->api, "no_such_action"), "the plugin lists no_such_action");
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    const uint64_t id = 21;
    const int32_t rc = submit(h, inst, id, "no_such_action", 0, NULL);
    if (rc != ONEDS_ERR_UNSUPPORTED) fail("submit returned %d, want ONEDS_ERR_UNSUPPORTED", (int)rc);
    sleep_ms(k_quiet_ms);
    if (completions_of(&h->rec, id) != 0) fail("a refused request got a completion");
    h->api->destroy(inst);
    if (completions_of(&h->rec, id) != 0) fail("a refused request got a completion at destroy");
}

static void cancel_of_unknown_id_is_not_found(host *h) {
    g_check = "cancel_of_unknown_id_is_not_found";
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    const int32_t rc = cancel(h, inst, 31);
    if (rc != ONEDS_ERR_NOT_FOUND) fail("cancel returned %d, want ONEDS_ERR_NOT_FOUND", (int)rc);
    if (completions_of(&h->rec, 31) != 0) fail("cancel of an unknown id produced a completion");
    h->api->destroy(inst);
}

static void cancel_completes_a_sleep_once_as_cancelled(host *h) {
    g_check = "cancel_completes_a_sleep_once_as_cancelled";
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    static const char *const args[] = {"10000", NULL};
    const uint64_t id = 41;
    int32_t rc = submit(h, inst, id, "sleep", 1, args);
    if (rc != ONEDS_OK) {
        fail("submit(sleep) returned %d", (int)rc);
    } else {
        sleep_ms(50); /* let the sleep start, so cancel reaches running work */
        const double start = now_seconds();
        rc = cancel(h, inst, id);
        if (rc != ONEDS_OK) fail("cancel returned %d, want ONEDS_OK", (int)rc);
        completion c = {0};
        const size_t n = wait_for(&h->rec, id, 1, k_wait_ms, &c);
        const double took = now_seconds() - start;
        if (n != 1) {
            fail("%zu completions after cancel, want 1", n);
        } else {
            if (c.status != ONEDS_ERR_CANCELLED) fail("status %d, want ONEDS_ERR_CANCELLED", (int)c.status);
            if (took > 2.0) fail("cancel took %.3f s to complete", took);
        }
        sleep_ms(k_quiet_ms);
        if (completions_of(&h->rec, id) != 1) fail("more than one completion after cancel");
        /* The request is over: a second cancel finds nothing. */
        rc = cancel(h, inst, id);
        if (rc != ONEDS_ERR_NOT_FOUND) fail("second cancel returned %d, want NOT_FOUND", (int)rc);
    }
    h->api->destroy(inst);
}

static void log_lines_arrive_before_the_completion(host *h) {
    g_check = "log_lines_arrive_before_the_completion";
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    static const char *const args[] = {"3", NULL};
    const uint64_t id = 51;
    pthread_mutex_lock(&h->rec.mutex);
    const size_t logs_before = h->rec.log_count;
    pthread_mutex_unlock(&h->rec.mutex);
    const int32_t rc = submit(h, inst, id, "log", 1, args);
    if (rc != ONEDS_OK) {
        fail("submit(log) returned %d", (int)rc);
    } else if (wait_for(&h->rec, id, 1, k_wait_ms, NULL) != 1) {
        fail("no completion");
    } else {
        pthread_mutex_lock(&h->rec.mutex);
        const size_t logs = h->rec.log_count - logs_before;
        const uint64_t last_id = h->rec.last_log_id;
        char last[k_text_size];
        memcpy(last, h->rec.last_log, sizeof last);
        pthread_mutex_unlock(&h->rec.mutex);
        if (logs != 3) fail("%zu log lines, want 3", logs);
        if (last_id != id) fail("log carried id %llu, want %llu", (unsigned long long)last_id, (unsigned long long)id);
        if (strcmp(last, "progress 3/3") != 0) fail("last log '%s', want 'progress 3/3'", last);
    }
    h->api->destroy(inst);
}

/* Runs "vmlog 42" (4 lines: D, I, W, E, about VM 42) on inst and reports how
 * many lines came through log() and through log_object(). */
static void run_vmlog(host *h, oneds_instance *inst, uint64_t id, size_t *logs, size_t *object_logs,
                      size_t *object_warnings, int64_t *last_object) {
    static const char *const args[] = {"42", NULL};
    pthread_mutex_lock(&h->rec.mutex);
    const size_t logs_before = h->rec.log_count, objects_before = h->rec.object_log_count;
    const size_t warnings_before = h->rec.object_warning_count;
    pthread_mutex_unlock(&h->rec.mutex);
    const int32_t rc = submit(h, inst, id, "vmlog", 1, args);
    if (rc != ONEDS_OK) {
        fail("submit(vmlog) returned %d", (int)rc);
    } else if (wait_for(&h->rec, id, 1, k_wait_ms, NULL) != 1) {
        fail("no completion");
    }
    pthread_mutex_lock(&h->rec.mutex);
    *logs = h->rec.log_count - logs_before;
    *object_logs = h->rec.object_log_count - objects_before;
    *object_warnings = h->rec.object_warning_count - warnings_before;
    *last_object = h->rec.last_object_id;
    pthread_mutex_unlock(&h->rec.mutex);
}

/* ABI 1.2: a host with log_object gets the lines about VM 42 there, with the id. */
static void object_lines_reach_log_object_with_their_id(host *h) {
    g_check = "object_lines_reach_log_object_with_their_id";
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    size_t logs = 0, objects = 0, warnings = 0;
    int64_t last = -1;
    run_vmlog(h, inst, 71, &logs, &objects, &warnings, &last);
    h->api->destroy(inst);
    CHECK(objects == 4, "%zu lines through log_object, want 4", objects);
    CHECK(logs == 0, "%zu lines through log, want 0", logs);
    CHECK(warnings == 1, "%zu warnings through log_object, want 1", warnings);
    CHECK(last == 42, "log_object carried object id %lld, want 42", (long long)last);
}

/* A host built for ABI 1.1 (struct_size ends before log_object) still gets
 * every line, through log(); the plugin never reads past struct_size. */
static void object_lines_fall_back_to_log_for_an_abi_1_1_host(host *h) {
    g_check = "object_lines_fall_back_to_log_for_an_abi_1_1_host";
    static oneds_host_api old; /* must outlive the instance */
    old = h->callbacks;
    old.struct_size = (uint32_t)offsetof(oneds_host_api, log_object);
    old.abi_minor = 1;
    old.log_object = on_log_object_beyond_struct;
    oneds_instance *inst = NULL;
    char errbuf[256] = "";
    const int32_t rc = create_instance(h, &old, NULL, &inst, errbuf, sizeof errbuf);
    if (rc != ONEDS_OK || inst == NULL) {
        fail("create() with an ABI 1.1 host returned %d (%s)", (int)rc, errbuf);
        return;
    }
    size_t logs = 0, objects = 0, warnings = 0;
    int64_t last = -1;
    run_vmlog(h, inst, 72, &logs, &objects, &warnings, &last);
    h->api->destroy(inst);
    CHECK(logs == 4, "%zu lines through log, want 4", logs);
    CHECK(objects == 0, "%zu lines through log_object, want 0", objects);
    pthread_mutex_lock(&h->rec.mutex);
    const int beyond = h->rec.log_object_beyond_struct;
    pthread_mutex_unlock(&h->rec.mutex);
    CHECK(!beyond, "the plugin called log_object beyond the host's struct_size");
}

typedef struct submitter {
    host *h;
    oneds_instance *inst;
    uint64_t first_id;
    int count;
    int refused;
} submitter;

static void *submit_many(void *arg) {
    submitter *s = arg;
    for (int i = 0; i < s->count; ++i)
        if (submit(s->h, s->inst, s->first_id + (uint64_t)i, basic_action(s->h), 0, NULL) != ONEDS_OK) ++s->refused;
    return NULL;
}

static void concurrent_submits_complete_once_each(host *h) {
    g_check = "concurrent_submits_complete_once_each";
    enum { threads = 4, per_thread = 50 };
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    pthread_t tid[threads];
    submitter s[threads];
    for (int t = 0; t < threads; ++t) {
        s[t] = (submitter){h, inst, 1000u + (uint64_t)t * per_thread, per_thread, 0};
        pthread_create(&tid[t], NULL, submit_many, &s[t]);
    }
    for (int t = 0; t < threads; ++t) pthread_join(tid[t], NULL);
    for (int t = 0; t < threads; ++t)
        if (s[t].refused != 0) fail("thread %d: %d submits refused", t, s[t].refused);
    for (uint64_t id = 1000; id < 1000u + threads * per_thread; ++id) {
        const size_t n = wait_for(&h->rec, id, 1, k_wait_ms, NULL);
        if (n != 1) {
            fail("request %llu: %zu completions, want 1", (unsigned long long)id, n);
            break;
        }
    }
    h->api->destroy(inst);
    for (uint64_t id = 1000; id < 1000u + threads * per_thread; ++id)
        if (completions_of(&h->rec, id) != 1) {
            fail("request %llu: %zu completions after destroy, want 1", (unsigned long long)id,
                 completions_of(&h->rec, id));
            break;
        }
}

static void destroy_completes_in_flight_work_before_returning(host *h) {
    g_check = "destroy_completes_in_flight_work_before_returning";
    oneds_instance *inst = new_instance(h);
    if (inst == NULL) return;
    static const char *const args[] = {"10000", NULL};
    const uint64_t id = 61;
    /* The test plugin can hold work for 10 s; the restic plugin has no long
     * action yet, so its request is merely queued when destroy() runs. */
    const int32_t rc =
        h->is_testdrv ? submit(h, inst, id, "sleep", 1, args) : submit(h, inst, id, basic_action(h), 0, NULL);
    if (rc != ONEDS_OK) fail("submit returned %d", (int)rc);
    if (h->is_testdrv) sleep_ms(50);
    const double start = now_seconds();
    h->api->destroy(inst);
    const double took = now_seconds() - start;
    if (took > 2.0) fail("destroy took %.3f s", took);
    if (rc != ONEDS_OK) return;
    /* No waiting here: the completion must already have happened. */
    completion c = {0};
    const size_t n = wait_for(&h->rec, id, 1, 0, &c);
    if (n != 1) {
        fail("%zu completions when destroy returned, want 1", n);
    } else if (h->is_testdrv && c.status != ONEDS_ERR_CANCELLED) {
        fail("status %d, want ONEDS_ERR_CANCELLED", (int)c.status);
    }
    const size_t total = completions_total(&h->rec);
    sleep_ms(k_quiet_ms);
    if (completions_total(&h->rec) != total) fail("a callback ran after destroy returned");
}

static void failed_create_explains_itself(host *h) {
    g_check = "failed_create_explains_itself";
    static const oneds_config_entry entries[] = {{"fail_create", "as asked"}};
    const oneds_config config = {(uint32_t)sizeof(oneds_config), 1, entries};
    oneds_instance *inst = (oneds_instance *)&inst; /* poison: must be reset to NULL */
    char errbuf[128];
    memset(errbuf, 'X', sizeof errbuf);
    const int32_t rc = create_instance(h, &h->callbacks, &config, &inst, errbuf, sizeof errbuf);
    if (rc == ONEDS_OK) {
        fail("create with fail_create succeeded");
        if (inst != NULL) h->api->destroy(inst);
        return;
    }
    CHECK(inst == NULL, "failed create left *out non-NULL");
    CHECK(memchr(errbuf, '\0', sizeof errbuf) != NULL, "errbuf not NUL-terminated");
    CHECK(strstr(errbuf, "fail_create") != NULL, "errbuf '%s' does not name fail_create", errbuf);
}

static void create_refuses_a_short_host_api(host *h) {
    g_check = "create_refuses_a_short_host_api";
    /* A host built against an older, smaller oneds_host_api without log. */
    oneds_host_api old = h->callbacks;
    old.struct_size = (uint32_t)offsetof(oneds_host_api, log);
    oneds_instance *inst = NULL;
    char errbuf[128] = "";
    const int32_t rc = create_instance(h, &old, NULL, &inst, errbuf, sizeof errbuf);
    if (rc == ONEDS_OK && inst != NULL) h->api->destroy(inst);
    CHECK(rc == ONEDS_ERR_ABI, "create returned %d, want ONEDS_ERR_ABI", (int)rc);
    CHECK(inst == NULL, "failed create left *out non-NULL");
    CHECK(errbuf[0] != '\0', "no message in errbuf");
}

static void callbacks_never_ran_on_the_callers_stack(host *h) {
    g_check = "callbacks_never_ran_on_the_callers_stack";
    pthread_mutex_lock(&h->rec.mutex);
    const int inside = h->rec.callback_inside_host_call;
    const int late_log = h->rec.log_after_complete;
    const size_t overflow = h->rec.overflow;
    pthread_mutex_unlock(&h->rec.mutex);
    CHECK(!inside, "complete() or log() ran inside create(), submit() or cancel()");
    CHECK(!late_log, "log() ran for a request after its complete()");
    CHECK(overflow == 0, "more completions than this host records (%zu over)", overflow);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "testdrv") != 0 && strcmp(argv[2], "restic") != 0)) {
        fprintf(stderr, "usage: %s <plugin.so> <testdrv|restic>\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "c_host: FAIL [dlopen]: %s\n", dlerror());
        return 1;
    }
    /* ISO C has no conversion from void * to a function pointer; POSIX
     * guarantees the representation, so copy the bytes. */
    void *sym = dlsym(lib, ONEDS_PLUGIN_ENTRY_SYMBOL);
    if (sym == NULL) {
        fprintf(stderr, "c_host: FAIL [dlsym]: %s\n", dlerror());
        return 1;
    }
    oneds_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);

    static host h; /* static: the recorder is large */
    h.name = argv[2];
    h.is_testdrv = strcmp(argv[2], "testdrv") == 0;
    h.api = entry(ONEDS_ABI_MAJOR);
    if (h.api == NULL) {
        fprintf(stderr, "c_host: FAIL [entry]: entry(ONEDS_ABI_MAJOR) returned NULL\n");
        return 1;
    }
    recorder_init(&h.rec);
    h.callbacks.struct_size = (uint32_t)sizeof h.callbacks;
    h.callbacks.abi_minor = ONEDS_ABI_MINOR;
    h.callbacks.host_data = &h.rec;
    h.callbacks.complete = on_complete;
    h.callbacks.log = on_log;
    h.callbacks.log_object = on_log_object;

    table_describes_the_plugin(&h);
    wrong_major_is_refused(entry);
    /* Nothing below may run against a table the host would refuse. */
    if (g_failures == 0) {
        request_completes_exactly_once(&h);
        unlisted_action_is_refused_without_callback(&h);
        cancel_of_unknown_id_is_not_found(&h);
        concurrent_submits_complete_once_each(&h);
        destroy_completes_in_flight_work_before_returning(&h);
        create_refuses_a_short_host_api(&h);
        if (h.is_testdrv) {
            cancel_completes_a_sleep_once_as_cancelled(&h);
            log_lines_arrive_before_the_completion(&h);
            object_lines_reach_log_object_with_their_id(&h);
            object_lines_fall_back_to_log_for_an_abi_1_1_host(&h);
            failed_create_explains_itself(&h);
        }
        callbacks_never_ran_on_the_callers_stack(&h);
    }

    /* Every instance is destroyed, so no plugin thread is left to run code
     * from the library we unload. */
    if (dlclose(lib) != 0) fail("dlclose: %s", dlerror());
    recorder_destroy(&h.rec);
    if (g_failures != 0) {
        fprintf(stderr, "c_host: %d check(s) failed for %s\n", g_failures, argv[1]);
        return 1;
    }
    printf("c_host: all checks passed for %s (%s)\n", argv[1], argv[2]);
    return 0;
}
