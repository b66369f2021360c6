// The restic:// downloader: docs/stock-driver.md#downloader, invoked by
// downloader.sh as remotes/datastore/restic_downloader.rb <url> (our wrapper
// execs `one_ds_host action restic downloader <url>`).
//
//   stdout  command=<shell words>      what downloader.sh evaluates to stream the image
//           clean_command=<shell words> what it evaluates afterwards to remove it
//
// Each increment's disk file is fetched with `restic restore --include` rather
// than `restic dump`: restore fetches packs in parallel (dump is sequential on
// restic < 0.17), needs no output redirection (so no shell on the remote
// side), and the increments of a chain are pulled at the same time. The chain
// is then rebuilt with `qemu-img rebase -u` and flattened with `qemu-img
// convert` next to the data, as stock. The steps run on the backup server
// in as few round trips as they allow: the snapshot query with the version
// check, each pull with its rebase, the convert, the stream with the removal
// of the pulled files. Temporary files live in
// RESTIC_TMP_DIR/<random> and are removed on failure and cancel; on success
// clean_command removes them.
//
// restic+rbd:// (Ceph disks, docs/rbd.md): the chain's files (disk.<idx>.rbd2,
// then disk.<idx>.<inc>.rbdiff) are pulled the same way, not rebased, and
// packed into one gzip tar, the files at its top level under their own names,
// which is what the Ceph import unpacks; that tarball is what streams.
#include "plugin/restic/repo_ops.hpp"

#include "common/shell_quote.hpp"
#include "common/strings.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace oneds::restic {
namespace {

using runtime::outcome;

std::string random_hex(std::size_t n) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char *digits = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s.push_back(digits[rng() % 16]);
    return s;
}

std::string shell_words(const std::vector<std::string> &argv) {
    std::string out;
    for (const auto &w : argv) out += (out.empty() ? "" : " ") + common::shell_quote(w);
    return out;
}

// The ssh prefix of command= / clean_command= for a remote site, as stock
// (ControlMaster off, agent forwarded) plus the plugin's ssh config file.
std::vector<std::string> ssh_prefix(const action_env &env, const std::string &host) {
    std::vector<std::string> argv = {"ssh"};
    if (!env.settings.ssh_config.empty()) argv.insert(argv.end(), {"-F", env.settings.ssh_config});
    argv.insert(argv.end(), {"-q", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ForwardAgent=yes", "-o",
                             "BatchMode=yes", host});
    return argv;
}

}  // namespace

outcome downloader_action(action_env &env) {
    auto args = env.ctx.req().args;
    // --stdout: stream the image on stdout instead of printing command= lines.
    const bool to_stdout = !args.empty() && args.front() == "--stdout";
    if (to_stdout) args.erase(args.begin());
    if (args.size() != 1) return outcome::fail("downloader: expected [--stdout] <restic:// URL>");
    restic_url url;
    try {
        url = parse_restic_url(args[0]);
    } catch (const std::exception &e) {
        return outcome::fail(e.what());
    }
    // The backup datastore, decrypted (RESTIC_PASSWORD): from oned as the stock
    // helper reads it, or, when one is given on stdin (a DATASTORE document, or
    // DS_DRIVER_ACTION_DATA holding one), from there: downloads without oned.
    pugi::xml_document ds_doc;
    pugi::xml_node ds;
    const auto &input = env.ctx.req().document;
    if (!input.empty() && ds_doc.load_buffer(input.data(), input.size())) {
        ds = ds_doc.child("DATASTORE");
        if (!ds) ds = ds_doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node();
    }
    if (!ds) {
        if (env.oned == nullptr)
            return outcome::fail("downloader: the oned XML-RPC endpoint is needed to read datastore " + url.ds_id +
                                 " (set oned_endpoint / oned_auth_file)");
        auto info =
            env.oned->call("one.datastore.info", {static_cast<std::int32_t>(std::stoi(url.ds_id)), true}, env.stop());
        if (!info) return outcome::from(info.err(), "Cannot read backup datastore " + url.ds_id + ": ");
        const auto *xml = std::get_if<std::string>(&info->body);
        if (xml == nullptr || !ds_doc.load_buffer(xml->data(), xml->size()) || !(ds = ds_doc.child("DATASTORE")))
            return outcome::fail("Cannot read backup datastore " + url.ds_id + ": oned returned no DATASTORE document");
    }
    datastore_attributes attrs;
    try {
        attrs = parse_datastore(ds, env.is_ssh_alias);
    } catch (const attribute_error &e) {
        return outcome::fail(wrong_configuration(e.what()));
    }
    if (std::to_string(attrs.ds_id) != url.ds_id)
        return outcome::fail("downloader: the datastore given is " + std::to_string(attrs.ds_id) + ", the URL names " +
                             url.ds_id);
    const auto site = maintenance_site(env, attrs, attrs.base_path + "/" + url.repo_id());

    // Which file of each increment holds this disk, and (at the same time:
    // one round trip less) the restic version on that host.
    std::vector<std::string> ids;
    for (const auto &i : url.chain) ids.push_back(i.snapshot);
    std::optional<restic_version> version;
    ports::result<std::vector<snapshot_info>> snaps = ports::error{ports::error_kind::io, "not run"};
    {
        std::jthread version_thread([&] { version = env.restic_version_at(site, env.stop()); });
        snaps = query_snapshots(env, attrs, site, ids);
    }
    if (!snaps) return outcome::from(snaps.err(), "Unable to read backup information: ");
    const std::string prefix = "disk." + url.disk_index + ".";
    struct piece {
        std::string snapshot, path, local;
    };
    const std::string tmp_dir = clean_path(attrs.tmp_dir + "/oneds-restic-" + random_hex(16));
    std::vector<piece> pieces;
    for (const auto &i : url.chain) {
        const auto *s = find_snapshot(*snaps, i.snapshot);
        if (s == nullptr) return outcome::fail("No such snapshot: " + i.snapshot);
        const auto it = std::find_if(s->paths.begin(), s->paths.end(),
                                     [&](const std::string &p) { return base_name(p).rfind(prefix, 0) == 0; });
        if (it == s->paths.end())
            return outcome::fail("Snapshot " + i.snapshot + " holds no file " + prefix + "* (disk " + url.disk_index +
                                 ")");
        // restic restore --target creates <tmp_dir>/<k> and its parents.
        pieces.push_back({i.snapshot, *it, tmp_dir + "/" + std::to_string(pieces.size()) + *it});
    }
    const auto cleanup = [&] {  // also after a cancel
        (void)run_tool(env, site.host, {"rm", "-rf", "--", tmp_dir}, "cleanup", std::stop_token{});
    };

    // Pull every increment's file at once (bounded), each into its own
    // folder, and re-link each detached qcow2 overlay to the file before it as
    // soon as it is there (rebase -u only rewrites its header). Ceph files
    // (restic+rbd) are not images to re-link: they are packed as they are.
    std::vector<ports::status> pulls(pieces.size(), ports::ok());
    ports::parallel_for(
        pieces.size(), parallel_pulls(attrs, version), env.stop(), [&](std::size_t k, const std::stop_token &stop) {
            const std::string target = tmp_dir + "/" + std::to_string(k);
            auto r = run_restic(env, attrs, site, {}, "restore",
                                restore_args(pieces[k].snapshot, target, {pieces[k].path}, version),
                                "restore of " + base_name(pieces[k].path) + " from " + pieces[k].snapshot, {}, stop);
            if (!r)
                pulls[k] = r.err();
            else if (k > 0 && !url.rbd)
                if (auto rebased = run_tool(
                        env, site.host,
                        {"qemu-img", "rebase", "-u", "-F", "qcow2", "-b", pieces[k - 1].local, pieces[k].local},
                        "qemu-img rebase", stop);
                    !rebased)
                    pulls[k] = rebased.err();
        });
    for (const auto &pulled : pulls)
        if (!pulled) {
            cleanup();
            if (env.ctx.cancelled()) return outcome::cancelled();
            return outcome::from(pulled.err(), "Unable to pull backup files: ");
        }

    // One increment is the image itself; a chain is flattened into one
    // standalone image next to the pulled files, which then go.
    std::string final_path = pieces.front().local;
    std::vector<std::string> pulled_dirs;
    const auto all_pulled_dirs = [&] {
        std::vector<std::string> argv = {"rm", "-rf", "--"};
        for (std::size_t k = 0; k < pieces.size(); ++k) argv.push_back(tmp_dir + "/" + std::to_string(k));
        return argv;
    };
    if (url.rbd) {
        // As stock: disk.<idx>.<first character of the last snapshot id>.tar.gz
        // (the rsync driver puts the last increment id there; the Ceph import
        // reads only the files inside, so the name is kept as stock's). The
        // members are the files' own names at the top level, as stock's
        // `tar -C <tmp_dir> <basenames>` gives, each taken from its own pull
        // folder.
        final_path = tmp_dir + "/disk." + url.disk_index + "." + url.chain.back().snapshot.substr(0, 1) + ".tar.gz";
        std::vector<std::string> tar = {"tar", "-czf", final_path};
        for (const auto &p : pieces) tar.insert(tar.end(), {"-C", dir_name(p.local), base_name(p.local)});
        auto packed = run_tool(env, site.host, tar, "tar");
        if (!packed) {
            cleanup();
            if (env.ctx.cancelled()) return outcome::cancelled();
            return outcome::from(packed.err(), "Unable to prepare image: ");
        }
        pulled_dirs = all_pulled_dirs();
    } else if (pieces.size() > 1) {
        final_path = tmp_dir + "/" + base_name(pieces.back().path);
        auto converted =
            run_tool(env, site.host, {"qemu-img", "convert", "-O", "qcow2", pieces.back().local, final_path},
                     "qemu-img convert");
        if (!converted) {
            cleanup();
            if (env.ctx.cancelled()) return outcome::cancelled();
            return outcome::from(converted.err(), "Unable to prepare image: ");
        }
        pulled_dirs = all_pulled_dirs();
    }

    if (to_stdout) {
        ports::command cat;
        cat.argv = {"cat", "--", final_path};
        ports::run_options o;
        o.stop = env.stop();
        o.kill_grace = env.settings.kill_grace;
        std::int32_t wrote = ONEDS_OK;
        o.on_stdout_data = [&](std::string_view chunk) {
            if (wrote == ONEDS_OK) wrote = env.ctx.write_output(chunk);
        };
        // The pulled files go while the image streams (they are not read).
        std::thread remove_pulled;
        if (!pulled_dirs.empty())
            remove_pulled = std::thread([&] { (void)run_tool(env, site.host, pulled_dirs, "rm", std::stop_token{}); });
        auto r = env.runner.run(site.host, cat, o);
        if (remove_pulled.joinable()) remove_pulled.join();
        cleanup();
        if (wrote == ONEDS_ERR_UNSUPPORTED)
            return outcome::fail("downloader: --stdout needs action mode (no byte stream in MAD mode)");
        if (wrote != ONEDS_OK) return outcome::fail("downloader: the reader of standard output went away");
        if (!r || r->cancelled || r->exit_code != 0)
            return outcome::fail("downloader: cannot stream " + final_path + ": " +
                                 (r ? common::one_line(r->stderr_text) : r.err().message));
        return outcome::ok();
    }

    if (!pulled_dirs.empty()) {
        if (auto removed = run_tool(env, site.host, pulled_dirs, "rm"); !removed) {
            cleanup();
            if (env.ctx.cancelled()) return outcome::cancelled();
            return outcome::from(removed.err(), "Unable to prepare image: ");
        }
    }

    // As stock: cat '<file>' and rm -rf '<dir>/' (absolute paths, no "--" needed).
    std::vector<std::string> command = {"cat", final_path};
    std::vector<std::string> clean = {"rm", "-rf", tmp_dir + "/"};
    if (!site.host.empty()) {
        // ssh joins its remote arguments and the remote shell splits them
        // again: the remote command goes as ONE argument, quoted for that shell.
        auto remote = [&](const std::vector<std::string> &argv) {
            auto ssh = ssh_prefix(env, site.host);
            ssh.push_back(shell_words(argv));
            return ssh;
        };
        command = remote(command);
        clean = remote(clean);
    }
    // downloader.sh evals these lines, then evals the variable's value again:
    // the value is quoted words, and the whole value is quoted once more.
    return outcome::ok("command=" + common::shell_quote(shell_words(command)) +
                       "\nclean_command=" + common::shell_quote(shell_words(clean)) + "\n");
}

}  // namespace oneds::restic
