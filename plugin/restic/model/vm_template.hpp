// The VM template a restore creates from the backed-up vm.xml, with the stock
// rules (OpenNebula's TransferManager::BackupRestore#vm_template): TEMPLATE
// merged with USER_TEMPLATE, attributes that only make sense for the old VM
// removed, disks pointed at the restored images, NICs dropped (NO_NIC) or
// stripped of addresses (NO_IP).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace oneds::restic {

struct restore_options {
    std::string name;  // NAME of the template; images are <name>-disk-<id>
    bool no_nic = false;
    bool no_ip = false;
    std::optional<std::string> tpm_state;  // base64 of disk.tpm.0, when the backup has one
};

// vm_xml is the decoded <VM> document. image_ids maps a backed-up disk id to
// the id of the image restored for it. Throws std::runtime_error on a
// malformed document.
std::string restore_vm_template(const std::string &vm_xml, const std::map<std::string, int> &image_ids,
                                const restore_options &opts);

// `"` becomes `\"` and the value is put in double quotes, as oned's template
// parser reads it.
std::string template_value(const std::string &v);

}  // namespace oneds::restic
