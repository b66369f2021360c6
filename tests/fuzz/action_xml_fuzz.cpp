// The action document decoder: what oned (MAD mode, base64) or a remotes
// wrapper (action mode, XML or base64 on stdin) gives, decoded by the host
// (route_payload, decode_action_input) and read by the plugin
// (parse_datastore, parse_backup_image and, for a <VM>
// document, restore_vm_template: the backed-up vm.xml of a restore). Only the
// documented exceptions may leave them: std::invalid_argument from
// decode_action_input, attribute_error from parse_datastore and
// std::runtime_error from parse_backup_image and restore_vm_template.
#include "host/action_mode.hpp"
#include "host/driver_router.hpp"
#include "plugin/restic/model/attributes.hpp"
#include "plugin/restic/model/backup_image.hpp"
#include "plugin/restic/model/vm_template.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>

namespace {

using namespace oneds::restic;

void read_document(const std::string &xml, bool flag) {
    struct {
        pugi::xml_document doc;
    } d;
    if (!d.doc.load_buffer(xml.data(), xml.size())) return;
    try {
        const auto a = parse_datastore(d.doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node(),
                                       [](std::string_view h) { return h == "backup-alias"; });
        FUZZ_CHECK(!a.password.empty() && !a.base_path.empty() && a.base_path.front() == '/');
        (void)repository_url(a, a.base_path + "/7");
    } catch (const attribute_error &) {}
    try {
        const auto img = parse_backup_image(d.doc);
        const auto ordered = img.ordered();
        FUZZ_CHECK(ordered.size() == img.chain.size());
        FUZZ_CHECK(std::is_sorted(ordered.begin(), ordered.end(),
                                  [](const increment &x, const increment &y) { return x.id < y.id; }));
        FUZZ_CHECK(img.up_to(img.increment_id).size() <= ordered.size());
        const auto repo = img.repo_id();
        FUZZ_CHECK(repo.find('/') == std::string::npos && repo != ".." && repo != ".");
        if (!img.selected().empty()) FUZZ_CHECK(img.increment_id.has_value());
        (void)chain_text(ordered);
        (void)chain_keep_last(ordered, img.keep_last.value_or(0), "abcdef12");
    } catch (const std::runtime_error &) {}

    if (d.doc.child("VM")) {
        restore_options o;
        o.name = "restored";
        o.no_nic = flag;
        o.no_ip = !flag;
        try {
            (void)restore_vm_template(xml, {{"0", 100}, {"1", 101}, {"2", 102}}, o);
        } catch (const std::runtime_error &) {}
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    const std::string in(reinterpret_cast<const char *>(data), size);
    const bool flag = size > 0 && (data[size - 1] & 1) != 0;

    // MAD mode: the payload is base64.
    const auto routed = oneds::host::route_payload(in);
    if (const auto *r = std::get_if<oneds::host::routed_request>(&routed)) read_document(r->document, flag);

    // Action mode: XML or base64-encoded XML on stdin.
    std::string xml;
    try {
        xml = oneds::host::decode_action_input(in);
    } catch (const std::invalid_argument &) {
        return 0;
    }
    read_document(xml, flag);
    return 0;
}
