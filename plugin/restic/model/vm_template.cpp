#include "plugin/restic/model/vm_template.hpp"

#include "common/strings.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <regex>
#include <set>
#include <stdexcept>

namespace oneds::restic {
namespace {

using vector_attr = std::vector<std::pair<std::string, std::string>>;
using value = std::variant<std::string, vector_attr>;
using attrs = std::vector<std::pair<std::string, value>>;  // repeated keys allowed (DISK, NIC...)

attrs read_section(const pugi::xml_node &section) {
    attrs out;
    for (const auto &child : section.children()) {
        if (child.type() != pugi::node_element) continue;
        bool has_elements = false;
        for (const auto &c : child.children())
            if (c.type() == pugi::node_element) has_elements = true;
        if (!has_elements) {
            out.emplace_back(child.name(), std::string(child.text().as_string()));
            continue;
        }
        vector_attr v;
        for (const auto &c : child.children())
            if (c.type() == pugi::node_element) v.emplace_back(c.name(), c.text().as_string());
        out.emplace_back(child.name(), std::move(v));
    }
    return out;
}

// Hash#merge!: a key of the user template replaces every value of that key.
void merge(attrs &into, const attrs &from) {
    std::set<std::string> keys;
    for (const auto &[k, v] : from) keys.insert(k);
    std::vector<std::pair<std::string, value>> kept;
    // Keys keep the position of their first occurrence, as a Ruby Hash does.
    std::vector<std::string> order;
    for (const auto &[k, v] : into)
        if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
    for (const auto &[k, v] : from)
        if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
    attrs out;
    for (const auto &k : order) {
        const attrs &src = keys.contains(k) ? from : into;
        for (const auto &[kk, v] : src)
            if (kk == k) out.emplace_back(kk, v);
    }
    into = std::move(out);
}

using matcher = std::variant<std::string, std::regex>;

bool matches(const std::string &key, const matcher &m) {
    if (const auto *s = std::get_if<std::string>(&m)) return key == *s;
    return std::regex_search(key, std::get<std::regex>(m));
}

// Removes the listed keys from every vector attribute named section (or from
// the top level when section is empty).
void remove_keys(attrs &a, const std::string &section, const std::vector<matcher> &list) {
    if (section.empty()) {
        a.erase(std::remove_if(a.begin(), a.end(),
                               [&](const auto &kv) {
                                   return std::any_of(list.begin(), list.end(),
                                                      [&](const matcher &m) { return matches(kv.first, m); });
                               }),
                a.end());
        return;
    }
    for (auto &[k, v] : a) {
        if (k != section) continue;
        if (auto *vec = std::get_if<vector_attr>(&v))
            vec->erase(std::remove_if(vec->begin(), vec->end(),
                                      [&](const auto &kv) {
                                          return std::any_of(list.begin(), list.end(),
                                                             [&](const matcher &m) { return matches(kv.first, m); });
                                      }),
                       vec->end());
    }
}

std::vector<matcher> names(std::initializer_list<const char *> l) {
    std::vector<matcher> out;
    for (const char *s : l) out.emplace_back(std::string(s));
    return out;
}

std::string *find(vector_attr &v, const std::string &key) {
    for (auto &[k, val] : v)
        if (k == key) return &val;
    return nullptr;
}

void erase_key(vector_attr &v, const std::string &key) {
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto &kv) { return kv.first == key; }), v.end());
}

}  // namespace

std::string template_value(const std::string &v) {
    std::string out = "\"";
    // oned's template lexer reads \" as a quote inside the value and keeps
    // every other backslash; a value that ends in a backslash therefore
    // cannot be written at all ("...\" would not end). Its trailing
    // backslashes are dropped rather than breaking the whole template.
    std::string_view body = v;
    while (!body.empty() && body.back() == '\\') body.remove_suffix(1);
    for (char c : body) {
        if (c == '"')
            out += "\\\"";
        else
            out += c;
    }
    return out + "\"";
}

std::string restore_vm_template(const std::string &vm_xml, const std::map<std::string, int> &image_ids,
                                const restore_options &opts) {
    pugi::xml_document doc;
    if (!doc.load_buffer(vm_xml.data(), vm_xml.size()) || !doc.child("VM"))
        throw std::runtime_error("the backup's vm.xml is not a VM document");
    attrs t = read_section(doc.child("VM").child("TEMPLATE"));
    merge(t, read_section(doc.child("VM").child("USER_TEMPLATE")));

    const auto disk_list = names({"ALLOW_ORPHANS",
                                  "CLONE",
                                  "CLONE_TARGET",
                                  "CLUSTER_ID",
                                  "DATASTORE",
                                  "DATASTORE_ID",
                                  "DISK_SNAPSHOT_TOTAL_SIZE",
                                  "DISK_TYPE",
                                  "DRIVER",
                                  "IMAGE",
                                  "IMAGE_STATE",
                                  "IMAGE_UID",
                                  "IMAGE_UNAME",
                                  "LN_TARGET",
                                  "OPENNEBULA_MANAGED",
                                  "ORIGINAL_SIZE",
                                  "PERSISTENT",
                                  "READONLY",
                                  "SAVE",
                                  "SOURCE",
                                  "TARGET",
                                  "TM_MAD",
                                  "FORMAT"});
    auto nic_list = names({"AR_ID", "BRIDGE", "BRIDGE_TYPE", "CLUSTER_ID", "NAME", "NETWORK_ID", "NIC_ID", "TARGET",
                           "VLAN_ID", "VN_MAD", "VLAN_TAGGED_ID", "PHYDEV"});
    if (opts.no_ip)
        for (const char *k : {"IP", "IP6", "IP6_ULA", "IP6_GLOBAL", "MAC"}) nic_list.emplace_back(std::string(k));
    const auto pci_common = names({"ADDRESS", "BUS", "DOMAIN", "FUNCTION", "NUMA_NODE", "PCI_ID", "SLOT", "VM_ADDRESS",
                                   "VM_BUS", "VM_DOMAIN", "VM_FUNCTION", "VM_SLOT"});
    auto pci_manual = nic_list;
    pci_manual.insert(pci_manual.end(), pci_common.begin(), pci_common.end());
    pci_manual.emplace_back(std::string("SHORT_ADDRESS"));

    remove_keys(t, "DISK", disk_list);
    remove_keys(t, "",
                names({"AUTOMATIC_DS_REQUIREMENTS", "AUTOMATIC_NIC_REQUIREMENTS", "AUTOMATIC_REQUIREMENTS", "VMID",
                       "TEMPLATE_ID", "TM_MAD_SYSTEM", "SECURITY_GROUP_RULE", "ERROR"}));
    remove_keys(t, "CONTEXT", {std::string("DISK_ID"), std::regex("ETH[0-9]?"), std::regex("PCI[0-9]?")});
    remove_keys(t, "GRAPHICS", names({"PORT"}));
    remove_keys(t, "NUMA_NODE", names({"CPUS", "MEMORY_NODE_ID", "NODE_ID"}));
    remove_keys(t, "OS", names({"UUID"}));
    remove_keys(t, "PCI", pci_manual);

    for (auto &[k, v] : t) {
        if (k != "DISK") continue;
        auto *d = std::get_if<vector_attr>(&v);
        if (d == nullptr) continue;
        const std::string *idp = find(*d, "DISK_ID");
        if (idp == nullptr) continue;
        const std::string id = *idp;
        const std::string *typep = find(*d, "TYPE");
        const std::string type = typep != nullptr ? common::to_upper(*typep) : std::string();
        erase_key(*d, "DISK_ID");
        if (type == "FS") {
            erase_key(*d, "IMAGE_ID");              // a volatile disk
            if (!image_ids.contains(id)) continue;  // not in the backup: keep TYPE and SIZE
        }
        erase_key(*d, "TYPE");
        erase_key(*d, "SIZE");
        if (type == "CDROM" || type == "RBD_CDROM") continue;  // keeps its original image
        const auto it = image_ids.find(id);
        if (it == image_ids.end()) continue;
        erase_key(*d, "IMAGE_ID");
        d->emplace_back("IMAGE_ID", std::to_string(it->second));
    }

    if (opts.no_nic) {
        t.erase(std::remove_if(t.begin(), t.end(), [](const auto &kv) { return kv.first == "NIC"; }), t.end());
    } else {
        remove_keys(t, "NIC", nic_list);
        for (auto &[k, v] : t) {
            if (k != "NIC") continue;
            auto *n = std::get_if<vector_attr>(&v);
            if (n == nullptr) continue;
            // A NIC can only have one of IP / IP6 / MAC.
            if (find(*n, "IP") != nullptr) {
                for (const char *x : {"MAC", "IP6", "IP6_ULA", "IP6_GLOBAL"}) erase_key(*n, x);
            } else if (find(*n, "IP6") != nullptr) {
                erase_key(*n, "MAC");
            }
        }
    }

    // Empty values and empty vector attributes go.
    t.erase(std::remove_if(t.begin(), t.end(),
                           [](const auto &kv) {
                               if (const auto *s = std::get_if<std::string>(&kv.second)) return s->empty();
                               return std::get<vector_attr>(kv.second).empty();
                           }),
            t.end());
    t.erase(std::remove_if(t.begin(), t.end(), [](const auto &kv) { return kv.first == "NAME"; }), t.end());
    t.emplace_back("NAME", opts.name);
    if (opts.tpm_state) t.emplace_back("TPM_STATE", *opts.tpm_state);

    std::string out;
    for (const auto &[k, v] : t) {
        if (const auto *s = std::get_if<std::string>(&v)) {
            out += k + "= " + template_value(*s) + "\n";
            continue;
        }
        std::string body;
        for (const auto &[kk, vv] : std::get<vector_attr>(v)) {
            if (vv.empty()) continue;
            body += (body.empty() ? "" : ",\n") + std::string("    ") + kk + "=" + template_value(vv);
        }
        out += k + "=[\n" + body + "\n]\n";
    }
    return out;
}

}  // namespace oneds::restic
