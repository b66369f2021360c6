// Lets Boost.Test print the port's enums in failed assertions.
#pragma once

#include "plugin/ports/result.hpp"

#include <ostream>

namespace oneds::ports {

inline std::ostream &boost_test_print_type(std::ostream &o, error_kind k) {
    static const char *const names[] = {"not_found", "permission",  "host_key",  "unreachable",
                                        "invalid",   "unsupported", "cancelled", "io"};
    const auto i = static_cast<unsigned>(k);
    return i < sizeof names / sizeof *names ? o << names[i] : o << "error_kind(" << i << ")";
}

}  // namespace oneds::ports
