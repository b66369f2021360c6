// The restic:// URL grammar (parse_restic_url, plugin/restic/model/backup_image.hpp):
// any text either parses or throws std::runtime_error (the one documented
// exception); a parsed URL's fields re-form into a URL that parses to the
// same fields, and what the downloader builds paths from is well-formed.
#include "plugin/restic/model/backup_image.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace oneds::restic;
    const std::string url(reinterpret_cast<const char *>(data), size);
    restic_url u;
    try {
        u = parse_restic_url(url);
    } catch (const std::runtime_error &) {
        return 0;
    }
    FUZZ_CHECK(!u.ds_id.empty() && u.ds_id.find_first_not_of("0123456789") == std::string::npos);
    FUZZ_CHECK(u.bj_id.find_first_not_of("0123456789") == std::string::npos);
    FUZZ_CHECK(!u.chain.empty());
    for (const auto &i : u.chain)
        FUZZ_CHECK(i.snapshot.size() >= 8 && i.snapshot.find_first_not_of("0123456789abcdef") == std::string::npos);
    FUZZ_CHECK(u.path.size() > 1 && u.path.front() == '/');
    FUZZ_CHECK(!u.repo_id().empty());
    FUZZ_CHECK(url.ends_with(u.path));
    FUZZ_CHECK(u.disk_index == disk_index_of(u.path));

    const auto formed = u.str();
    restic_url again;
    try {
        again = parse_restic_url(formed);
    } catch (const std::runtime_error &e) {
        std::fprintf(stderr, "re-formed URL refused: %s\n", e.what());
        FUZZ_CHECK(false);
    }
    FUZZ_CHECK(again.rbd == u.rbd && again.ds_id == u.ds_id && again.bj_id == u.bj_id && again.chain == u.chain &&
               again.path == u.path && again.disk_index == u.disk_index && again.vm_id == u.vm_id);
    FUZZ_CHECK(again.str() == formed);
    return 0;
}
