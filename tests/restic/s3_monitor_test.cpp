#define BOOST_TEST_MODULE restic_s3_monitor
// MONITOR of an S3 datastore with port doubles: a bucket store whose usage
// answer is scripted and an oned whose image pool is, so that every branch
// runs (the real gateway in restic_s3_test always reports its usage).
#include "plugin/restic/actions/action_env.hpp"

#include "tests/fakes/recording_runner.hpp"
#include "tests/integration/scratch_dir.hpp"
#include "tests/unit/recording_host.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

using namespace oneds;
using namespace oneds::restic;

namespace {

// The bucket: usage_summary answers `answer`, after `delay` (a stop ends the
// wait with kind cancelled, as the S3 adapter does).
class bucket_store final : public ports::repo_store {
public:
    ports::result<ports::store_usage> answer = ports::store_usage{};
    std::chrono::milliseconds delay{0};
    int asked = 0;

    ports::result<ports::file_info> stat(const std::string &, const std::stop_token &) override {
        return ports::file_info{};
    }
    ports::status make_directories(const std::string &, const std::stop_token &) override { return ports::ok(); }
    ports::result<ports::capacity_info> capacity(const std::string &, const std::stop_token &) override {
        return ports::error{ports::error_kind::unsupported, "no capacity"};
    }
    ports::result<ports::store_usage> usage_summary(const std::stop_token &stop) override {
        ++asked;
        if (delay.count() > 0 && !ports::sleep_for(stop, delay))
            return ports::error{ports::error_kind::cancelled, "cancelled"};
        return answer;
    }
    std::string describe() const override { return "s3:http://gw:7480/bk"; }
};

// oned: one.imagepool.info answers `pool`, or fails with `failure`.
class pool_api final : public ports::one_api {
public:
    std::string pool;
    std::optional<ports::error> failure;
    int calls = 0;
    ports::result<ports::rpc_result> call(const std::string &method, const std::vector<ports::rpc_value> &,
                                          const std::stop_token &) override {
        ++calls;
        if (method != "one.imagepool.info") return ports::error{ports::error_kind::io, "unexpected " + method};
        if (failure) return *failure;
        return ports::rpc_result{pool};
    }
    std::string describe() const override { return "http://oned:2633/RPC2"; }
};

std::string image(int id, int ds, int type, int size) {
    return "<IMAGE><ID>" + std::to_string(id) + "</ID><TYPE>" + std::to_string(type) + "</TYPE><SIZE>" +
           std::to_string(size) + "</SIZE><DATASTORE_ID>" + std::to_string(ds) + "</DATASTORE_ID></IMAGE>";
}

const std::string k_pool = "<IMAGE_POOL>" + image(1, 100, 6, 300) + image(2, 100, 6, 200) + image(3, 100, 0, 999) +
                           image(4, 101, 6, 7000) + "</IMAGE_POOL>";

std::string document() {
    return "<DS_DRIVER_ACTION_DATA><DATASTORE><ID>100</ID><BASE_PATH>/var/lib/one/datastores/100</BASE_PATH>"
           "<TEMPLATE><RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>S3</RESTIC_BACKEND>"
           "<RESTIC_S3_ACCESS_KEY_ID>AKID</RESTIC_S3_ACCESS_KEY_ID><RESTIC_S3_SECRET_ACCESS_KEY>sk"
           "</RESTIC_S3_SECRET_ACCESS_KEY><RESTIC_S3_BUCKET>bk1</RESTIC_S3_BUCKET><TOTAL_MB>1000</TOTAL_MB>"
           "</TEMPLATE></DATASTORE></DS_DRIVER_ACTION_DATA>";
}

struct harness : store_provider {
    test::recording_host host;
    test::recording_runner runner;
    std::shared_ptr<bucket_store> bucket = std::make_shared<bucket_store>();
    pool_api oned;
    bool with_oned = true;
    std::string oned_problem;
    plugin_settings settings;

    harness() { settings.s3_monitor_timeout = std::chrono::milliseconds(300); }

    ports::result<std::shared_ptr<ports::repo_store>> store_for(const datastore_attributes &) override {
        return std::shared_ptr<ports::repo_store>(bucket);
    }

    runtime::outcome monitor(std::stop_source *stop = nullptr) {
        sdk::request req;
        req.id = 1;
        req.action = "monitor";
        req.args = {"100"};  // oned's datastore id, as one_datastore passes it
        req.document = document();
        runtime::request_context ctx(std::move(req), host.link());
        std::optional<std::stop_callback<std::function<void()>>> link;
        if (stop != nullptr) link.emplace(stop->get_token(), [&ctx] { ctx.request_cancel(); });
        action_env env{settings, runner, *this, ctx, with_oned ? &oned : nullptr, nullptr, {}};
        env.oned_problem = oned_problem;
        return monitor_action(env);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(the_buckets_own_usage_wins_and_oned_is_not_asked) {
    harness h;
    h.bucket->answer = ports::store_usage{std::uint64_t{300} * 1048576 + 1, 12};
    const auto r = h.monitor();
    BOOST_TEST(r.status == ONEDS_OK, r.error);
    BOOST_TEST(r.info == "USED_MB=301\nTOTAL_MB=1000\nFREE_MB=699\n");
    BOOST_TEST(h.oned.calls == 0);
}

BOOST_AUTO_TEST_CASE(without_usage_from_the_gateway_the_backup_images_sizes_are_summed_as_stock) {
    harness h;  // usage answered, but no figure in it (AWS, MinIO)
    h.oned.pool = k_pool;
    const auto r = h.monitor();
    BOOST_TEST(r.status == ONEDS_OK, r.error);
    BOOST_TEST(r.info == "USED_MB=500\nTOTAL_MB=1000\nFREE_MB=500\n");
    BOOST_TEST(h.oned.calls == 1);
    // More used than TOTAL_MB: free is 0, never negative.
    h.oned.pool = "<IMAGE_POOL>" + image(1, 100, 6, 1500) + "</IMAGE_POOL>";
    BOOST_TEST(h.monitor().info == "USED_MB=1500\nTOTAL_MB=1000\nFREE_MB=0\n");
}

BOOST_AUTO_TEST_CASE(no_figure_at_all_fails_naming_why_instead_of_a_made_up_zero) {
    harness h;
    h.with_oned = false;
    h.oned_problem = "cannot read /var/lib/one/.one/one_auth: Permission denied";
    auto r = h.monitor();
    BOOST_TEST(r.status != ONEDS_OK);
    BOOST_TEST(r.error.find("does not report the bucket's usage") != std::string::npos, r.error);
    BOOST_TEST(r.error.find("one_auth: Permission denied") != std::string::npos, r.error);
    // oned there but failing: its reason.
    harness o;
    o.oned.failure = ports::error{ports::error_kind::unreachable, "connection refused"};
    r = o.monitor();
    BOOST_TEST(r.status != ONEDS_OK);
    BOOST_TEST(r.error.find("cannot sum the backup images' sizes from oned: connection refused") != std::string::npos,
               r.error);
}

BOOST_AUTO_TEST_CASE(a_bucket_not_made_yet_holds_nothing_or_the_images_sizes) {
    harness h;
    h.bucket->answer = ports::error{ports::error_kind::not_found, "S3 bucket 'bk1' does not exist"};
    h.with_oned = false;
    BOOST_TEST(h.monitor().info == "USED_MB=0\nTOTAL_MB=1000\nFREE_MB=1000\n");
    harness o;
    o.bucket->answer = ports::error{ports::error_kind::not_found, "S3 bucket 'bk1' does not exist"};
    o.oned.pool = k_pool;
    BOOST_TEST(o.monitor().info == "USED_MB=500\nTOTAL_MB=1000\nFREE_MB=500\n");
}

BOOST_AUTO_TEST_CASE(refused_keys_fail_and_a_silent_bucket_fails_within_the_bound) {
    harness h;
    h.bucket->answer = ports::error{ports::error_kind::permission, "the S3 endpoint refused the keys"};
    h.oned.pool = k_pool;
    auto r = h.monitor();
    BOOST_TEST(r.status != ONEDS_OK);
    BOOST_TEST(r.error.find("refused the keys") != std::string::npos, r.error);
    BOOST_TEST(h.oned.calls == 0);

    harness slow;
    slow.bucket->delay = std::chrono::seconds(30);
    const auto start = std::chrono::steady_clock::now();
    r = slow.monitor();
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(r.status != ONEDS_OK);
    BOOST_TEST(r.error.find("did not answer within") != std::string::npos, r.error);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 5000);
}

BOOST_AUTO_TEST_CASE(a_cancel_ends_the_wait_for_the_bucket) {
    harness h;
    h.settings.s3_monitor_timeout = std::chrono::seconds(60);
    h.bucket->delay = std::chrono::seconds(60);
    std::stop_source stop;
    std::jthread canceller([&stop] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        stop.request_stop();
    });
    const auto start = std::chrono::steady_clock::now();
    const auto r = h.monitor(&stop);
    BOOST_TEST(r.status != ONEDS_OK);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count() <
               5000);
    BOOST_TEST(h.oned.calls == 0);
}
