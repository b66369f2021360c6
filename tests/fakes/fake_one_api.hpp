// A ports::one_api double: oned's objects in memory (users, datastores,
// images, VM templates, VMs), every call recorded, and failures or a hang
// scripted per method. Replies and errors have the shapes the XML-RPC adapter
// hands the actions (plugin/ports/one_api.hpp): a body of oned's type (XML
// text, an int id), and "<method>: <oned's message> (code <code>)" with the
// kind oned's code maps to. For fast tests of the actions that talk to oned
// (restore, the downloader); the XML-RPC side itself is tested against
// tests/oned/fake_oned.
//
// What it checks, as oned would: the number and XML-RPC types of the
// parameters of each method it serves (an i8 where oned's signature says i4
// is a fault there, and here); that the objects named exist; that a
// datastore's encrypted attributes (RESTIC_PASSWORD) come back in clear only
// when the call asks to decrypt. It does not check permissions: every call is
// oneadmin's, or, through as_user() (ports::one_api_as_user), the named
// user's: objects it allocates then belong to that user and the user's group,
// and a user it does not know is refused as oned refuses a login (0x100).
//
// Cancellation: a call whose stop token has stopped returns the adapter's
// cancelled error at once; a call of a held method (hold()) waits until its
// token stops, as a call to an oned that does not answer.
#pragma once

#include "plugin/ports/one_api.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace oneds::test {

// One call as the action made it (the session is the adapter's business and
// not part of params).
struct one_call {
    std::string method;
    std::vector<ports::rpc_value> params;
    bool stop_requested_at_start = false;
    std::string user;  // as_user()'s user; "" for the plugin's own credentials
};

class fake_one_api final : public ports::one_api, public ports::one_api_as_user {
public:
    // An object created through the API: its id, where, whose, and the
    // template text it was allocated with, also read as KEY = "value" lines.
    struct object {
        int id = 0;
        int datastore_id = -1;  // images only
        int uid = 0;
        int gid = 0;
        std::string template_text;
        std::map<std::string, std::string> attributes;  // top-level KEY = "value" lines of template_text
    };

    // --- state the test sets up ---

    // A user for one.userpool.info and the chown calls.
    void add_user(int id, const std::string &name, int gid) {
        const std::lock_guard lock(mutex_);
        users_[id] = {name, gid};
    }
    // A datastore: its whole <DATASTORE> element, attributes in clear. Names in
    // encrypted_attributes are returned as oned stores them (not the value)
    // unless one.datastore.info is asked to decrypt.
    void add_datastore(int id, const std::string &datastore_xml) {
        const std::lock_guard lock(mutex_);
        datastores_[id] = datastore_xml;
    }
    std::set<std::string> encrypted_attributes{"RESTIC_PASSWORD"};
    // A VM, returned verbatim by one.vm.info.
    void set_vm(int id, const std::string &vm_xml) {
        const std::lock_guard lock(mutex_);
        vms_[id] = vm_xml;
    }
    // The ids the next allocations get (oned counts per object type).
    int next_image_id = 200;
    int next_template_id = 400;

    // --- scripted behaviour ---

    // The calls of method after the first `after` ones fail with e (which the
    // adapter's shape helpers below build).
    void fail(const std::string &method, ports::error e, std::size_t after = 0) {
        const std::lock_guard lock(mutex_);
        failures_[method] = {std::move(e), after};
    }
    // as_user() fails with e (a missing or malformed cipher auth file).
    void fail_login(ports::error e) {
        const std::lock_guard lock(mutex_);
        login_failure_ = std::move(e);
    }
    // The users as_user() was asked for, in order.
    std::vector<std::string> logins() const {
        const std::lock_guard lock(mutex_);
        return logins_;
    }
    // Calls of method wait until their stop token stops (an oned that does
    // not answer), then return the adapter's cancelled error.
    void hold(const std::string &method) {
        const std::lock_guard lock(mutex_);
        held_methods_.insert(method);
    }
    // True once a call of a held method is waiting (within timeout).
    bool wait_until_held(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [this] { return waiting_ > 0; });
    }

    // oned's refusal as the adapter reports it.
    static ports::error refusal(const std::string &method, const std::string &message, std::int32_t code) {
        ports::error_kind kind = ports::error_kind::io;
        if (code == ports::one_authentication || code == ports::one_authorization)
            kind = ports::error_kind::permission;
        else if (code == ports::one_no_exists)
            kind = ports::error_kind::not_found;
        return {kind, method + ": " + message + " (code " + std::to_string(code) + ")", code};
    }
    // An oned that cannot be reached, as the adapter reports it.
    static ports::error unreachable(const std::string &method) {
        return {ports::error_kind::unreachable,
                method + ": oned at http://oned.test:2633/RPC2 unreachable: Connection refused", 0};
    }

    // --- inspection ---

    std::vector<one_call> calls() const {
        const std::lock_guard lock(mutex_);
        return calls_;
    }
    std::vector<std::string> methods() const {
        const std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto &c : calls_) out.push_back(c.method);
        return out;
    }
    std::vector<object> images() const {
        const std::lock_guard lock(mutex_);
        return values(images_);
    }
    std::vector<object> templates() const {
        const std::lock_guard lock(mutex_);
        return values(templates_);
    }

    // --- ports::one_api ---

    ports::result<ports::rpc_result> call(const std::string &method, const std::vector<ports::rpc_value> &params,
                                          const std::stop_token &stop) override {
        return call_as("", method, params, stop);
    }

    std::string describe() const override { return "http://oned.test:2633/RPC2"; }

    // --- ports::one_api_as_user ---

    ports::result<std::unique_ptr<ports::one_api>> as_user(const std::string &username) override {
        const std::lock_guard lock(mutex_);
        logins_.push_back(username);
        if (login_failure_) return *login_failure_;
        return std::unique_ptr<ports::one_api>(std::make_unique<acting_as>(*this, username));
    }

private:
    // A client acting as one user: every call goes to the fake with the name.
    class acting_as final : public ports::one_api {
    public:
        acting_as(fake_one_api &owner, std::string user) : owner_(owner), user_(std::move(user)) {}
        ports::result<ports::rpc_result> call(const std::string &method, const std::vector<ports::rpc_value> &params,
                                              const std::stop_token &stop) override {
            return owner_.call_as(user_, method, params, stop);
        }
        std::string describe() const override { return owner_.describe(); }

    private:
        fake_one_api &owner_;
        std::string user_;
    };

    ports::result<ports::rpc_result> call_as(const std::string &user, const std::string &method,
                                             const std::vector<ports::rpc_value> &params, const std::stop_token &stop) {
        std::unique_lock lock(mutex_);
        calls_.push_back({method, params, stop.stop_requested(), user});
        const auto cancelled = [&method] {
            return ports::error{ports::error_kind::cancelled, method + ": cancelled (oned may still carry it out)", 0};
        };
        if (stop.stop_requested()) return cancelled();
        if (held_methods_.contains(method)) {
            ++waiting_;
            changed_.notify_all();
            // Bounded, so that a test that forgets to stop fails instead of hanging.
            changed_.wait_for(lock, stop, std::chrono::seconds(10), [] { return false; });
            --waiting_;
            if (stop.stop_requested()) return cancelled();
            return ports::error{ports::error_kind::unreachable,
                                method + ": oned at http://oned.test:2633/RPC2 did not answer within 10 s", 0};
        }
        int uid = 0, gid = 0;  // oneadmin
        if (!user.empty()) {
            const auto u =
                std::find_if(users_.begin(), users_.end(), [&](const auto &e) { return e.second.name == user; });
            if (u == users_.end())
                return refusal(method, "[" + method + "] User couldn't be authenticated, aborting call.",
                               ports::one_authentication);
            uid = u->first;
            gid = u->second.gid;
        }
        if (auto it = failures_.find(method); it != failures_.end()) {
            if (it->second.after == 0) return it->second.e;
            --it->second.after;
        }
        return serve(method, params, uid, gid);
    }

    struct user_entry {
        std::string name;
        int gid = 0;
    };
    struct failure {
        ports::error e;
        std::size_t after = 0;
    };
    // XML-RPC types as oned's signatures name them.
    enum class type { i4, i8, boolean, string };

    static std::vector<object> values(const std::map<int, object> &m) {
        std::vector<object> out;
        for (const auto &[id, o] : m) out.push_back(o);
        return out;
    }

    static bool has_type(const ports::rpc_value &v, type t) {
        switch (t) {
            case type::i4: return std::holds_alternative<std::int32_t>(v);
            case type::i8: return std::holds_alternative<std::int64_t>(v);
            case type::boolean: return std::holds_alternative<bool>(v);
            case type::string: return std::holds_alternative<std::string>(v);
        }
        return false;
    }

    // The parameters match the first `required` types of sig and at most all
    // of them; else an XML-RPC fault, as xmlrpc-c answers a call that fits no
    // signature of the method.
    static std::optional<ports::error> check_signature(const std::string &method,
                                                       const std::vector<ports::rpc_value> &params,
                                                       const std::vector<type> &sig, std::size_t required) {
        bool fits = params.size() >= required && params.size() <= sig.size();
        for (std::size_t i = 0; fits && i < params.size(); ++i) fits = has_type(params[i], sig[i]);
        if (fits) return std::nullopt;
        return ports::error{ports::error_kind::io,
                            method + ": XML-RPC fault -501: the parameters fit no signature of the method", 0};
    }

    static int as_int(const ports::rpc_value &v) { return std::get<std::int32_t>(v); }

    static ports::rpc_result body(std::string text) { return {ports::rpc_value(std::move(text))}; }
    static ports::rpc_result body(int id) { return {ports::rpc_value(static_cast<std::int32_t>(id))}; }

    // Top-level KEY = "value" lines (oned's template syntax, without vectors).
    static std::map<std::string, std::string> read_attributes(const std::string &text) {
        std::map<std::string, std::string> out;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            const auto eq = line.find('=');
            if (eq == std::string::npos) continue;
            const auto trim = [](std::string s) {
                const auto b = s.find_first_not_of(" \t");
                const auto e = s.find_last_not_of(" \t");
                return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
            };
            const std::string key = trim(line.substr(0, eq));
            std::string value = trim(line.substr(eq + 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
                std::string unquoted;
                for (std::size_t i = 1; i + 1 < value.size(); ++i) {
                    if (value[i] == '\\' && i + 2 < value.size()) ++i;
                    unquoted += value[i];
                }
                value = unquoted;
            }
            out[key] = value;
        }
        return out;
    }

    std::string datastore_as_sent(const std::string &xml, bool decrypt) const {
        if (decrypt) return xml;
        pugi::xml_document doc;
        if (!doc.load_buffer(xml.data(), xml.size())) return xml;
        for (const auto &name : encrypted_attributes)
            for (auto node : doc.child("DATASTORE").child("TEMPLATE").children(name.c_str()))
                node.text().set("<encrypted by oned>");
        std::ostringstream out;
        doc.save(out, "", pugi::format_raw | pugi::format_no_declaration);
        return out.str();
    }

    ports::result<ports::rpc_result> chown(const std::string &method, std::map<int, object> &objects,
                                           const std::string &what, const std::vector<ports::rpc_value> &params) {
        const int id = as_int(params[0]), uid = as_int(params[1]), gid = as_int(params[2]);
        const auto it = objects.find(id);
        if (it == objects.end())
            return refusal(method, "[" + method + "] Error getting " + what + " [" + std::to_string(id) + "].",
                           ports::one_no_exists);
        if (uid != -1 && !users_.contains(uid))
            return refusal(method, "[" + method + "] Error getting user [" + std::to_string(uid) + "].",
                           ports::one_no_exists);
        if (uid != -1) it->second.uid = uid;
        if (gid != -1) it->second.gid = gid;
        return body(id);
    }

    // Called with mutex_ held.
    ports::result<ports::rpc_result> serve(const std::string &method, const std::vector<ports::rpc_value> &params,
                                           int uid, int gid) {
        using enum type;
        const auto missing = [&method](const std::string &what, int id) {
            return refusal(method, "[" + method + "] Error getting " + what + " [" + std::to_string(id) + "].",
                           ports::one_no_exists);
        };
        if (method == "one.datastore.info") {
            if (auto e = check_signature(method, params, {i4, boolean}, 1)) return *e;
            const int id = as_int(params[0]);
            const auto it = datastores_.find(id);
            if (it == datastores_.end()) return missing("datastore", id);
            const bool decrypt = params.size() > 1 && std::get<bool>(params[1]);
            return body(datastore_as_sent(it->second, decrypt));
        }
        if (method == "one.userpool.info") {
            if (auto e = check_signature(method, params, {}, 0)) return *e;
            std::string xml = "<USER_POOL>";
            for (const auto &[id, u] : users_)
                xml += "<USER><ID>" + std::to_string(id) + "</ID><GID>" + std::to_string(u.gid) + "</GID><NAME>" +
                       u.name + "</NAME></USER>";
            return body(xml + "</USER_POOL>");
        }
        if (method == "one.vm.info") {
            if (auto e = check_signature(method, params, {i4, boolean}, 1)) return *e;
            const int id = as_int(params[0]);
            const auto it = vms_.find(id);
            if (it == vms_.end()) return missing("virtual machine", id);
            return body(it->second);
        }
        if (method == "one.image.allocate") {
            if (auto e = check_signature(method, params, {string, i4, boolean}, 2)) return *e;
            const int ds = as_int(params[1]);
            if (!datastores_.contains(ds)) return missing("datastore", ds);
            object o;
            o.id = next_image_id++;
            o.datastore_id = ds;
            o.uid = uid;
            o.gid = gid;
            o.template_text = std::get<std::string>(params[0]);
            o.attributes = read_attributes(o.template_text);
            images_[o.id] = o;
            return body(o.id);
        }
        if (method == "one.template.allocate") {
            if (auto e = check_signature(method, params, {string}, 1)) return *e;
            object o;
            o.id = next_template_id++;
            o.uid = uid;
            o.gid = gid;
            o.template_text = std::get<std::string>(params[0]);
            o.attributes = read_attributes(o.template_text);
            templates_[o.id] = o;
            return body(o.id);
        }
        if (method == "one.image.chown") {
            if (auto e = check_signature(method, params, {i4, i4, i4}, 3)) return *e;
            return chown(method, images_, "image", params);
        }
        if (method == "one.template.chown") {
            if (auto e = check_signature(method, params, {i4, i4, i4}, 3)) return *e;
            return chown(method, templates_, "template", params);
        }
        return ports::error{ports::error_kind::io, method + ": XML-RPC fault -506: method not served by this fake", 0};
    }

    mutable std::mutex mutex_;
    std::condition_variable_any changed_;
    std::vector<one_call> calls_;
    std::map<int, user_entry> users_;
    std::map<int, std::string> datastores_;
    std::map<int, std::string> vms_;
    std::map<int, object> images_;
    std::map<int, object> templates_;
    std::map<std::string, failure> failures_;
    std::set<std::string> held_methods_;
    std::optional<ports::error> login_failure_;
    std::vector<std::string> logins_;
    int waiting_ = 0;
};

}  // namespace oneds::test
