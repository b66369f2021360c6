// A STAND-IN for oned's XML-RPC API, for tests only: not OpenNebula, and
// not complete. It serves the handful of methods our drivers call, with
// oned's reply shapes ([true, body, 0] / [false, "[method] message", code,
// object id, replication index]) and error codes
// (docs/oned-protocol.md#replies-and-error-codes), on xmlrpc-c's Abyss server (xmlrpc_c::serverAbyss, fed connections
// through runConn()), listening on 127.0.0.1 on a port the kernel picks,
// from a background thread.
//
// State lives in memory: users (oneadmin is uid 0 in group 0, password given
// at construction; serveradmin is uid 1 in group 0 with the server_cipher
// auth driver, as oned creates them), groups, datastores, images, VM
// templates and VMs (whole <VM> documents set by the test). Every call is
// authenticated with the session string "user:password", or for a
// server_cipher user "<server user>:<target user>:<token>", verified as oned
// and its server_cipher driver do: the token is base64 of AES-256-CBC with
// key = the first 32 characters of the SHA-256 hex that oned stores for the
// server user's password, iv = the key's first 16; its plain text
// "<server user>:...:<expiry>" must name the server user first and end with
// a Unix time still in the future; the target user must exist. The call then
// runs as the target user. A bad session gets [false, "[<method>] User
// couldn't be authenticated, aborting call.", 0x100, -1, 0].
//
// Authorisation, simplified: members of group 0 (oneadmin) may do anything;
// other users may use every datastore and VM, see and change only images and
// templates they own, and may not chown, update datastores or see other
// users (0x200). Two of oned's checks for users outside group oneadmin, with
// oned's texts (RequestManagerAllocate.cc, Quota.cc, Request.cc):
//   - the restricted attribute NIC/MAC (oned's default VM_RESTRICTED_ATTR) in
//     one.template.allocate: "[one.template.allocate] User [<uid>] : VM
//     Template includes a restricted attribute MAC.", 0x200;
//   - a user's IMAGES quota in a datastore (set_image_quota; for every user
//     but oneadmin, as oned): "[one.image.allocate] User [<uid>] : user
//     [<uid>] limit of <n> reached for IMAGES quota in DATASTORE with ID:
//     <ds>.", 0x200.
//
// Methods (parameters after the session):
//   one.system.version                       -> version string
//   one.user.info          id (-1 = self) [, decrypt]
//   one.userpool.info                        -> <USER_POOL>
//   one.datastore.info     id [, decrypt]    -> <DATASTORE>
//   one.datastore.update   id, template, type (0 replace, 1 merge) -> id
//   one.datastorepool.info                   -> <DATASTORE_POOL>
//   one.image.allocate     template, ds id [, skip_capacity_check] -> id
//   one.image.info         id [, decrypt]    -> <IMAGE>
//   one.image.chown        id, uid, gid (-1 keeps)  -> id
//   one.imagepool.info     filter, start, end -> <IMAGE_POOL>
//   one.template.allocate  template          -> id
//   one.template.info      id [, extended [, decrypt]] -> <VMTEMPLATE>
//   one.template.chown     id, uid, gid      -> id
//   one.vm.info            id [, decrypt]    -> the <VM> the test set
// Parameters of the wrong type or number are XML-RPC faults, as with
// oned's own xmlrpc-c signatures. XML element order follows
// OpenNebula's image.xsd and datastore.xsd (docs/oned-protocol.md#opennebula-xml-schemas);
// oned emits no namespace, and neither does
// this.
//
// Image allocation keeps the parsed template as the image's TEMPLATE, except
// NAME; TYPE, PATH, SOURCE, FORMAT, SIZE and PERSISTENT also fill the
// matching top-level elements (images are READY at once). Templates are
// parsed by one_template.hpp; see its limits.
//
// Thread-safe: each connection is served on its own thread; one mutex guards
// the state, so calls are answered one at a time. The server threads block
// every signal, so a client that hangs up mid-reply costs an EPIPE, not the
// test process, and nothing here touches the process's signal dispositions.
// stop() ends connections that are still open (shutdown(2)) and joins every
// thread.
#pragma once

#include "tests/oned/one_template.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace oneds::test::oned {

struct user_record {
    int id = 0;
    std::string name;
    std::string password;  // core: the clear text; server_cipher: its SHA-256 hex, as oned stores it
    int gid = 1;
    std::string auth_driver = "core";  // or "server_cipher"
};

struct datastore_record {
    int id = 0;
    std::string name;
    std::string type = "IMAGE_DS";  // IMAGE_DS, SYSTEM_DS, FILE_DS or BACKUP_DS
    one_template attributes;        // DS_MAD, TM_MAD, BASE_PATH are read from here
    std::int64_t total_mb = 1024 * 1024;
    std::int64_t free_mb = 512 * 1024;
    std::int64_t used_mb = 512 * 1024;
    int uid = 0;
    int gid = 0;
};

struct image_record {
    int id = 0;
    std::string name;
    int uid = 0;
    int gid = 0;
    int datastore_id = 0;
    one_template attributes;        // the allocate template without NAME
    std::string allocate_template;  // as received
    bool skip_capacity_check = false;
    long long regtime = 0;
};

struct vm_template_record {
    int id = 0;
    std::string name;
    int uid = 0;
    int gid = 0;
    one_template attributes;  // without NAME
    std::string body;         // as received
    long long regtime = 0;
};

// One call as received; the session (params[0]) is replaced by "<session>".
// Values are rendered as text: ints and i8s in decimal, booleans as
// true/false, strings as they are.
struct recorded_call {
    std::string method;
    std::vector<std::string> params;
    std::string user;  // who the call ran as; "" when it was not authenticated
};

class fake_oned {
public:
    struct options {
        std::string oneadmin_password = "oneadmin-fake-secret";
        std::string serveradmin_password = "serveradmin-fake-cipher-secret";
        std::string version = "6.10.0";
    };

    fake_oned();
    explicit fake_oned(options opts);
    ~fake_oned();  // stops
    fake_oned(const fake_oned &) = delete;
    fake_oned &operator=(const fake_oned &) = delete;

    // Binds 127.0.0.1:0 and serves from a background thread. Throws on failure.
    void start();
    // Stops serving and joins the thread; idempotent.
    void stop();

    std::uint16_t port() const;
    std::string endpoint() const;  // http://127.0.0.1:<port>/RPC2
    std::string oneadmin_session() const;
    // "serveradmin:<password>": what oned's onegate_auth file holds.
    std::string serveradmin_credentials() const;

    // --- state set-up (any time, from any thread) ---
    int add_group(const std::string &name);                                           // -> gid
    int add_user(const std::string &name, const std::string &password, int gid = 1);  // -> uid
    // id < 0 picks the next free id (from 100, as oned's first user datastore).
    int add_datastore(datastore_record ds);
    void set_vm(int id, std::string vm_xml);  // returned verbatim by one.vm.info
    // The user's DATASTORE quota in ds_id: at most `images` images there.
    void set_image_quota(int uid, int ds_id, int images);

    // --- inspection ---
    std::optional<image_record> image(int id) const;
    std::vector<image_record> images() const;
    std::optional<datastore_record> datastore(int id) const;
    std::optional<vm_template_record> vm_template(int id) const;
    std::vector<vm_template_record> vm_templates() const;

    // --- knobs ---
    // From the n-th authenticated call of `method` on (1-based), reply
    // [false, message, code]; with only_once, just the n-th.
    void fail_call(const std::string &method, int nth, std::string message, std::int32_t code, bool only_once = false);
    // oned refusing halfway: from the n-th image (template) allocation on,
    // [false, "[one.image.allocate] Not enough free space", 0x4000].
    void refuse_image_allocation_from(int nth);
    void refuse_template_allocation_from(int nth);
    // The next call of `method` gets an XML-RPC fault (not oned's array)
    // with this text.
    void fault_next_call(const std::string &method, std::string fault_text, int fault_code = 1);
    void clear_knobs();

    std::size_t call_count(const std::string &method) const;  // every call received
    std::vector<recorded_call> calls() const;
    void clear_calls();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace oneds::test::oned
