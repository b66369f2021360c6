// fake_one_datastore: a STAND-IN for OpenNebula's stock Ruby driver
// one_datastore (src/datastore_mad/one_datastore.rb), not a port of it. It runs
// no script; it only speaks the DATASTORE_MAD line protocol well enough for
// tests of one_ds_host's --fallback forwarding.
//
//   INIT                  -> "INIT SUCCESS - -" (what the Ruby driver sends)
//   <A>  <id> <payload>   -> "LOG I <id> fallback got <A>"
//                            "<A> SUCCESS <id> fallback-<a in lower case>"
//   FINALIZE or EOF       -> exits 0
//   any other line        -> recorded, no reply
//
// Recording: when FAKE_ONE_DATASTORE_RECORD names a file (or the first
// arguments are "--record FILE", which are then not recorded as argv), the
// program appends to it, flushed line by line:
//   ARGV <i> <argv[i]>    for every element of argv, argv[0] included
//   LINE <line>           for every line received on stdin, as received
//   EXIT <why>            "FINALIZE" or "EOF", just before exiting
//
// FAKE_ONE_DATASTORE_INIT_REPLY, when set, replaces the INIT reply (to test a
// fallback that fails its handshake). FAKE_ONE_DATASTORE_DIE_ON=<ACTION> makes
// it exit 3 without a reply when it receives that action (a crashed driver).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> tokens_of(const std::string &line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string t; in >> t;) out.push_back(t);
    return out;
}

std::string lower(std::string s) {
    for (auto &c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

// One write per line, flushed at once: the host reads replies as they come.
void send(const std::string &line) { std::cout << line << '\n' << std::flush; }

}  // namespace

int main(int argc, char **argv) {
    std::vector<std::string> args(argv, argv + argc);
    std::string record_path;
    if (const char *env = std::getenv("FAKE_ONE_DATASTORE_RECORD"); env != nullptr) record_path = env;
    if (args.size() >= 3 && args[1] == "--record") {
        record_path = args[2];
        args.erase(args.begin() + 1, args.begin() + 3);
    }
    std::ofstream record;
    if (!record_path.empty()) record.open(record_path, std::ios::app);
    const auto note = [&record](const std::string &text) {
        if (record.is_open()) record << text << '\n' << std::flush;
    };
    for (std::size_t i = 0; i < args.size(); ++i) note("ARGV " + std::to_string(i) + " " + args[i]);

    std::string init_reply = "INIT SUCCESS - -";
    if (const char *env = std::getenv("FAKE_ONE_DATASTORE_INIT_REPLY"); env != nullptr) init_reply = env;

    std::string die_on;
    if (const char *env = std::getenv("FAKE_ONE_DATASTORE_DIE_ON"); env != nullptr) die_on = env;

    std::string line;
    while (std::getline(std::cin, line)) {
        note("LINE " + line);
        const auto t = tokens_of(line);
        if (t.empty()) continue;
        if (t[0] == "FINALIZE") {
            note("EXIT FINALIZE");
            return 0;
        }
        if (t[0] == "INIT") {
            send(init_reply);
            continue;
        }
        if (t.size() < 2) continue;
        if (t[0] == die_on) {
            note("EXIT DIE_ON");
            return 3;
        }
        send("LOG I " + t[1] + " fallback got " + t[0]);
        send(t[0] + " SUCCESS " + t[1] + " fallback-" + lower(t[0]));
    }
    note("EXIT EOF");
    return 0;
}
