// A started fake oned with a backup and an image datastore, and an adapter
// logged in as oneadmin, for the integration tests of this folder.
#pragma once

#include "tests/oned/fake_oned.hpp"
#include "adapters/oned/xmlrpc_one_api.hpp"
#include "tests/oned/test_print.hpp"

#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

namespace oneds::test::oned {

inline adapters::oned::client_options options_for(const fake_oned &oned, const std::string &session) {
    adapters::oned::client_options o;
    o.endpoint = oned.endpoint();
    o.session = session;
    o.timeout = std::chrono::milliseconds(10'000);
    return o;
}

inline std::unique_ptr<adapters::oned::xmlrpc_one_api> make_client(adapters::oned::client_options o) {
    auto api = adapters::oned::xmlrpc_one_api::create(std::move(o));
    BOOST_TEST_REQUIRE(api.has_value(), (api ? "" : api.err().message));
    return std::move(*api);
}

struct oned_fixture {
    static constexpr int backup_ds = 100;
    static constexpr int image_ds = 1;
    static constexpr int system_ds = 0;

    fake_oned oned;
    std::unique_ptr<adapters::oned::xmlrpc_one_api> api;

    oned_fixture() {
        datastore_record backup;
        backup.id = backup_ds;
        backup.name = "restic-backups";
        backup.type = "BACKUP_DS";
        backup.attributes = parse_template(
            "DS_MAD=\"restic\"\nTM_MAD=\"-\"\nRESTIC_SFTP_SERVER=\"backupserver\"\nRESTIC_PASSWORD=\"pw\"");
        backup.total_mb = 2000;
        backup.free_mb = 1500;
        backup.used_mb = 500;
        oned.add_datastore(backup);

        datastore_record images;
        images.id = image_ds;
        images.name = "default";
        images.attributes = parse_template("DS_MAD=\"fs\"\nTM_MAD=\"ssh\"");
        images.free_mb = 100;
        oned.add_datastore(images);

        datastore_record sys;
        sys.id = system_ds;
        sys.name = "system";
        sys.type = "SYSTEM_DS";
        oned.add_datastore(sys);

        oned.start();
        api = make_client(options_for(oned, oned.oneadmin_session()));
    }
};

}  // namespace oneds::test::oned
