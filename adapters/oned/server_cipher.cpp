#include "adapters/oned/server_cipher.hpp"

#include "common/base64.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace oneds::adapters::oned {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t key_length = 32;  // AES-256
constexpr std::size_t iv_length = 16;   // the AES block

void wipe(std::string &s) noexcept {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

struct cipher_ctx_deleter {
    void operator()(EVP_CIPHER_CTX *c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;

// AES-256-CBC with PKCS#7 padding.
std::string aes_256_cbc_encrypt(const std::string &key, std::string_view in) {
    if (key.size() < key_length) throw std::logic_error("server_cipher: key shorter than 32 bytes");
    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) throw std::bad_alloc();
    const auto *k = reinterpret_cast<const unsigned char *>(key.data());
    if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k, k, 1) != 1)
        throw std::runtime_error("server_cipher: AES-256-CBC is not available in libcrypto");
    std::string out(in.size() + 2 * iv_length, '\0');
    int n = 0, tail = 0;
    auto *o = reinterpret_cast<unsigned char *>(out.data());
    const bool ok = EVP_CipherUpdate(ctx.get(), o, &n, reinterpret_cast<const unsigned char *>(in.data()),
                                     static_cast<int>(in.size())) == 1 &&
                    EVP_CipherFinal_ex(ctx.get(), o + n, &tail) == 1;
    if (!ok) {
        wipe(out);
        throw std::runtime_error("server_cipher: AES-256-CBC encryption failed");
    }
    out.resize(static_cast<std::size_t>(n + tail));
    return out;
}

std::string key_from_hex(std::string_view hex) { return std::string(hex.substr(0, std::min(hex.size(), key_length))); }

// The fix, said once for every problem with the file.
std::string file_hint() {
    return "it must hold one line <user>:<password> of oned's server_cipher user (e.g. serveradmin, as "
           "onegate_auth does), be owned by the user the driver runs as (oneadmin) and have mode 600; "
           "another file can be named with one_cipher_auth or $ONE_CIPHER_AUTH";
}

}  // namespace

secret_string::secret_string(secret_string &&other) noexcept : value_(std::move(other.value_)) { other.wipe(); }

secret_string &secret_string::operator=(secret_string &&other) noexcept {
    if (this != &other) {
        wipe();
        value_ = std::move(other.value_);
        other.wipe();
    }
    return *this;
}

secret_string::~secret_string() { wipe(); }

void secret_string::wipe() noexcept { oned::wipe(value_); }

std::string sha256_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("server_cipher: SHA-256 is not available in libcrypto");
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
        hex += digits[digest[i] >> 4];
        hex += digits[digest[i] & 0xf];
    }
    OPENSSL_cleanse(digest, sizeof digest);
    return hex;
}

server_cipher server_cipher::from_password(std::string server_user, std::string_view password) {
    std::string hex = sha256_hex(password);
    server_cipher c(std::move(server_user), secret_string(key_from_hex(hex)));
    wipe(hex);
    return c;
}

ports::result<server_cipher> server_cipher::from_file(const fs::path &file) {
    const std::string name = "oned server_cipher auth file " + file.string();
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);  // a FIFO must not block
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT)
            return ports::error{ports::error_kind::not_found, name + " does not exist: " + file_hint(), 0};
        if (err == ENOTDIR || err == ELOOP || err == ENAMETOOLONG)
            return ports::error{
                ports::error_kind::permission,
                name + " cannot be reached (" + std::generic_category().message(err) + "): " + file_hint(), 0};
        return ports::error{ports::error_kind::permission,
                            name + " cannot be read (" + std::generic_category().message(err) + "): " + file_hint(), 0};
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return ports::error{
            ports::error_kind::invalid,
            name + (S_ISDIR(st.st_mode) ? " is a directory: " : " is not a regular file: ") + file_hint(), 0};
    }
    // Small: the whole file, as the Ruby client reads it; then right-strip.
    constexpr std::size_t max_size = 64 * 1024;
    std::string text;
    text.reserve(max_size + 512);  // never reallocated: no unwiped copy is left behind
    char buf[512];
    bool bad = false;
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) bad = true;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > max_size) {
            bad = true;
            break;
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    ::close(fd);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n' ||
                             text.back() == '\v' || text.back() == '\f' || text.back() == '\0'))
        text.pop_back();
    const auto colon = text.find(':');
    std::string problem;
    if (bad)
        problem = " cannot be read whole (at most 64 KiB)";
    else if (text.empty())
        problem = " is empty";
    else if (colon == std::string::npos)
        problem = " is malformed (no ':' between user and password)";
    else if (colon == 0)
        problem = " is malformed (no user before ':')";
    else if (colon + 1 == text.size())
        problem = " is malformed (no password after ':')";
    else if (text.find('\n') < colon)
        problem = " is malformed (the user name spans lines)";
    if (!problem.empty()) {
        wipe(text);
        return ports::error{bad ? ports::error_kind::io : ports::error_kind::invalid,
                            name + problem + ": " + file_hint(), 0};
    }
    std::string user = text.substr(0, colon);
    // The password is the rest of the line, as OpenNebula's client reads the
    // file (/(.*?):(.*)/, where '.' stops at a line break).
    std::string_view password = std::string_view(text).substr(colon + 1);
    password = password.substr(0, password.find('\n'));
    if (!password.empty() && password.back() == '\r') password.remove_suffix(1);
    auto c = from_password(std::move(user), password);
    wipe(text);
    return c;
}

std::string server_cipher::session_for(std::string_view target_user, std::int64_t expires_at) const {
    std::string plain = user_ + ":" + std::string(target_user) + ":" + std::to_string(expires_at);
    std::string token = encrypt(plain);
    wipe(plain);
    std::string session = user_ + ":" + std::string(target_user) + ":" + common::base64_encode(token);
    wipe(token);
    return session;
}

std::string server_cipher::encrypt(std::string_view plain) const { return aes_256_cbc_encrypt(key_.str(), plain); }

}  // namespace oneds::adapters::oned
