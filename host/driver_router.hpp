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
// data: not base64", "Cannot parse driver action data: not XML", or the
// doctype_problem below).
std::variant<routed_request, std::string> route_payload(std::string_view base64_payload);

// "" unless xml has a document type declaration (a DTD, with or without
// entity declarations), else why it is refused. oned never sends one; pugixml
// would skip it and leave every entity reference unexpanded, so the document
// would silently mean something else than what it says (an "&pw;" password
// taken literally). Deliberately stricter than the stock driver (Ruby's XML
// parsers process internal DTDs): such a document is refused, before any
// entity could be expanded or fetched. A "<!DOCTYPE" inside CDATA or a
// comment is text, not a declaration, and passes.
std::string doctype_problem(std::string_view xml);

}  // namespace oneds::host
