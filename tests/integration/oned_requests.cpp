#include "tests/integration/oned_requests.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <sstream>

namespace oneds::test {

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    for (char c : text)
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '/' && c != '=') return std::nullopt;
    std::string out(text.size() / 4 * 3 + 1, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts the bytes the padding stands for.
    std::size_t len = static_cast<std::size_t>(n);
    if (!text.empty() && text.back() == '=') --len;
    if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string image_xml(int image_id, const std::string &ds_name, int ds_id) {
    std::ostringstream x;
    x << "<IMAGE><ID>" << image_id << "</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME>"
      << "<GNAME>oneadmin</GNAME><NAME>img-" << image_id << "</NAME>"
      << "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A></PERMISSIONS>"
      << "<TYPE>0</TYPE><DISK_TYPE>0</DISK_TYPE><PERSISTENT>0</PERSISTENT>"
      << "<REGTIME>1700000000</REGTIME><MODTIME>1700000000</MODTIME>"
      << "<SOURCE><![CDATA[]]></SOURCE><PATH><![CDATA[/tmp/a.qcow2]]></PATH>"
      << "<FORMAT><![CDATA[qcow2]]></FORMAT><FS/><SIZE>1024</SIZE><STATE>4</STATE>"
      << "<PREV_STATE>4</PREV_STATE><RUNNING_VMS>0</RUNNING_VMS><CLONING_OPS>0</CLONING_OPS>"
      << "<CLONING_ID>-1</CLONING_ID><TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT>"
      << "<DATASTORE_ID>" << ds_id << "</DATASTORE_ID><DATASTORE>" << xml_escape(ds_name) << "</DATASTORE>"
      << "<VMS/><CLONES/><APP_CLONES/><TEMPLATE/><SNAPSHOTS/><BACKUP_INCREMENTS/></IMAGE>";
    return x.str();
}

std::string test_behaviour(const std::string &b) { return "<TEST_BEHAVIOUR>" + xml_escape(b) + "</TEST_BEHAVIOUR>"; }

std::string action_data_xml(const action_data &d) {
    std::ostringstream x;
    x << "<DS_DRIVER_ACTION_DATA>" << d.image << "<DATASTORE><ID>" << d.ds_id << "</ID>"
      << "<UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
      << "<NAME>" << xml_escape(d.ds_name) << "</NAME>"
      << "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A></PERMISSIONS>"
      << "<DS_MAD><![CDATA[" << d.ds_mad << "]]></DS_MAD>"
      << "<TM_MAD><![CDATA[" << d.tm_mad << "]]></TM_MAD>"
      << "<BASE_PATH><![CDATA[/var/lib/one//datastores/" << d.ds_id << "]]></BASE_PATH>"
      << "<TYPE>" << d.ds_type << "</TYPE><DISK_TYPE>0</DISK_TYPE><STATE>0</STATE>"
      << "<CLUSTERS><ID>0</ID></CLUSTERS><TOTAL_MB>0</TOTAL_MB><FREE_MB>0</FREE_MB><USED_MB>0</USED_MB>"
      << "<IMAGES/><TEMPLATE><DS_MAD><![CDATA[" << d.ds_mad << "]]></DS_MAD>"
      << "<TM_MAD><![CDATA[" << d.tm_mad << "]]></TM_MAD></TEMPLATE></DATASTORE>" << d.extra_xml
      << "</DS_DRIVER_ACTION_DATA>";
    return x.str();
}

std::string action_data_payload(const action_data &d) { return base64_encode(action_data_xml(d)); }

}  // namespace oneds::test
