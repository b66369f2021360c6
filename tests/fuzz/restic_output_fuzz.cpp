// restic's output as the plugin decodes it: `restic snapshots --json`
// (parse_snapshots_json, plugin/restic/model/backup_image.hpp) and the
// classifiers of plugin/restic/cli/restic_output.hpp (version line, backup
// --json lines, lock conflicts, exit classification, error text). The first
// byte is the exit code, the rest what restic printed. Only
// parse_snapshots_json may throw (std::runtime_error, documented); error
// texts are one line, a failure always has a message.
#include "plugin/restic/cli/restic_output.hpp"
#include "plugin/restic/model/backup_image.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include "common/strings.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace oneds::restic;
    if (size == 0) return 0;
    const int exit_code = data[0];
    const std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);

    try {
        for (const auto &s : parse_snapshots_json(text)) {
            FUZZ_CHECK(s.short_id == s.id.substr(0, 8));
            FUZZ_CHECK(s.disk_paths().size() + s.other_paths().size() == s.paths.size());
        }
    } catch (const std::runtime_error &) {}

    if (const auto v = parse_version(text)) FUZZ_CHECK(parse_version("restic " + v->str())->str() == v->str());
    for (const auto &line : oneds::common::split(text, '\n')) (void)parse_backup_line(line);

    if (const auto lock = parse_lock_conflict(text)) FUZZ_CHECK(!lock->describe().empty());

    const auto error_text = restic_error_text(text);
    FUZZ_CHECK(error_text.find_first_of("\r\n") == std::string::npos);
    const auto info = classify_exit(exit_code, text);
    FUZZ_CHECK(info.message.find_first_of("\r\n") == std::string::npos);
    if (info.kind == exit_kind::failed || info.kind == exit_kind::killed) FUZZ_CHECK(!info.message.empty());
    if (info.kind == exit_kind::locked) FUZZ_CHECK(info.lock.has_value());
    (void)exit_kind_text(info.kind);
    return 0;
}
