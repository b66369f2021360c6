// Specification of the C++ helper layer's trampolines (oneds/plugin.hpp,
// oneds::sdk::plugin_table): what a host sees through the C table when a C++
// instance misbehaves or the host passes bad arguments.
#define BOOST_TEST_MODULE sdk
#include <boost/test/unit_test.hpp>

#include <oneds/plugin.hpp>

#include "tests/unit/recording_host.hpp"

#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// What probe_instance saw, for the test to inspect. One test at a time uses it
// (Boost.Test runs cases sequentially); the fixture resets it.
struct probe_log {
    oneds::sdk::config_map config;
    std::vector<oneds::sdk::request> submitted;
    std::vector<std::uint64_t> cancelled;
    int constructed = 0;
    int destroyed = 0;
};
probe_log g_probe;

// A plugin instance whose behaviour the test chooses through the config keys
// and action names it sends. It records instead of working: these tests are
// about the trampolines, not about completions.
class probe_instance final : public oneds::sdk::instance {
public:
    probe_instance(oneds::sdk::host_link, const oneds::sdk::config_map &config) {
        g_probe.config = config;
        if (auto it = config.find("throw"); it != config.end()) throw std::invalid_argument(it->second);
        if (config.contains("throw_bad_alloc")) throw std::bad_alloc();
        if (config.contains("throw_int")) throw 42;
        ++g_probe.constructed;
    }
    ~probe_instance() override { ++g_probe.destroyed; }

    std::int32_t submit(oneds::sdk::request req) override {
        if (req.action == "throw") throw std::runtime_error("submit failed");
        if (req.action == "throw_int") throw 42;
        g_probe.submitted.push_back(std::move(req));
        return ONEDS_OK;
    }

    std::int32_t cancel(std::uint64_t id) override {
        if (id == 666) throw std::runtime_error("cancel failed");
        g_probe.cancelled.push_back(id);
        return ONEDS_ERR_NOT_FOUND;
    }
};

const char *const k_actions[] = {"echo", "throw", "throw_int", nullptr};

const oneds_plugin_api *table() {
    return oneds::sdk::plugin_table<probe_instance>::get(ONEDS_ABI_MAJOR, "probe", "9.9.9", k_actions);
}

oneds_config config_of(const std::vector<oneds_config_entry> &entries) {
    return {static_cast<std::uint32_t>(sizeof(oneds_config)), entries.size(), entries.data()};
}

// A well-formed request as the current host would send it.
oneds_request request_of(std::uint64_t id, const char *action) {
    oneds_request r{};
    r.struct_size = sizeof(oneds_request);
    r.id = id;
    r.action = action;
    static const char *const no_args[] = {nullptr};
    r.argv = no_args;
    r.document = "";
    r.origin = ONEDS_ORIGIN_MAD;
    r.oned_id = 12;
    return r;
}

struct fresh_probe {
    fresh_probe() { g_probe = {}; }
    ~fresh_probe() {
        if (instance != nullptr) table()->destroy(instance);
    }

    void create() {
        char errbuf[128] = "";
        BOOST_TEST_REQUIRE(table()->create(host.api(), nullptr, &instance, errbuf, sizeof errbuf) == ONEDS_OK);
        BOOST_TEST_REQUIRE(instance != nullptr);
    }

    oneds::test::recording_host host;
    oneds_instance *instance = nullptr;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(plugin_table_spec, fresh_probe)

BOOST_AUTO_TEST_CASE(get_with_a_wrong_major_returns_null) {
    using table_type = oneds::sdk::plugin_table<probe_instance>;
    BOOST_TEST(table_type::get(ONEDS_ABI_MAJOR + 1, "probe", "9.9.9", k_actions) == nullptr);
    BOOST_TEST(table_type::get(0, "probe", "9.9.9", k_actions) == nullptr);
    BOOST_TEST(table_type::get(ONEDS_ABI_MAJOR, "probe", "9.9.9", k_actions) != nullptr);
}

BOOST_AUTO_TEST_CASE(get_returns_one_static_table_describing_the_plugin) {
    const auto *api = table();
    BOOST_TEST_REQUIRE(api != nullptr);
    BOOST_TEST(api == table());
    BOOST_TEST(api->struct_size == sizeof(oneds_plugin_api));
    BOOST_TEST(api->abi_major == ONEDS_ABI_MAJOR);
    BOOST_TEST(api->abi_minor == ONEDS_ABI_MINOR);
    BOOST_TEST(std::string(api->name) == "probe");
    BOOST_TEST(std::string(api->version) == "9.9.9");
    BOOST_TEST(api->actions == k_actions);
    BOOST_TEST((api->create && api->destroy && api->submit && api->cancel));
}

BOOST_AUTO_TEST_CASE(config_entries_reach_the_constructor) {
    const std::vector<oneds_config_entry> entries = {{"repository", "sftp:backup@host:/srv/restic"},
                                                     {"empty", nullptr},    // a NULL value reads as ""
                                                     {nullptr, "ignored"},  // a NULL key is skipped
                                                     {"host.threads", "4"}};
    const auto config = config_of(entries);
    char errbuf[64] = "";
    BOOST_TEST_REQUIRE(table()->create(host.api(), &config, &instance, errbuf, sizeof errbuf) == ONEDS_OK);
    const oneds::sdk::config_map want = {
        {"repository", "sftp:backup@host:/srv/restic"}, {"empty", ""}, {"host.threads", "4"}};
    BOOST_TEST(g_probe.config == want);
}

BOOST_AUTO_TEST_CASE(a_missing_config_reaches_the_constructor_as_empty) {
    create();
    BOOST_TEST(g_probe.config.empty());
    BOOST_TEST(g_probe.constructed == 1);
}

BOOST_AUTO_TEST_CASE(constructor_exception_text_lands_in_errbuf) {
    const std::vector<oneds_config_entry> entries = {{"throw", "repository is not set"}};
    const auto config = config_of(entries);
    oneds_instance *out = reinterpret_cast<oneds_instance *>(&g_probe);  // poison
    char errbuf[64];
    std::memset(errbuf, 'X', sizeof errbuf);
    BOOST_TEST(table()->create(host.api(), &config, &out, errbuf, sizeof errbuf) == ONEDS_ERR_INVALID);
    BOOST_TEST(out == nullptr);
    BOOST_TEST(std::string(errbuf) == "repository is not set");
}

BOOST_AUTO_TEST_CASE(constructor_exception_text_is_truncated_and_terminated_in_a_small_errbuf) {
    const std::vector<oneds_config_entry> entries = {{"throw", "repository is not set"}};
    const auto config = config_of(entries);
    char buffer[16];
    std::memset(buffer, 'X', sizeof buffer);
    BOOST_TEST(table()->create(host.api(), &config, &instance, buffer, 8) == ONEDS_ERR_INVALID);
    BOOST_TEST(instance == nullptr);
    BOOST_TEST(std::string(buffer) == "reposit");  // 7 characters and the NUL
    for (std::size_t i = 8; i < sizeof buffer; ++i)
        BOOST_TEST(buffer[i] == 'X', "byte " << i << " beyond errbuf_size was written");
}

BOOST_AUTO_TEST_CASE(an_errbuf_of_size_zero_or_null_is_not_written) {
    const std::vector<oneds_config_entry> entries = {{"throw", "repository is not set"}};
    const auto config = config_of(entries);
    char buffer[4] = {'X', 'X', 'X', 'X'};
    BOOST_TEST(table()->create(host.api(), &config, &instance, buffer, 0) == ONEDS_ERR_INVALID);
    BOOST_TEST(buffer[0] == 'X');
    BOOST_TEST(table()->create(host.api(), &config, &instance, nullptr, 64) == ONEDS_ERR_INVALID);
    BOOST_TEST(instance == nullptr);
}

BOOST_AUTO_TEST_CASE(constructor_out_of_memory_is_internal) {
    const std::vector<oneds_config_entry> entries = {{"throw_bad_alloc", "1"}};
    const auto config = config_of(entries);
    char errbuf[64] = "";
    BOOST_TEST(table()->create(host.api(), &config, &instance, errbuf, sizeof errbuf) == ONEDS_ERR_INTERNAL);
    BOOST_TEST(instance == nullptr);
    BOOST_TEST(std::string(errbuf) == "out of memory");
}

BOOST_AUTO_TEST_CASE(constructor_non_exception_throw_is_internal_with_a_message) {
    const std::vector<oneds_config_entry> entries = {{"throw_int", "1"}};
    const auto config = config_of(entries);
    char errbuf[64] = "";
    BOOST_TEST(table()->create(host.api(), &config, &instance, errbuf, sizeof errbuf) == ONEDS_ERR_INTERNAL);
    BOOST_TEST(instance == nullptr);
    BOOST_TEST(std::strlen(errbuf) > 0u);
}

BOOST_AUTO_TEST_CASE(create_refuses_a_missing_or_too_small_host_api) {
    char errbuf[64] = "";
    BOOST_TEST(table()->create(nullptr, nullptr, &instance, errbuf, sizeof errbuf) == ONEDS_ERR_ABI);
    BOOST_TEST(instance == nullptr);
    BOOST_TEST(std::strlen(errbuf) > 0u);

    oneds_host_api old = *host.api();
    old.struct_size = offsetof(oneds_host_api, log);  // a host from before log existed
    errbuf[0] = '\0';
    BOOST_TEST(table()->create(&old, nullptr, &instance, errbuf, sizeof errbuf) == ONEDS_ERR_ABI);
    BOOST_TEST(instance == nullptr);
    BOOST_TEST(std::strlen(errbuf) > 0u);
    BOOST_TEST(g_probe.constructed == 0);
}

BOOST_AUTO_TEST_CASE(create_without_an_out_pointer_is_invalid) {
    char errbuf[64] = "";
    BOOST_TEST(table()->create(host.api(), nullptr, nullptr, errbuf, sizeof errbuf) == ONEDS_ERR_INVALID);
    BOOST_TEST(g_probe.constructed == 0);
}

BOOST_AUTO_TEST_CASE(destroy_deletes_the_instance_and_accepts_null) {
    create();
    table()->destroy(instance);
    instance = nullptr;
    BOOST_TEST(g_probe.destroyed == 1);
    table()->destroy(nullptr);
    BOOST_TEST(g_probe.destroyed == 1);
}

BOOST_AUTO_TEST_CASE(submit_copies_every_request_field) {
    create();
    const char *const argv[] = {"a", nullptr, "c", nullptr};
    const char document[] = "<DS>x</DS>trailing";
    auto r = request_of(5, "echo");
    r.argc = 3;
    r.argv = argv;
    r.document = document;
    r.document_size = 10;  // only "<DS>x</DS>"
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_OK);
    BOOST_TEST_REQUIRE(g_probe.submitted.size() == 1u);
    const auto &got = g_probe.submitted[0];
    BOOST_TEST(got.id == 5u);
    BOOST_TEST(got.action == "echo");
    BOOST_TEST(got.args == (std::vector<std::string>{"a", "", "c"}), "a NULL argument reads as \"\"");
    BOOST_TEST(got.document == "<DS>x</DS>");
    BOOST_TEST(got.origin == ONEDS_ORIGIN_MAD);
    BOOST_TEST(got.oned_id == 12);
}

BOOST_AUTO_TEST_CASE(exceptions_from_submit_become_internal) {
    create();
    auto r = request_of(1, "throw");
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_ERR_INTERNAL);
    r = request_of(2, "throw_int");
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_ERR_INTERNAL);
}

BOOST_AUTO_TEST_CASE(exceptions_from_cancel_become_internal) {
    create();
    BOOST_TEST(table()->cancel(instance, 666) == ONEDS_ERR_INTERNAL);
    BOOST_TEST(table()->cancel(instance, 3) == ONEDS_ERR_NOT_FOUND);
    BOOST_TEST(g_probe.cancelled == std::vector<std::uint64_t>{3});
}

BOOST_AUTO_TEST_CASE(a_request_struct_too_small_for_the_required_fields_is_invalid) {
    create();
    auto r = request_of(1, "echo");
    r.struct_size = offsetof(oneds_request, document_size);  // document_size missing
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_ERR_INVALID);
    r.struct_size = 0;
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_ERR_INVALID);
    BOOST_TEST(g_probe.submitted.empty());
}

BOOST_AUTO_TEST_CASE(a_request_from_before_origin_existed_gets_the_defaults) {
    // The fields after document_size were appended later; an older host's
    // struct ends before them, so their bytes here must not be read.
    create();
    auto r = request_of(1, "echo");
    r.struct_size = offsetof(oneds_request, origin);
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_OK);
    BOOST_TEST_REQUIRE(g_probe.submitted.size() == 1u);
    BOOST_TEST(g_probe.submitted[0].origin == ONEDS_ORIGIN_ACTION);
    BOOST_TEST(g_probe.submitted[0].oned_id == -1);
}

BOOST_AUTO_TEST_CASE(a_request_with_id_zero_is_invalid) {
    create();
    auto r = request_of(0, "echo");
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_ERR_INVALID);
    BOOST_TEST(g_probe.submitted.empty());
}

BOOST_AUTO_TEST_CASE(a_null_request_action_or_instance_is_invalid) {
    create();
    auto r = request_of(1, nullptr);
    BOOST_TEST(table()->submit(instance, &r) == ONEDS_ERR_INVALID);
    BOOST_TEST(table()->submit(instance, nullptr) == ONEDS_ERR_INVALID);
    r = request_of(1, "echo");
    BOOST_TEST(table()->submit(nullptr, &r) == ONEDS_ERR_INVALID);
    BOOST_TEST(table()->cancel(nullptr, 1) == ONEDS_ERR_INVALID);
    BOOST_TEST(g_probe.submitted.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(host_link_spec)

BOOST_AUTO_TEST_CASE(host_link_forwards_complete_and_log_with_their_text) {
    oneds::test::recording_host host;
    const auto link = host.link();
    link.log(3, ONEDS_LOG_WARNING, "slow");
    link.complete(3, ONEDS_ERR_FAILED, "", std::string_view("boom and more", 4));
    const auto c = host.completions_of(3);
    BOOST_TEST_REQUIRE(c.size() == 1u);
    BOOST_TEST(c[0].status == ONEDS_ERR_FAILED);
    BOOST_TEST(c[0].error == "boom");  // a string_view is NUL-terminated on the way out
    const auto logs = host.logs();
    BOOST_TEST_REQUIRE(logs.size() == 1u);
    BOOST_TEST(logs[0].level == ONEDS_LOG_WARNING);
    BOOST_TEST(logs[0].text == "slow");
}

namespace {
struct output_sink {
    std::string bytes;
    static std::int32_t write(void *self, std::uint64_t, const void *data, std::size_t size) {
        static_cast<output_sink *>(self)->bytes.append(static_cast<const char *>(data), size);
        return ONEDS_OK;
    }
};
}  // namespace

BOOST_AUTO_TEST_CASE(write_output_reaches_an_abi_1_1_host_and_is_refused_by_a_1_0_host) {
    output_sink sink;
    oneds_host_api api{};
    api.struct_size = sizeof api;
    api.abi_minor = 1;
    api.host_data = &sink;
    api.write_output = &output_sink::write;
    const oneds::sdk::host_link link(&api);
    BOOST_TEST(link.write_output(1, std::string_view("ab\0c", 4)) == ONEDS_OK);
    BOOST_TEST(sink.bytes == std::string("ab\0c", 4));
    // A host built against ABI 1.0 has a shorter table: the member is not read.
    api.struct_size = static_cast<std::uint32_t>(offsetof(oneds_host_api, write_output));
    BOOST_TEST(link.write_output(1, "x") == ONEDS_ERR_UNSUPPORTED);
    BOOST_TEST(sink.bytes.size() == 4u);
    api.struct_size = sizeof api;
    api.write_output = nullptr;
    BOOST_TEST(link.write_output(1, "x") == ONEDS_ERR_UNSUPPORTED);
}

BOOST_AUTO_TEST_SUITE_END()
