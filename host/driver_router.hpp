// Which driver a request is for: the payload (base64 of the
// DS_DRIVER_ACTION_DATA document) decoded and parsed once, the driver named
// by DATASTORE/DS_MAD, or by TM_MAD for a system datastore (TYPE 1), as oned's
// own datastore driver routes them. Pure: the host decides what to do with
// the name (a plugin, the fallback, or "not available").
#pragma once

#include <string>
#include <string_view>
#include <variant>

namespace oneds::host {

struct routed_request {
    std::string driver;    // DS_MAD, or TM_MAD for a system datastore
    std::string document;  // the decoded XML
    bool system_datastore = false;
};

// The route, or the FAILURE text for oned ("Cannot decode driver action
// data: not base64", "Cannot parse driver action data: not XML"). No DTD is
// processed and no entity expanded (pugixml's defaults).
std::variant<routed_request, std::string> route_payload(std::string_view base64_payload);

}  // namespace oneds::host
