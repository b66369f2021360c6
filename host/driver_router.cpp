#include "host/driver_router.hpp"

#include "common/base64.hpp"

#include <pugixml.hpp>

namespace oneds::host {

std::variant<routed_request, std::string> route_payload(std::string_view base64_payload) {
    auto xml = common::base64_decode(base64_payload);
    if (!xml) return std::string("Cannot decode driver action data: not base64");
    pugi::xml_document doc;
    if (!doc.load_buffer(xml->data(), xml->size())) return std::string("Cannot parse driver action data: not XML");
    routed_request r;
    const auto ds = doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node();
    r.system_datastore = ds.child("TYPE").text().as_int(-1) == 1;
    r.driver = r.system_datastore ? ds.child("TM_MAD").text().as_string() : ds.child("DS_MAD").text().as_string();
    r.document = std::move(*xml);
    return r;
}

}  // namespace oneds::host
