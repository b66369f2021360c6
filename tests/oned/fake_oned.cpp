#include "tests/oned/fake_oned.hpp"

#include <xmlrpc-c/base.hpp>
#include <xmlrpc-c/registry.hpp>
#include <xmlrpc-c/server_abyss.hpp>

#include <pugixml.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <arpa/inet.h>
#include <atomic>
#include <poll.h>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
// Abyss stamps every reply with a Date header through mktime(), which runs
// glibc's tzset under glibc's internal lock; ThreadSanitizer cannot see that
// lock and reports the TZ string's reallocation as a race between connection
// threads.
extern "C" const char *__tsan_default_suppressions() { return "race:tzset_internal\n"; }
#endif

namespace oneds::test::oned {
namespace {

constexpr std::int32_t e_authentication = 0x0100;
constexpr std::int32_t e_authorization = 0x0200;
constexpr std::int32_t e_no_exists = 0x0400;
constexpr std::int32_t e_rpc_api = 0x1000;
constexpr std::int32_t e_internal = 0x2000;
constexpr std::int32_t e_allocate = 0x4000;

// oned's reply arrays.
xmlrpc_c::value success(const xmlrpc_c::value &body) {
    return xmlrpc_c::value_array({xmlrpc_c::value_boolean(true), body, xmlrpc_c::value_int(0)});
}

xmlrpc_c::value failure(const std::string &message, std::int32_t code, int object_id = -1) {
    return xmlrpc_c::value_array({xmlrpc_c::value_boolean(false), xmlrpc_c::value_string(message),
                                  xmlrpc_c::value_int(code), xmlrpc_c::value_int(object_id), xmlrpc_c::value_i8(0)});
}

// A failure in oned's words: the method in brackets, then the text.
struct one_failure {
    std::string message;
    std::int32_t code;
    int object_id = -1;
};

std::string render(const xmlrpc_c::value &v) {
    switch (v.type()) {
        case xmlrpc_c::value::TYPE_INT: return std::to_string(static_cast<int>(xmlrpc_c::value_int(v)));
        case xmlrpc_c::value::TYPE_I8: return std::to_string(static_cast<long long>(xmlrpc_c::value_i8(v)));
        case xmlrpc_c::value::TYPE_BOOLEAN: return static_cast<bool>(xmlrpc_c::value_boolean(v)) ? "true" : "false";
        case xmlrpc_c::value::TYPE_STRING: return xmlrpc_c::value_string(v);
        case xmlrpc_c::value::TYPE_DOUBLE: return std::to_string(static_cast<double>(xmlrpc_c::value_double(v)));
        default: return "<xmlrpc type " + std::to_string(static_cast<int>(v.type())) + ">";
    }
}

std::string to_xml(const pugi::xml_document &doc) {
    std::ostringstream out;
    doc.save(out, "", pugi::format_raw | pugi::format_no_declaration);
    return out.str();
}

void add(pugi::xml_node parent, const char *name, const std::string &text) {
    parent.append_child(name).text().set(text.c_str());
}
void add(pugi::xml_node parent, const char *name, long long value) { parent.append_child(name).text().set(value); }

// OWNER_U .. OTHER_A from a 9-character "110100000".
void add_permissions(pugi::xml_node parent, const char *bits) {
    static const char *const names[] = {"OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M",
                                        "GROUP_A", "OTHER_U", "OTHER_M", "OTHER_A"};
    auto p = parent.append_child("PERMISSIONS");
    for (int i = 0; i < 9; ++i) add(p, names[i], static_cast<long long>(bits[i] - '0'));
}

void add_ids(pugi::xml_node parent, const char *name, const std::vector<int> &ids) {
    auto n = parent.append_child(name);
    for (int id : ids) add(n, "ID", static_cast<long long>(id));
}

int datastore_type_code(const std::string &type) {
    if (type == "SYSTEM_DS") return 1;
    if (type == "FILE_DS") return 2;
    if (type == "BACKUP_DS") return 3;
    return 0;  // IMAGE_DS
}

std::optional<int> image_type_code(const std::string &type) {
    static const char *const names[] = {"OS", "CDROM", "DATABLOCK", "KERNEL", "RAMDISK", "CONTEXT", "BACKUP"};
    for (int i = 0; i < 7; ++i)
        if (type == names[i]) return i;
    return std::nullopt;
}

long long to_ll(const std::optional<std::string> &s, long long fallback) {
    if (!s) return fallback;
    try {
        return std::stoll(*s);
    } catch (const std::exception &) {
        return fallback;
    }
}

bool yes(const std::optional<std::string> &s) { return s && (*s == "YES" || *s == "yes" || *s == "Yes"); }

// --- oned's server_cipher driver, written here on its own (not the
// adapter's code), so that the two sides are checked against each other ---

std::string sha256_hex(const std::string &text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("fake_oned: SHA-256 failed");
    std::string hex;
    char byte[3];
    for (unsigned int i = 0; i < len; ++i) {
        std::snprintf(byte, sizeof byte, "%02x", md[i]);
        hex += byte;
    }
    return hex;
}

// Decrypts a token with the stored password hash; nullopt when it is not
// base64, or does not decrypt (a wrong key shows as bad padding).
std::optional<std::string> decrypt_token(const std::string &stored_hash, const std::string &token64) {
    if (stored_hash.size() < 32 || token64.empty() || token64.size() % 4 != 0) return std::nullopt;
    std::string raw(token64.size() / 4 * 3, '\0');
    const int n =
        EVP_DecodeBlock(reinterpret_cast<unsigned char *>(raw.data()),
                        reinterpret_cast<const unsigned char *>(token64.data()), static_cast<int>(token64.size()));
    if (n < 0) return std::nullopt;
    std::size_t size = static_cast<std::size_t>(n);
    if (token64.back() == '=') --size;
    if (token64.size() > 1 && token64[token64.size() - 2] == '=') --size;
    raw.resize(size);
    if (raw.empty() || raw.size() % 16 != 0) return std::nullopt;
    const auto *key = reinterpret_cast<const unsigned char *>(stored_hash.data());  // iv = its first 16
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr) return std::nullopt;
    std::string plain(raw.size() + 16, '\0');
    int len = 0, tail = 0;
    auto *out = reinterpret_cast<unsigned char *>(plain.data());
    const bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr, key, key) == 1 &&
                    EVP_DecryptUpdate(ctx, out, &len, reinterpret_cast<const unsigned char *>(raw.data()),
                                      static_cast<int>(raw.size())) == 1 &&
                    EVP_DecryptFinal_ex(ctx, out + len, &tail) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) return std::nullopt;
    plain.resize(static_cast<std::size_t>(len + tail));
    return plain;
}

// Closes a descriptor exactly once.
struct fd_owner {
    int fd = -1;
    ~fd_owner() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

}  // namespace

struct fake_oned::impl {
    using handler = xmlrpc_c::value (impl::*)(const std::string &, const xmlrpc_c::paramList &, const user_record &);

    struct failure_knob {
        int nth;
        std::string message;
        std::int32_t code;
        bool once;
    };

    // Every method name goes to dispatch(), so unknown ones are recorded too.
    class dispatching_method final : public xmlrpc_c::defaultMethod {
    public:
        explicit dispatching_method(impl *owner) : owner_(owner) {}
        void execute(const std::string &method, const xmlrpc_c::paramList &params, xmlrpc_c::value *result) override {
            owner_->dispatch(method, params, result);
        }

    private:
        impl *owner_;
    };

    explicit impl(options o) : opts(std::move(o)) {
        groups[0] = "oneadmin";
        groups[1] = "users";
        users[0] = {0, "oneadmin", opts.oneadmin_password, 0, "core"};
        users[1] = {1, "serveradmin", sha256_hex(opts.serveradmin_password), 0, "server_cipher"};
        handlers = {
            {"one.system.version", &impl::system_version},
            {"one.user.info", &impl::user_info},
            {"one.userpool.info", &impl::userpool_info},
            {"one.datastore.info", &impl::datastore_info},
            {"one.datastore.update", &impl::datastore_update},
            {"one.datastorepool.info", &impl::datastorepool_info},
            {"one.image.allocate", &impl::image_allocate},
            {"one.image.info", &impl::image_info},
            {"one.image.chown", &impl::image_chown},
            {"one.imagepool.info", &impl::imagepool_info},
            {"one.template.allocate", &impl::template_allocate},
            {"one.template.info", &impl::template_info},
            {"one.template.chown", &impl::template_chown},
            {"one.vm.info", &impl::vm_info},
        };
    }

    // Entry point for every call, on an Abyss connection thread.
    void dispatch(const std::string &method, const xmlrpc_c::paramList &params, xmlrpc_c::value *result) {
        std::lock_guard lock(m);
        recorded_call rc{method, {}, {}};
        for (unsigned i = 0; i < params.size(); ++i) rc.params.push_back(i == 0 ? "<session>" : render(params[i]));
        calls.push_back(std::move(rc));
        ++counts[method];

        auto h = handlers.find(method);
        if (h == handlers.end())
            throw xmlrpc_c::fault("Requested method '" + method + "' not found", xmlrpc_c::fault::CODE_NO_SUCH_METHOD);
        if (auto f = faults.find(method); f != faults.end()) {
            auto [text, code] = f->second;
            faults.erase(f);
            throw xmlrpc_c::fault(text, static_cast<xmlrpc_c::fault::code_t>(code));
        }

        const std::string session = params.getString(0);  // a fault if it is not a string, as in oned
        const user_record *who = authenticate(session);
        if (who) calls.back().user = who->name;
        if (!who) {
            *result = failure("[" + method + "] User couldn't be authenticated, aborting call.", e_authentication);
            return;
        }

        const int nth = ++authenticated_counts[method];
        if (auto k = knobs.find(method); k != knobs.end())
            for (const auto &knob : k->second)
                if (knob.once ? nth == knob.nth : nth >= knob.nth) {
                    *result = failure(knob.message, knob.code);
                    return;
                }

        try {
            *result = (this->*(h->second))(method, params, *who);
        } catch (const one_failure &f) {
            *result = failure("[" + method + "] " + f.message, f.code, f.object_id);
        }
    }

    const user_record *find_user(const std::string &name) const {
        for (const auto &[id, u] : users)
            if (u.name == name) return &u;
        return nullptr;
    }

    // The user the call runs as, or nullptr.
    const user_record *authenticate(const std::string &session) const {
        auto colon = session.find(':');
        if (colon == std::string::npos) return nullptr;
        const user_record *u = find_user(session.substr(0, colon));
        if (u == nullptr) return nullptr;
        if (u->auth_driver != "server_cipher") return u->password == session.substr(colon + 1) ? u : nullptr;
        // "<server user>:<target user>:<token>"
        const auto second = session.find(':', colon + 1);
        if (second == std::string::npos) return nullptr;
        const auto plain = decrypt_token(u->password, session.substr(second + 1));
        if (!plain) return nullptr;
        const auto first_field = plain->substr(0, plain->find(':'));
        const auto last_field = plain->substr(plain->rfind(':') + 1);
        if (first_field != u->name) return nullptr;  // "User name missmatch"
        long long expires = 0;
        try {
            expires = std::stoll(last_field);
        } catch (const std::exception &) {
            return nullptr;
        }
        if (static_cast<long long>(std::time(nullptr)) >= expires) return nullptr;  // "login token expired"
        return find_user(session.substr(colon + 1, second - colon - 1));
    }

    static bool is_admin(const user_record &u) { return u.gid == 0; }

    static void deny(const user_record &u, const std::string &what, int id) {
        throw one_failure{"User [" + std::to_string(u.id) + "] : Not authorized to perform " + what + " [" +
                              std::to_string(id) + "].",
                          e_authorization, id};
    }

    // Optional trailing parameters: present ones must have the right type.
    static void optional_bools(const xmlrpc_c::paramList &p, unsigned from, unsigned count) {
        for (unsigned i = from; i < p.size() && i < from + count; ++i) (void)p.getBoolean(i);
        p.verifyEnd(std::max(from, std::min<unsigned>(p.size(), from + count)));
    }

    one_template parse_or_throw(const std::string &text, const char *prefix) const {
        try {
            return parse_template(text);
        } catch (const template_error &e) {
            throw one_failure{std::string(prefix) + e.what(), e_internal};
        }
    }

    // --- XML ---

    std::string user_name(int uid) const {
        auto it = users.find(uid);
        return it == users.end() ? std::string() : it->second.name;
    }
    std::string group_name(int gid) const {
        auto it = groups.find(gid);
        return it == groups.end() ? std::string() : it->second;
    }

    void user_xml(pugi::xml_node parent, const user_record &u) const {
        auto n = parent.append_child("USER");
        add(n, "ID", static_cast<long long>(u.id));
        add(n, "GID", static_cast<long long>(u.gid));
        add_ids(n, "GROUPS", {u.gid});
        add(n, "GNAME", group_name(u.gid));
        add(n, "NAME", u.name);
        // oned shows a hash; this stand-in shows no password at all rather
        // than the clear text it keeps.
        add(n, "PASSWORD", std::string("*"));
        add(n, "AUTH_DRIVER", u.auth_driver);
        add(n, "ENABLED", 1LL);
        n.append_child("LOGIN_TOKEN");
        n.append_child("TEMPLATE");
    }

    void datastore_xml(pugi::xml_node parent, const datastore_record &ds) const {
        auto n = parent.append_child("DATASTORE");
        add(n, "ID", static_cast<long long>(ds.id));
        add(n, "UID", static_cast<long long>(ds.uid));
        add(n, "GID", static_cast<long long>(ds.gid));
        add(n, "UNAME", user_name(ds.uid));
        add(n, "GNAME", group_name(ds.gid));
        add(n, "NAME", ds.name);
        add_permissions(n, "110100000");
        add(n, "DS_MAD", ds.attributes.get("DS_MAD").value_or("-"));
        add(n, "TM_MAD", ds.attributes.get("TM_MAD").value_or("-"));
        add(n, "BASE_PATH",
            ds.attributes.get("BASE_PATH").value_or("/var/lib/one//datastores/" + std::to_string(ds.id)));
        add(n, "TYPE", static_cast<long long>(datastore_type_code(ds.type)));
        add(n, "DISK_TYPE", 0LL);
        add(n, "STATE", 0LL);
        add_ids(n, "CLUSTERS", {0});
        add(n, "TOTAL_MB", static_cast<long long>(ds.total_mb));
        add(n, "FREE_MB", static_cast<long long>(ds.free_mb));
        add(n, "USED_MB", static_cast<long long>(ds.used_mb));
        std::vector<int> ids;
        for (const auto &[id, img] : images)
            if (img.datastore_id == ds.id) ids.push_back(id);
        add_ids(n, "IMAGES", ids);
        auto t = n.append_child("TEMPLATE");
        ds.attributes.append_xml(t);
    }

    void image_xml(pugi::xml_node parent, const image_record &img) const {
        const auto &a = img.attributes;
        auto n = parent.append_child("IMAGE");
        add(n, "ID", static_cast<long long>(img.id));
        add(n, "UID", static_cast<long long>(img.uid));
        add(n, "GID", static_cast<long long>(img.gid));
        add(n, "UNAME", user_name(img.uid));
        add(n, "GNAME", group_name(img.gid));
        add(n, "NAME", img.name);
        add_permissions(n, "110000000");
        add(n, "TYPE", static_cast<long long>(image_type_code(a.get("TYPE").value_or("OS")).value_or(0)));
        add(n, "DISK_TYPE", 0LL);
        add(n, "PERSISTENT", yes(a.get("PERSISTENT")) ? 1LL : 0LL);
        add(n, "REGTIME", img.regtime);
        add(n, "MODTIME", 0LL);
        add(n, "SOURCE", a.get("SOURCE").value_or(""));
        add(n, "PATH", a.get("PATH").value_or(""));
        add(n, "FORMAT", a.get("FORMAT").value_or("raw"));
        add(n, "FS", std::string());
        add(n, "SIZE", to_ll(a.get("SIZE"), 0));
        add(n, "STATE", 1LL);  // READY
        add(n, "PREV_STATE", 1LL);
        add(n, "RUNNING_VMS", 0LL);
        add(n, "CLONING_OPS", 0LL);
        add(n, "CLONING_ID", -1LL);
        add(n, "TARGET_SNAPSHOT", -1LL);
        add(n, "DATASTORE_ID", static_cast<long long>(img.datastore_id));
        auto ds = datastores.find(img.datastore_id);
        add(n, "DATASTORE", ds == datastores.end() ? std::string() : ds->second.name);
        add_ids(n, "VMS", {});
        add_ids(n, "CLONES", {});
        add_ids(n, "APP_CLONES", {});
        auto t = n.append_child("TEMPLATE");
        a.append_xml(t);
        auto s = n.append_child("SNAPSHOTS");
        add(s, "ALLOW_ORPHANS", std::string("NO"));
        add(s, "CURRENT_BASE", -1LL);
        add(s, "NEXT_SNAPSHOT", std::string("0"));
        n.append_child("BACKUP_INCREMENTS");
    }

    void template_xml(pugi::xml_node parent, const vm_template_record &t) const {
        auto n = parent.append_child("VMTEMPLATE");
        add(n, "ID", static_cast<long long>(t.id));
        add(n, "UID", static_cast<long long>(t.uid));
        add(n, "GID", static_cast<long long>(t.gid));
        add(n, "UNAME", user_name(t.uid));
        add(n, "GNAME", group_name(t.gid));
        add(n, "NAME", t.name);
        add_permissions(n, "110000000");
        add(n, "REGTIME", t.regtime);
        auto body = n.append_child("TEMPLATE");
        t.attributes.append_xml(body);
    }

    // --- methods ---

    xmlrpc_c::value system_version(const std::string &, const xmlrpc_c::paramList &p, const user_record &) {
        p.verifyEnd(1);
        return success(xmlrpc_c::value_string(opts.version));
    }

    xmlrpc_c::value user_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        int id = p.getInt(1);
        optional_bools(p, 2, 1);
        if (id == -1) id = who.id;
        auto it = users.find(id);
        if (it == users.end()) throw one_failure{"Error getting user [" + std::to_string(id) + "].", e_no_exists, id};
        if (id != who.id && !is_admin(who)) deny(who, "USE USER", id);
        pugi::xml_document doc;
        user_xml(doc, it->second);
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    xmlrpc_c::value userpool_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        p.verifyEnd(1);
        pugi::xml_document doc;
        auto pool = doc.append_child("USER_POOL");
        for (const auto &[id, u] : users)
            if (is_admin(who) || id == who.id) user_xml(pool, u);
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    datastore_record &find_datastore(int id) {
        auto it = datastores.find(id);
        if (it == datastores.end())
            throw one_failure{"Error getting datastore [" + std::to_string(id) + "].", e_no_exists, id};
        return it->second;
    }

    xmlrpc_c::value datastore_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &) {
        const int id = p.getInt(1);
        optional_bools(p, 2, 1);
        pugi::xml_document doc;
        datastore_xml(doc, find_datastore(id));
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    xmlrpc_c::value datastore_update(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        const int id = p.getInt(1);
        const std::string text = p.getString(2);
        const int type = p.getInt(3);
        p.verifyEnd(4);
        auto &ds = find_datastore(id);
        if (!is_admin(who)) deny(who, "MANAGE DATASTORE", id);
        if (type != 0 && type != 1) throw one_failure{"Wrong update type", e_rpc_api, id};
        auto incoming = parse_or_throw(text, "Cannot update template. ");
        if (type == 0)
            ds.attributes = std::move(incoming);
        else
            ds.attributes.merge(incoming);
        return success(xmlrpc_c::value_int(id));
    }

    xmlrpc_c::value datastorepool_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &) {
        p.verifyEnd(1);
        pugi::xml_document doc;
        auto pool = doc.append_child("DATASTORE_POOL");
        for (const auto &[id, ds] : datastores) datastore_xml(pool, ds);
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    xmlrpc_c::value image_allocate(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        const std::string text = p.getString(1);
        const int ds_id = p.getInt(2);
        const bool skip_capacity_check = p.size() > 3 ? p.getBoolean(3) : false;
        p.verifyEnd(std::max(3U, std::min(p.size(), 4U)));

        auto attributes = parse_or_throw(text, "Parse error: ");
        const auto &ds = find_datastore(ds_id);
        if (ds.type == "SYSTEM_DS")
            throw one_failure{"New images cannot be allocated in a system datastore.", e_allocate};
        auto name = attributes.get("NAME");
        if (!name || name->empty()) throw one_failure{"No NAME in template for Image.", e_allocate};
        if (auto type = attributes.get("TYPE"); type && !image_type_code(*type))
            throw one_failure{"Unknown image type " + *type + ".", e_allocate};
        for (const auto &[id, img] : images)
            if (img.uid == who.id && img.name == *name)
                throw one_failure{"NAME is already taken by IMAGE " + std::to_string(id) + ".", e_allocate};
        if (!skip_capacity_check && to_ll(attributes.get("SIZE"), 0) > ds.free_mb)
            throw one_failure{"Not enough space in datastore", e_allocate};
        if (who.id != 0)
            if (auto q = image_quotas.find({who.id, ds_id}); q != image_quotas.end()) {
                long long used = 0;
                for (const auto &[id, img] : images) used += img.uid == who.id && img.datastore_id == ds_id;
                if (used + 1 > q->second)
                    throw one_failure{"User [" + std::to_string(who.id) + "] : user [" + std::to_string(who.id) +
                                          "] limit of " + std::to_string(q->second) +
                                          " reached for IMAGES quota in DATASTORE with ID: " + std::to_string(ds_id) +
                                          ".",
                                      e_authorization};
            }

        image_record img;
        img.id = next_image_id++;
        img.name = *name;
        img.uid = who.id;
        img.gid = who.gid;
        img.datastore_id = ds_id;
        attributes.erase("NAME");
        img.attributes = std::move(attributes);
        img.allocate_template = text;
        img.skip_capacity_check = skip_capacity_check;
        img.regtime = static_cast<long long>(std::time(nullptr));
        images[img.id] = img;
        return success(xmlrpc_c::value_int(img.id));
    }

    image_record &find_image(int id, const user_record &who, const char *action) {
        auto it = images.find(id);
        if (it == images.end()) throw one_failure{"Error getting image [" + std::to_string(id) + "].", e_no_exists, id};
        if (!is_admin(who) && it->second.uid != who.id) deny(who, std::string(action) + " IMAGE", id);
        return it->second;
    }

    xmlrpc_c::value image_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        const int id = p.getInt(1);
        optional_bools(p, 2, 1);
        pugi::xml_document doc;
        image_xml(doc, find_image(id, who, "USE"));
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    // chown's common part: check the new owner and group, then apply.
    template <typename Record>
    xmlrpc_c::value chown(Record &r, const xmlrpc_c::paramList &p, const user_record &who, const char *kind) {
        const int uid = p.getInt(2);
        const int gid = p.getInt(3);
        p.verifyEnd(4);
        if (!is_admin(who)) deny(who, std::string("MANAGE ") + kind, r.id);
        if (uid != -1 && !users.contains(uid))
            throw one_failure{"Error getting user [" + std::to_string(uid) + "].", e_no_exists, uid};
        if (gid != -1 && !groups.contains(gid))
            throw one_failure{"Error getting group [" + std::to_string(gid) + "].", e_no_exists, gid};
        if (uid != -1) r.uid = uid;
        if (gid != -1) r.gid = gid;
        return success(xmlrpc_c::value_int(r.id));
    }

    xmlrpc_c::value image_chown(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        return chown(find_image(p.getInt(1), who, "MANAGE"), p, who, "IMAGE");
    }

    xmlrpc_c::value imagepool_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        const int filter = p.getInt(1);
        const int start = p.getInt(2);
        const int end = p.getInt(3);
        p.verifyEnd(4);
        pugi::xml_document doc;
        auto pool = doc.append_child("IMAGE_POOL");
        for (const auto &[id, img] : images) {
            bool wanted = false;
            switch (filter) {
                case -4: wanted = img.gid == who.gid; break;
                case -3: wanted = img.uid == who.id; break;
                case -2: wanted = true; break;
                case -1: wanted = img.uid == who.id || img.gid == who.gid; break;
                default: wanted = filter >= 0 && img.uid == filter;
            }
            if (!is_admin(who) && img.uid != who.id) wanted = false;
            if (start >= 0 && id < start) wanted = false;
            if (end >= 0 && id > end) wanted = false;
            if (wanted) image_xml(pool, img);
        }
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    xmlrpc_c::value template_allocate(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        const std::string text = p.getString(1);
        p.verifyEnd(2);
        auto attributes = parse_or_throw(text, "Parse error: ");
        if (!is_admin(who))
            for (const auto *nic : attributes.all("NIC"))
                if (nic->vector && nic->get("MAC"))
                    throw one_failure{
                        "User [" + std::to_string(who.id) + "] : VM Template includes a restricted attribute MAC.",
                        e_authorization};
        auto name = attributes.get("NAME");
        if (!name || name->empty()) throw one_failure{"No NAME in template.", e_allocate};
        for (const auto &[id, t] : templates)
            if (t.uid == who.id && t.name == *name)
                throw one_failure{"NAME is already taken by TEMPLATE " + std::to_string(id) + ".", e_allocate};
        vm_template_record t;
        t.id = next_template_id++;
        t.name = *name;
        t.uid = who.id;
        t.gid = who.gid;
        attributes.erase("NAME");
        t.attributes = std::move(attributes);
        t.body = text;
        t.regtime = static_cast<long long>(std::time(nullptr));
        templates[t.id] = t;
        return success(xmlrpc_c::value_int(t.id));
    }

    vm_template_record &find_template(int id, const user_record &who, const char *action) {
        auto it = templates.find(id);
        if (it == templates.end())
            throw one_failure{"Error getting template [" + std::to_string(id) + "].", e_no_exists, id};
        if (!is_admin(who) && it->second.uid != who.id) deny(who, std::string(action) + " TEMPLATE", id);
        return it->second;
    }

    xmlrpc_c::value template_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        const int id = p.getInt(1);
        optional_bools(p, 2, 2);
        pugi::xml_document doc;
        template_xml(doc, find_template(id, who, "USE"));
        return success(xmlrpc_c::value_string(to_xml(doc)));
    }

    xmlrpc_c::value template_chown(const std::string &, const xmlrpc_c::paramList &p, const user_record &who) {
        return chown(find_template(p.getInt(1), who, "MANAGE"), p, who, "TEMPLATE");
    }

    xmlrpc_c::value vm_info(const std::string &, const xmlrpc_c::paramList &p, const user_record &) {
        const int id = p.getInt(1);
        optional_bools(p, 2, 1);
        auto it = vms.find(id);
        if (it == vms.end())
            throw one_failure{"Error getting virtual machine [" + std::to_string(id) + "].", e_no_exists, id};
        return success(xmlrpc_c::value_string(it->second));
    }

    // --- data ---
    options opts;
    mutable std::mutex m;
    std::map<std::string, handler> handlers;
    std::map<int, std::string> groups;
    std::map<int, user_record> users;
    std::map<int, datastore_record> datastores;
    std::map<int, image_record> images;
    std::map<int, vm_template_record> templates;
    std::map<int, std::string> vms;
    std::map<std::pair<int, int>, int> image_quotas;  // (uid, ds id) -> IMAGES
    int next_gid = 100;
    int next_uid = 2;  // oned: 0 oneadmin, 1 serveradmin
    int next_datastore_id = 100;
    int next_image_id = 0;
    int next_template_id = 0;

    std::map<std::string, std::vector<failure_knob>> knobs;
    std::map<std::string, std::pair<std::string, int>> faults;
    std::map<std::string, std::size_t> counts;
    std::map<std::string, int> authenticated_counts;
    std::vector<recorded_call> calls;

    // --- server ---
    // Abyss parses and answers; the listening socket, the accept loop and
    // the connection threads are ours. Abyss's own run() polls its
    // connection threads every 2 s on shutdown, which would make every
    // stop() of a test take up to 2 s; runConn() on our threads does not.
    struct connection {
        fd_owner fd;
        std::thread thread;
        std::atomic<bool> done{false};
    };

    void accept_loop() {
        for (;;) {
            pollfd fds[2] = {{listener.fd, POLLIN, 0}, {wake_read.fd, POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (fds[1].revents != 0) return;
            if ((fds[0].revents & POLLIN) == 0) continue;
            const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            std::lock_guard lock(connections_m);
            reap_finished_connections();
            auto c = std::make_unique<connection>();
            c->fd.fd = fd;
            auto *raw = c.get();
            c->thread = std::thread([this, raw] {
                try {
                    server->runConn(raw->fd.fd);
                } catch (...) {
                    // A broken connection is the client's problem, not the test's.
                }
                // The end of the connection is the end of a reply without a
                // length (Abyss's 404 page); the descriptor itself stays
                // open until the thread is joined, so no other thread can
                // ever shut down a reused number.
                ::shutdown(raw->fd.fd, SHUT_RDWR);
                raw->done = true;
            });
            connections.push_back(std::move(c));
        }
    }

    // Joins connection threads that have finished; connections_m is held.
    void reap_finished_connections() {
        std::erase_if(connections, [](const std::unique_ptr<connection> &c) {
            if (!c->done) return false;
            c->thread.join();
            return true;
        });
    }

    xmlrpc_c::registry registry;
    std::unique_ptr<xmlrpc_c::serverAbyss> server;
    fd_owner listener;
    fd_owner wake_read;
    fd_owner wake_write;
    std::thread acceptor;
    std::mutex connections_m;
    std::vector<std::unique_ptr<connection>> connections;
    std::uint16_t port = 0;
};

fake_oned::fake_oned() : fake_oned(options{}) {}

fake_oned::fake_oned(options opts) : impl_(std::make_unique<impl>(std::move(opts))) {
    impl_->registry.setDefaultMethod(xmlrpc_c::defaultMethodPtr(new impl::dispatching_method(impl_.get())));
}

fake_oned::~fake_oned() { stop(); }

void fake_oned::start() {
    if (impl_->server) return;
    impl_->listener.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (impl_->listener.fd < 0) throw std::system_error(errno, std::generic_category(), "fake_oned: socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(impl_->listener.fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(impl_->listener.fd, 64) != 0)
        throw std::system_error(errno, std::generic_category(), "fake_oned: bind/listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(impl_->listener.fd, reinterpret_cast<sockaddr *>(&addr), &len);
    impl_->port = ntohs(addr.sin_port);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "fake_oned: pipe");
    impl_->wake_read.fd = pipe_fds[0];
    impl_->wake_write.fd = pipe_fds[1];

    // No socket and no port: the server only answers the connections
    // handed to runConn(). serverOwnsSignals(false): Abyss would otherwise
    // install a SIGCHLD handler that reaps every child of the test process.
    impl_->server = std::make_unique<xmlrpc_c::serverAbyss>(
        xmlrpc_c::serverAbyss::constrOpt().registryP(&impl_->registry).serverOwnsSignals(false).expectSigchld(false));
    impl_->acceptor = std::thread([impl = impl_.get()] {
        // Connection threads inherit this mask: see the header.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        impl->accept_loop();
    });
}

void fake_oned::stop() {
    if (!impl_->server) return;
    const char wake = 'x';
    (void)!::write(impl_->wake_write.fd, &wake, 1);
    if (impl_->acceptor.joinable()) impl_->acceptor.join();
    {
        // A client that connected and went silent would keep runConn()
        // reading; shutting the socket down ends that read.
        std::lock_guard lock(impl_->connections_m);
        for (auto &c : impl_->connections) ::shutdown(c->fd.fd, SHUT_RDWR);
        for (auto &c : impl_->connections) c->thread.join();
        impl_->connections.clear();
    }
    impl_->server.reset();
    impl_->listener.reset();
    impl_->wake_read.reset();
    impl_->wake_write.reset();
}

std::uint16_t fake_oned::port() const { return impl_->port; }

std::string fake_oned::endpoint() const { return "http://127.0.0.1:" + std::to_string(impl_->port) + "/RPC2"; }

std::string fake_oned::oneadmin_session() const { return "oneadmin:" + impl_->opts.oneadmin_password; }

std::string fake_oned::serveradmin_credentials() const { return "serveradmin:" + impl_->opts.serveradmin_password; }

void fake_oned::set_image_quota(int uid, int ds_id, int images) {
    std::lock_guard lock(impl_->m);
    impl_->image_quotas[{uid, ds_id}] = images;
}

int fake_oned::add_group(const std::string &name) {
    std::lock_guard lock(impl_->m);
    const int gid = impl_->next_gid++;
    impl_->groups[gid] = name;
    return gid;
}

int fake_oned::add_user(const std::string &name, const std::string &password, int gid) {
    std::lock_guard lock(impl_->m);
    if (!impl_->groups.contains(gid))
        throw std::invalid_argument("fake_oned::add_user: no group " + std::to_string(gid));
    const int uid = impl_->next_uid++;
    impl_->users[uid] = {uid, name, password, gid, "core"};
    return uid;
}

int fake_oned::add_datastore(datastore_record ds) {
    std::lock_guard lock(impl_->m);
    if (ds.id < 0) ds.id = impl_->next_datastore_id;
    impl_->next_datastore_id = std::max(impl_->next_datastore_id, ds.id + 1);
    if (!ds.attributes.contains("TYPE")) ds.attributes.set("TYPE", ds.type);
    const int id = ds.id;
    impl_->datastores[id] = std::move(ds);
    return id;
}

void fake_oned::set_vm(int id, std::string vm_xml) {
    std::lock_guard lock(impl_->m);
    impl_->vms[id] = std::move(vm_xml);
}

std::optional<image_record> fake_oned::image(int id) const {
    std::lock_guard lock(impl_->m);
    auto it = impl_->images.find(id);
    if (it == impl_->images.end()) return std::nullopt;
    return it->second;
}

std::vector<image_record> fake_oned::images() const {
    std::lock_guard lock(impl_->m);
    std::vector<image_record> out;
    for (const auto &[id, img] : impl_->images) out.push_back(img);
    return out;
}

std::optional<datastore_record> fake_oned::datastore(int id) const {
    std::lock_guard lock(impl_->m);
    auto it = impl_->datastores.find(id);
    if (it == impl_->datastores.end()) return std::nullopt;
    return it->second;
}

std::optional<vm_template_record> fake_oned::vm_template(int id) const {
    std::lock_guard lock(impl_->m);
    auto it = impl_->templates.find(id);
    if (it == impl_->templates.end()) return std::nullopt;
    return it->second;
}

std::vector<vm_template_record> fake_oned::vm_templates() const {
    std::lock_guard lock(impl_->m);
    std::vector<vm_template_record> out;
    for (const auto &[id, t] : impl_->templates) out.push_back(t);
    return out;
}

void fake_oned::fail_call(const std::string &method, int nth, std::string message, std::int32_t code, bool only_once) {
    std::lock_guard lock(impl_->m);
    impl_->knobs[method].push_back({nth, std::move(message), code, only_once});
}

void fake_oned::refuse_image_allocation_from(int nth) {
    fail_call("one.image.allocate", nth, "[one.image.allocate] Not enough free space", e_allocate);
}

void fake_oned::refuse_template_allocation_from(int nth) {
    fail_call("one.template.allocate", nth, "[one.template.allocate] Not enough free space", e_allocate);
}

void fake_oned::fault_next_call(const std::string &method, std::string fault_text, int fault_code) {
    std::lock_guard lock(impl_->m);
    impl_->faults[method] = {std::move(fault_text), fault_code};
}

void fake_oned::clear_knobs() {
    std::lock_guard lock(impl_->m);
    impl_->knobs.clear();
    impl_->faults.clear();
}

std::size_t fake_oned::call_count(const std::string &method) const {
    std::lock_guard lock(impl_->m);
    auto it = impl_->counts.find(method);
    return it == impl_->counts.end() ? 0 : it->second;
}

std::vector<recorded_call> fake_oned::calls() const {
    std::lock_guard lock(impl_->m);
    return impl_->calls;
}

void fake_oned::clear_calls() {
    std::lock_guard lock(impl_->m);
    impl_->calls.clear();
    impl_->counts.clear();
}

}  // namespace oneds::test::oned
