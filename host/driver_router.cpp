#include "host/driver_router.hpp"

#include "common/base64.hpp"

#include <pugixml.hpp>

namespace oneds::host {

std::string doctype_problem(std::string_view xml) {
    // Cheap first: a declaration needs these bytes somewhere.
    if (xml.find("<!DOCTYPE") == std::string_view::npos) return {};
    pugi::xml_document doc;
    // parse_doctype keeps the declaration as a node (never interpreted).
    if (!doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_doctype)) return {};
    for (const auto &n : doc.children())
        if (n.type() == pugi::node_doctype)
            return "XML with a document type declaration (DTD or entity declarations) is refused";
    return {};
}

std::variant<routed_request, std::string> route_payload(std::string_view base64_payload) {
    auto xml = common::base64_decode(base64_payload);
    if (!xml) return std::string("Cannot decode driver action data: not base64");
    pugi::xml_document doc;
    if (!doc.load_buffer(xml->data(), xml->size())) return std::string("Cannot parse driver action data: not XML");
    if (auto p = doctype_problem(*xml); !p.empty()) return "Cannot parse driver action data: " + p;
    routed_request r;
    const auto ds = doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node();
    r.system_datastore = ds.child("TYPE").text().as_int(-1) == 1;
    r.driver = r.system_datastore ? ds.child("TM_MAD").text().as_string() : ds.child("DS_MAD").text().as_string();
    r.document = std::move(*xml);
    return r;
}

}  // namespace oneds::host
