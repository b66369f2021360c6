// Words that a shell would change if the quoting let it: the round-trip tests
// send them through a real shell (locally and through sshd) and expect them
// back byte for byte.
#pragma once

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace oneds::test {

inline std::vector<std::string> hostile_words() {
    return {
        "plain",
        "two words",
        "tab\there",
        "it's",
        "'",
        "''",
        "'\\''",
        "\"double\"",
        "\"",
        "$HOME",
        "${HOME}",
        "$(id)",
        "`id`",
        "line\nbreak",
        "\n",
        "trailing newline\n",
        "a;b",
        "; rm -rf /tmp/oneds-never",
        "a && b",
        "a || b",
        "a | b",
        "*",
        "/*",
        "?",
        "[a-z]",
        "~",
        "~root",
        "\\",
        "back\\slash\\n",
        "",
        " ",
        "  leading and trailing  ",
        "-n",
        "-rf",
        "--",
        "-",
        "%s%d%%",
        "!",
        "!!",
        "#comment",
        "a#b",
        "<in",
        ">out",
        "2>&1",
        "&",
        "(sub)",
        "{brace,expansion}",
        "x=1",
        "\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80",  // ä€😀
        "\xff\xfe invalid utf-8",
        "\x01\x1b[31mcontrol\x7f",
        "\r\n",
    };
}

// The words of printf '%s\0' output, checking that it ends with a NUL.
inline std::vector<std::string> split_nul(const std::string &out) {
    std::vector<std::string> words;
    std::string::size_type start = 0;
    for (auto end = out.find('\0'); end != std::string::npos; end = out.find('\0', start)) {
        words.push_back(out.substr(start, end - start));
        start = end + 1;
    }
    BOOST_TEST(start == out.size(), "output does not end with NUL");
    return words;
}

}  // namespace oneds::test
