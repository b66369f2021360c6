// The fake_oned program: starts, announces its endpoint, writes oneadmin's
// auth file, serves the adapter built by the plugin's factory, stops on
// SIGTERM.
#define BOOST_TEST_MODULE fake_oned_program
#include <boost/test/unit_test.hpp>

#include "adapters/oned/xmlrpc_one_api.hpp"

#include <csignal>
#include <fcntl.h>
#include <cstdio>
#include <filesystem>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace fs = std::filesystem;
using oneds::ports::rpc_value;

namespace {

struct child {
    pid_t pid = -1;
    FILE *out = nullptr;
    ~child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (out) std::fclose(out);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(program_serves_the_factory_built_adapter_and_stops_on_sigterm) {
    std::string tmpl = (fs::temp_directory_path() / "fake-oned-prog-XXXXXX").string();
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    const fs::path dir = tmpl;
    const auto auth = dir / "one_auth";

    std::vector<std::string> args = {
        FAKE_ONED_PATH, "--oneadmin-password", "prog-secret", "--datastore", "100:backups:BACKUP_DS:restic",
        "--user",       "alice:alice-pw",      "--auth-file", auth.string()};
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fds[2];
    BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    child c;
    BOOST_TEST_REQUIRE(posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    c.out = ::fdopen(fds[0], "r");

    char line[256] = {};
    BOOST_TEST_REQUIRE(std::fgets(line, sizeof line, c.out) != nullptr);
    std::string announced(line);
    BOOST_TEST_REQUIRE(announced.starts_with("ENDPOINT http://127.0.0.1:"));
    const std::string endpoint = announced.substr(9, announced.find_last_not_of("\r\n") - 8);

    BOOST_TEST(((fs::status(auth).permissions() & fs::perms::group_all) == fs::perms::none));
    auto api = oneds::adapters::oned::make_one_api(
        {{"host.oned_endpoint", endpoint}, {"host.oned_auth_file", auth.string()}, {"oned_timeout", "5"}});
    BOOST_TEST_REQUIRE(api.has_value(), (api ? "" : api.err().message));
    auto ds = (*api)->call("one.datastore.info", std::vector<rpc_value>{100}, std::stop_token{});
    BOOST_TEST_REQUIRE(ds.has_value(), (ds ? "" : ds.err().message));
    BOOST_TEST(std::get<std::string>(ds->body).find("<DS_MAD>restic</DS_MAD>") != std::string::npos);
    auto pool = (*api)->call("one.userpool.info", {}, std::stop_token{});
    BOOST_TEST_REQUIRE(pool.has_value());
    BOOST_TEST(std::get<std::string>(pool->body).find("<NAME>alice</NAME>") != std::string::npos);

    BOOST_TEST_REQUIRE(::kill(c.pid, SIGTERM) == 0);
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(c.pid, &status, 0) == c.pid);
    c.pid = -1;
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
    std::error_code ec;
    fs::remove_all(dir, ec);
}
