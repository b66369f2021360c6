#include "plugin/restic/restic_plugin.hpp"

#include "plugin/restic/actions/actions.hpp"

#include "adapters/oned/xmlrpc_one_api.hpp"
#include "adapters/s3/s3_store.hpp"
#include "adapters/sftp/sftp_store.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

#include <filesystem>
#include <map>
#include <system_error>

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <stdexcept>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <set>
#include <string>

namespace oneds::restic {
namespace {

// Why dir cannot hold the ssh multiplexing sockets ("" when it can): it is
// created 0700 when missing (its parent must exist), and refused unless it is
// ours and closed to others, since whoever can reach a socket can run
// commands as us on the host.
std::string control_dir_problem(const std::string &dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return std::string("cannot create it: ") + std::strerror(errno);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "is not a directory";
    if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
        return "must belong to this user and be closed to others (chmod 700)";
    return {};
}

// The directory for the ssh multiplexing sockets: the shared one (OpenNebula's
// own by default), or a private one for this instance. A shared directory
// set in the configuration must be usable; the default one falls back to a
// private directory with a warning (appended to warnings), never failing.
control_dir_choice make_control_dir(const plugin_settings &s, std::vector<std::string> &warnings) {
    if (!s.ssh_multiplex) return {};
    if (!s.ssh_control_dir.empty()) {
        const std::string &dir = s.ssh_control_dir;
        const std::string problem = control_dir_problem(dir);
        if (problem.empty()) return {dir, true};
        if (s.ssh_control_dir_set)
            throw std::invalid_argument("[plugin.restic] ssh_control_dir " + dir + " " + problem);
        warnings.push_back("ssh connection reuse: " + dir + ": " + problem +
                           "; using a private socket directory, so connections last only as long as this process "
                           "(set ssh_control_dir to a directory of this user's)");
    }
    std::string templ = "/tmp/oneds-ssh-XXXXXX";        // short: socket paths are limited to 108 bytes
    if (::mkdtemp(templ.data()) == nullptr) return {};  // fall back to one connection per ssh
    return {templ, false};
}

plugin_settings prepared_settings(const sdk::config_map &config, std::vector<std::string> &warnings) {
    plugin_settings s = parse_plugin_settings(config);
    const char *path = std::getenv("PATH");
    if (auto w = resolve_frontend_restic(s, path != nullptr ? path : ""); !w.empty()) warnings.push_back(std::move(w));
    if (!s.restic_bin_missing.empty()) warnings.push_back(s.restic_bin_missing);
    return s;
}

adapters::ssh::ssh_options ssh_options_from(const plugin_settings &s, const std::string &control_dir) {
    adapters::ssh::ssh_options o;
    o.control_dir = control_dir;
    o.control_persist = s.ssh_control_persist;
    o.ssh_config = s.ssh_config;
    // Whether a host is this machine is decided once, by action_env::exec_host
    // (local_hosts -> ""), which also decides how restic's password travels:
    // the runner treats only "" as local.
    o.local_hosts.clear();
    o.connect_timeout = s.ssh_connect_timeout;
    return o;
}

}  // namespace

plugin_instance::plugin_instance(sdk::host_link host, const sdk::config_map &config)
    : settings_(prepared_settings(config, warnings_)),
      control_dir_(make_control_dir(settings_, warnings_)),
      runner_(local_runner_, ssh_options_from(settings_, control_dir_.dir)),
      ssh_settings_(local_runner_),
      sftp_pool_(std::make_shared<adapters::sftp::session_pool>(
          ssh_settings_,
          adapters::sftp::pool_options{std::chrono::duration_cast<std::chrono::milliseconds>(settings_.sftp_timeout)})),
      local_store_(std::make_shared<adapters::local::local_store>()),
      config_(config.begin(), config.end()),
      verifier_(host),
      host_(host),
      health_(std::make_unique<health_reporter>(settings_, runner_, versions_, static_cast<store_provider &>(*this),
                                                [this](char level, const std::string &text) {
                                                    // Not about a request (it has been answered): the instance's own
                                                    // line.
                                                    host_.log(0, level, text);
                                                })),
      dispatcher_(host, settings_.threads) {}

plugin_instance::~plugin_instance() {
    dispatcher_.shutdown();
    verifier_.shutdown();  // cancels a running check: a later cycle redoes it
    // A health update still going to oned gets a bounded wait (oned_timeout,
    // at most 3 s); in action mode the host has written the reply before.
    health_.reset();
    // Masters in a shared directory stay for the next process (ControlPersist).
    if (control_dir_.shared) return;
    runner_.close_masters();
    if (!control_dir_.dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(control_dir_.dir, ec);
    }
}

ports::result<std::shared_ptr<ports::repo_store>> plugin_instance::store_for(const datastore_attributes &a) {
    if (a.backend == backend_kind::local) return std::shared_ptr<ports::repo_store>(local_store_);
    if (a.backend == backend_kind::s3) {
        // One per request: an HTTP connection is cheap to open, and the
        // keys belong to the datastore the request names.
        adapters::s3::s3_target t;
        t.endpoint = a.s3_endpoint;
        t.bucket = a.s3_bucket;
        t.region = a.s3_region;
        t.access_key_id = a.s3_access_key_id;
        t.secret_access_key = a.s3_secret_access_key;
        t.path_style = a.s3_path_style;
        t.ca_file = a.s3_cacert;
        t.insecure_tls = a.s3_insecure_tls;
        t.root = a.base_path;
        auto store = adapters::s3::s3_store::create(std::move(t), settings_.s3_timeout);
        if (!store) return store.err();
        return std::shared_ptr<ports::repo_store>(std::move(store.value()));
    }
    auto store = adapters::sftp::sftp_store::create(
        ports::sftp_target{bare_host(a.sftp_server), a.sftp_user, settings_.ssh_config}, sftp_pool_);
    if (!store) return store.err();
    return std::shared_ptr<ports::repo_store>(std::move(store.value()));
}

bool plugin_instance::is_ssh_alias(std::string_view host) {
    // An alias is a Host entry that names another HostName; what ssh then
    // connects to is that name, which must itself be a host name.
    auto s = ssh_settings_.resolve(settings_.ssh_config, host, {});
    return s && !s->hostname.empty() && s->hostname != host && host_name_problem(s->hostname).empty();
}

ports::result<ports::one_api *> plugin_instance::oned() {
    std::lock_guard lock(oned_mutex_);
    if (!oned_) {
        auto made = adapters::oned::make_one_api(config_);
        if (!made) return made.err();
        oned_ = std::move(made.value());
    }
    return oned_.get();
}

ports::result<ports::one_api_as_user *> plugin_instance::oned_users() {
    std::lock_guard lock(oned_mutex_);
    if (!oned_users_) {
        auto made = adapters::oned::make_one_api_as_user(config_);
        if (!made) return made.err();
        oned_users_ = std::move(made.value());
    }
    return oned_users_.get();
}

std::int32_t plugin_instance::submit(sdk::request req) {
    // The SDK has refused every name the table does not list.
    const action_entry *entry = find_action(req.action);
    if (entry == nullptr) return ONEDS_ERR_UNSUPPORTED;
    if (entry->run == nullptr) {
        // As the stock stubs: the payload is ignored and the error is the
        // script's name followed by "Operation not supported".
        return dispatcher_.start(std::move(req), [](runtime::request_context &ctx) {
            return runtime::outcome::fail(ctx.req().action + ": Operation not supported", ONEDS_ERR_UNSUPPORTED);
        });
    }
    const action_fn fn = entry->run;
    // The downloader reads the datastore from oned unless the request holds
    // it (a rough look at the raw document here; the action parses it).
    const bool needs_oned =
        entry->needs == action_needs::oned ||
        (entry->needs == action_needs::oned_or_datastore && req.document.find("<DATASTORE") == std::string::npos);
    const bool needs_oned_as_user = entry->needs == action_needs::oned_as_user;
    const bool wants_oned = entry->needs == action_needs::oned_if_available;
    return dispatcher_.start(
        std::move(req), [this, fn, needs_oned, needs_oned_as_user, wants_oned](runtime::request_context &ctx) {
            // What the instance found when it started, once, with the first request.
            if (!warned_.exchange(true))
                for (const auto &w : warnings_) ctx.log('W', w);
            action_env env{settings_, runner_, *this, ctx, nullptr, &versions_, {}};
            env.health = health_.get();
            env.verify = &verifier_;
            env.is_ssh_alias = [this](std::string_view host) { return is_ssh_alias(host); };
            if (needs_oned) {
                auto api = oned();
                if (!api) return runtime::outcome::fail("Cannot use oned's XML-RPC API: " + api.err().message);
                env.oned = *api;
            }
            // Making the client costs no request; MONITOR (health, S3's image
            // sizes) and doctor call it when there is one.
            if (wants_oned) {
                if (auto api = oned())
                    env.oned = *api;
                else
                    env.oned_problem = api.err().message;
            }
            if (needs_oned_as_user) {
                auto users = oned_users();
                if (!users) return runtime::outcome::fail("Cannot use oned's XML-RPC API: " + users.err().message);
                env.oned_users = *users;
            }
            return fn(env);
        });
}

std::int32_t plugin_instance::cancel(std::uint64_t id) { return dispatcher_.cancel(id); }

}  // namespace oneds::restic
