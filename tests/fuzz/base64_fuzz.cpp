// base64 (common/base64.hpp): decoding arbitrary text never crashes; what
// decodes re-encodes and decodes to the same bytes; encoding round-trips.
#include "common/base64.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace oneds::common;
    const std::string_view in(reinterpret_cast<const char *>(data), size);

    const auto encoded = base64_encode(in);
    FUZZ_CHECK(encoded.size() == 4 * ((size + 2) / 3));
    FUZZ_CHECK(encoded.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
               std::string::npos);
    const auto back = base64_decode(encoded);
    FUZZ_CHECK(back && *back == in);

    if (const auto decoded = base64_decode(in)) {
        FUZZ_CHECK(decoded->size() <= size / 4 * 3);
        const auto again = base64_decode(base64_encode(*decoded));
        FUZZ_CHECK(again && *again == *decoded);
    }
    return 0;
}
