// The fake_oned program: starts, announces its endpoint, writes oneadmin's
// auth file, serves the adapter built by the plugin's factory, stops on
// SIGTERM.
#define BOOST_TEST_MODULE fake_oned_program
#include <boost/test/unit_test.hpp>

#include "adapters/oned/xmlrpc_one_api.hpp"

#include "common/child.hpp"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

namespace fs = std::filesystem;
using oneds::ports::rpc_value;

namespace {

struct file_closer {
    void operator()(FILE *f) const noexcept { std::fclose(f); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(program_serves_the_factory_built_adapter_and_stops_on_sigterm) {
    std::string tmpl = (fs::temp_directory_path() / "fake-oned-prog-XXXXXX").string();
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    const fs::path dir = tmpl;
    const auto auth = dir / "one_auth";

    oneds::common::child_spec spec;
    spec.argv = {FAKE_ONED_PATH, "--oneadmin-password", "prog-secret", "--datastore", "100:backups:BACKUP_DS:restic",
                 "--user",       "alice:alice-pw",      "--auth-file", auth.string()};
    spec.out = oneds::common::child_stream::pipe();
    // Killed and reaped by the handle if the test stops early.
    auto c = oneds::common::spawn(spec);
    const std::unique_ptr<FILE, file_closer> out(::fdopen(c.stdout_pipe().release(), "r"));
    BOOST_TEST_REQUIRE(out != nullptr);

    char line[256] = {};
    BOOST_TEST_REQUIRE(std::fgets(line, sizeof line, out.get()) != nullptr);
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

    BOOST_TEST_REQUIRE(c.signal(SIGTERM));
    const auto status = c.wait();
    BOOST_TEST_REQUIRE(!status.lost);
    BOOST_TEST(status.exited());
    BOOST_TEST(status.exit_code() == 0);
    std::error_code ec;
    fs::remove_all(dir, ec);
}
