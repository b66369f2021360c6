/*
 * oneds/plugin.h: the C ABI between a datastore driver host (one_ds_host) and a
 * datastore driver plugin (libone_ds_<name>.so).
 *
 * The contract in one paragraph
 * -----------------------------
 * A plugin exports exactly one symbol, oneds_plugin_entry(). The host calls it
 * with the ABI major version it speaks and gets back a static, immutable
 * function table (struct oneds_plugin_api), or NULL when the plugin cannot
 * serve that major version. The host then creates one or more instances,
 * submits requests to them and receives exactly one completion per accepted
 * request through the oneds_host_api callbacks it passed to create().
 * Work is asynchronous: submit() only queues.
 *
 * Versioning
 * ----------
 * - ONEDS_ABI_MAJOR changes when an existing member changes meaning or type.
 *   A host refuses a table whose abi_major differs from its own; a plugin
 *   returns NULL from oneds_plugin_entry() for a major it does not speak.
 * - ONEDS_ABI_MINOR grows when members are appended to a struct. Structs only
 *   ever grow at the end and every struct starts with struct_size. A reader
 *   uses a member only if struct_size covers it (ONEDS_HAS_MEMBER), so an old
 *   host works with a new plugin and a new host with an old plugin.
 * - Status codes and log levels are never renumbered.
 *
 * Ownership and lifetime
 * ----------------------
 * - Strings and arrays passed *into* a call are borrowed for the duration of
 *   that call only; the callee copies what it keeps.
 * - Strings passed *out* through a callback are borrowed for the duration of
 *   the callback only; the host copies what it keeps.
 * - The table returned by oneds_plugin_entry() and every string it points to
 *   are static: valid until the plugin is dlclose()d.
 * - No C++ exception, no C++ type and no pointer that the other side must
 *   free() ever crosses this boundary.
 *
 * Threads
 * -------
 * Each member says which thread may call it:
 *   [any-thread]   may be called from any thread, concurrently with other calls
 *                  marked [any-thread] on the same object;
 *   [host-thread]  called by the host, never concurrently with itself or with
 *                  destroy() on the same instance;
 *   [plugin-thread] called by the plugin from a thread the plugin owns, never
 *                  from inside submit(), cancel() or create() on the caller's
 *                  stack (so the host may hold its own locks around those calls).
 *
 * Secrets
 * -------
 * Request documents may hold secrets (oned decrypts encrypted datastore
 * attributes before it sends them). Neither side logs a document, and a plugin
 * never puts a secret in info, error or log text.
 */
#ifndef ONEDS_PLUGIN_H
#define ONEDS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ONEDS_ABI_MAJOR 1u
#define ONEDS_ABI_MINOR 2u

/* The one symbol a plugin exports, and its type for dlsym(). */
#define ONEDS_PLUGIN_ENTRY_SYMBOL "oneds_plugin_entry"

/* True when a struct read through pointer p, whose first member is
 * struct_size, is large enough to contain member m. */
#define ONEDS_HAS_MEMBER(type, p, m) \
    ((p)->struct_size >= offsetof(type, m) + sizeof(((type *)0)->m))

#if defined(_WIN32)
#define ONEDS_EXPORT __declspec(dllexport)
#else
#define ONEDS_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------
 * Status codes: fixed numbers, never renumbered, only appended.
 * ------------------------------------------------------------------------- */
enum {
    ONEDS_OK = 0,                /* success */
    ONEDS_ERR_FAILED = 1,        /* the action ran and failed; error text says why */
    ONEDS_ERR_UNSUPPORTED = 2,   /* the plugin does not implement this action */
    ONEDS_ERR_INVALID = 3,       /* bad argument, bad document or bad configuration */
    ONEDS_ERR_CANCELLED = 4,     /* the request was cancelled before it finished */
    ONEDS_ERR_SHUTTING_DOWN = 5, /* the instance is being destroyed; request refused */
    ONEDS_ERR_ABI = 6,           /* ABI version or struct size not acceptable */
    ONEDS_ERR_INTERNAL = 7,      /* a bug or resource exhaustion inside the plugin */
    ONEDS_ERR_NOT_FOUND = 8,     /* cancel(): no such request in flight */
    ONEDS_ERR_TIMEOUT = 9        /* a deadline expired */
};

/* Log levels, the characters oned's LOG lines use. */
enum {
    ONEDS_LOG_ERROR = 'E',
    ONEDS_LOG_WARNING = 'W',
    ONEDS_LOG_INFO = 'I',
    ONEDS_LOG_DEBUG = 'D'
};

/* How the request reached the host. A plugin may format output differently
 * (e.g. a progress line) but the action's result contract is the same. */
enum {
    ONEDS_ORIGIN_MAD = 1,   /* a line from oned on the DATASTORE_MAD channel */
    ONEDS_ORIGIN_ACTION = 2 /* one process per action, argv/stdin as the stock script */
};

/* Opaque plugin instance. */
typedef struct oneds_instance oneds_instance;

/* ---------------------------------------------------------------------------
 * What the host gives the plugin.
 * ------------------------------------------------------------------------- */
typedef struct oneds_host_api {
    uint32_t struct_size; /* sizeof(oneds_host_api) as compiled by the host */
    uint32_t abi_minor;   /* the host's ONEDS_ABI_MINOR */

    /* Passed back unchanged as the first argument of every callback. */
    void *host_data;

    /* [plugin-thread] Report the end of an accepted request. Called exactly once
     * per request for which submit() returned ONEDS_OK, also when the request was
     * cancelled (status ONEDS_ERR_CANCELLED) or the instance is being destroyed.
     * After it returns, the plugin no longer uses request_id.
     *   status: ONEDS_OK or an ONEDS_ERR_* code.
     *   info:   on success, the action's result text (what the stock script
     *           prints on stdout; may contain newlines; "" for none). NULL is "".
     *   error:  on failure, a human-readable message (may contain newlines; no
     *           secrets). NULL is "". Ignored on success.
     * Strings are borrowed for the duration of the call. */
    void (*complete)(void *host_data, uint64_t request_id, int32_t status,
                     const char *info, const char *error);

    /* [plugin-thread] Progress and diagnostics for one request (request_id as
     * submitted) or for the instance as a whole (request_id 0). level is one of
     * ONEDS_LOG_*. text is one line without a trailing newline, borrowed for the
     * call. Must not be called for a request after its complete(). */
    void (*log)(void *host_data, uint64_t request_id, int32_t level, const char *text);

    /* ABI 1.1. [plugin-thread] Streams result bytes for one request to where the
     * action's stdout goes (action mode), before complete(); for results too
     * large to pass as info (a disk image). data is borrowed for the call.
     * Returns ONEDS_OK; ONEDS_ERR_UNSUPPORTED when the host has no byte stream
     * for this request (MAD mode: oned's protocol has none); ONEDS_ERR_FAILED
     * when the reader went away (the plugin should stop and fail the request).
     * A plugin checks ONEDS_HAS_MEMBER(oneds_host_api, host, write_output) and
     * for NULL before calling it: hosts built for ABI 1.0 do not have it. */
    int32_t (*write_output)(void *host_data, uint64_t request_id, const void *data, size_t size);

    /* ABI 1.2. [plugin-thread] As log(), for a line about one OpenNebula object:
     * object_id is that object's id (the VM of a backup or backup_cancel), or -1
     * when the line is about no single object (then it is exactly log()). The
     * host puts the id where OpenNebula looks for it: in action mode the line
     * goes to stderr as "<LEVEL>: <object_id> <text>", which OpenNebula's
     * driver turns into a LOG message for that object (a VM's log file); in MAD
     * mode oned's LOG line carries oned's own request id, as for log().
     * Same rules as log() otherwise. A plugin checks
     * ONEDS_HAS_MEMBER(oneds_host_api, host, log_object) and for NULL before
     * calling it, and calls log() instead: hosts built for ABI 1.0 and 1.1 do
     * not have it. */
    void (*log_object)(void *host_data, uint64_t request_id, int32_t level, int64_t object_id, const char *text);
} oneds_host_api;

/* One configuration entry: key and value, both NUL-terminated. */
typedef struct oneds_config_entry {
    const char *key;
    const char *value;
} oneds_config_entry;

/* Plugin configuration: the host passes the entries of its config file section
 * for this plugin ("[plugin.<name>]") plus the host-wide settings the plugin may
 * want, prefixed "host." (e.g. host.log_level, host.threads). Unknown keys are
 * the plugin's to reject or ignore. Borrowed for the duration of create(). */
typedef struct oneds_config {
    uint32_t struct_size;
    size_t count;
    const oneds_config_entry *entries;
} oneds_config;

/* One request. Borrowed for the duration of submit(); the plugin copies it. */
typedef struct oneds_request {
    uint32_t struct_size;
    /* Host-assigned, unique among the requests in flight on this instance,
     * never 0. In MAD mode it is not oned's id (that one is in oned_id). */
    uint64_t id;
    /* The action in lower case, as the stock remotes script is named
     * ("monitor", "rm", "backup", "backup_cancel", ...). */
    const char *action;
    /* Arguments after the action, exactly as the stock script would get them
     * (action mode), or the single oned id (MAD mode). argv[argc] is NULL. */
    int32_t argc;
    const char *const *argv;
    /* The decoded request document (XML text, not base64), NUL-terminated, and
     * its length without the NUL. Empty ("" and 0) when there is none. */
    const char *document;
    size_t document_size;
    /* ONEDS_ORIGIN_MAD or ONEDS_ORIGIN_ACTION. */
    int32_t origin;
    /* The object id oned sent on the MAD line (image, datastore or sync request
     * id), or -1 in action mode. */
    int64_t oned_id;
} oneds_request;

/* ---------------------------------------------------------------------------
 * What the plugin gives the host.
 * ------------------------------------------------------------------------- */
typedef struct oneds_plugin_api {
    uint32_t struct_size; /* sizeof(oneds_plugin_api) as compiled by the plugin */
    uint32_t abi_major;   /* ONEDS_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;   /* ONEDS_ABI_MINOR the plugin was built with */
    const char *name;     /* driver name, the DS_MAD it serves, e.g. "restic" */
    const char *version;  /* plugin version, e.g. "0.1.0" */

    /* NULL-terminated list of the actions submit() accepts, lower case. An
     * action not listed gets ONEDS_ERR_UNSUPPORTED from submit(). */
    const char *const *actions;

    /* [host-thread] Create an instance. host must stay valid until destroy()
     * returns; config is borrowed for the call. On success stores the instance
     * in *out and returns ONEDS_OK. On failure returns an error code, leaves
     * *out NULL and writes a NUL-terminated message (truncated to fit) into
     * errbuf when errbuf_size > 0. No complete()/log() happens before create()
     * returns. */
    int32_t (*create)(const oneds_host_api *host, const oneds_config *config,
                      oneds_instance **out, char *errbuf, size_t errbuf_size);

    /* [host-thread] Cancel everything in flight, wait for every complete() to
     * have returned and every plugin thread to have stopped, and free the
     * instance. No callback runs after destroy() returns. NULL is a no-op. */
    void (*destroy)(oneds_instance *instance);

    /* [any-thread] Queue a request. Returns ONEDS_OK when accepted: complete()
     * then follows exactly once, from a plugin thread (possibly while submit()
     * is still returning on the caller's thread, so the host registers the id
     * before it calls submit()). Any other return value means not accepted and
     * no callback follows for this id:
     * ONEDS_ERR_UNSUPPORTED (action not listed), ONEDS_ERR_INVALID (bad struct
     * or duplicate id), ONEDS_ERR_SHUTTING_DOWN. */
    int32_t (*submit)(oneds_instance *instance, const oneds_request *request);

    /* [any-thread] Ask for a request to stop. Returns ONEDS_OK when the request
     * was in flight (its complete() follows, normally with ONEDS_ERR_CANCELLED,
     * or with its real outcome if it finished meanwhile), ONEDS_ERR_NOT_FOUND
     * when it was not. Never blocks on the request's work. */
    int32_t (*cancel)(oneds_instance *instance, uint64_t request_id);
} oneds_plugin_api;

/* The type of oneds_plugin_entry, for dlsym(). */
typedef const oneds_plugin_api *(*oneds_plugin_entry_fn)(uint32_t host_abi_major);

/* [any-thread] The plugin's only exported symbol. Returns the static table when
 * the plugin speaks host_abi_major, NULL otherwise. Pure: no allocation, no
 * side effect, callable any number of times. */
ONEDS_EXPORT const oneds_plugin_api *oneds_plugin_entry(uint32_t host_abi_major);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ONEDS_PLUGIN_H */
