// What the integration tests send a driver on the MAD channel: the paths of
// the built programs, and DS_DRIVER_ACTION_DATA documents as oned writes them
// (docs/oned-protocol.md, actions). The peer that sends them is oned_peer
// (tests/peer/oned_peer.hpp).
#pragma once

#include "tests/peer/oned_peer.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace oneds::test {

// ---- Built programs (paths come from CMake's $<TARGET_FILE:...>) -----------

namespace built {
inline const char *host() { return ONEDS_TEST_HOST_PATH; }
inline const char *testdrv_plugin() { return ONEDS_TEST_TESTDRV_PATH; }
inline const char *restic_plugin() { return ONEDS_TEST_RESTIC_PATH; }
inline const char *fake_one_datastore() { return ONEDS_TEST_FAKE_ONE_DATASTORE_PATH; }
// conf/oned.conf.snippet of the source tree.
inline const char *oned_conf_snippet() { return ONEDS_TEST_ONED_CONF_SNIPPET; }
}  // namespace built

// ---- DS_DRIVER_ACTION_DATA payloads -----------------------------------------

// Base64 as oned writes it (OpenSSL EVP_EncodeBlock: one line, '=' padding).
std::string base64_encode(std::string_view data);
// Strict: nullopt on any character outside the alphabet (line breaks included)
// or on bad length/padding.
std::optional<std::string> base64_decode(std::string_view text);

// What one request's document is made of. The defaults describe an IMAGE
// datastore 100 named "default".
struct action_data {
    std::string ds_mad;
    std::string tm_mad = "dummy";
    int ds_type = 0;  // DATASTORE/TYPE: 0 IMAGE_DS, 1 SYSTEM_DS, 2 FILE_DS, 3 BACKUP_DS
    int ds_id = 100;
    std::string ds_name = "default";
    // A full <IMAGE>...</IMAGE> element written before <DATASTORE> (as oned
    // does); empty for none (MONITOR). image_xml() builds a typical one.
    std::string image;
    // Written after </DATASTORE>, e.g. test_behaviour("sleep:100").
    std::string extra_xml;
};

// The image element oned sends for image id, with an IMAGE/DATASTORE child
// holding the datastore *name* (the trap for relative XPaths).
std::string image_xml(int image_id, const std::string &ds_name = "default", int ds_id = 100);
// <TEST_BEHAVIOUR>b</TEST_BEHAVIOUR>: selects the test plugin's behaviour.
std::string test_behaviour(const std::string &b);
std::string xml_escape(std::string_view text);

std::string action_data_xml(const action_data &d);
// base64(action_data_xml(d)), as oned puts it on the request line.
std::string action_data_payload(const action_data &d);

}  // namespace oneds::test
