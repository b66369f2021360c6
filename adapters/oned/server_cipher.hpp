// oned's server_cipher login tokens (docs/oned-protocol.md#restore-as-the-requesting-user),
// with OpenSSL's libcrypto: how a trusted server user (oned's "serveradmin")
// acts as another user, as OpenNebula's Ruby ServerCipherAuth does.
//
//   cipher auth file  "<server_user>:<password>", the first ':' splits,
//                     the password is the rest of that line
//   key               the first 32 characters of the lower-case hex SHA-256
//                     of the password, used as 32 bytes; iv = its first 16
//   token             AES-256-CBC (PKCS#7 padding) of
//                     "<server_user>:<target_user>:<expiry, Unix time>"
//   session           "<server_user>:<target_user>:<base64 of the token>"
//
// oned keeps the SHA-256 hex of the server user's password, so its driver
// derives the same key from what it stores; it accepts the session while the
// expiry lies in the future and then runs the call as the target user.
//
// Secrets (the password, the key, the session) never go into an error text.
// The buffers this file owns that held the password or the key are zeroed
// (OPENSSL_cleanse) when they go away; a session (valid 120 s) also lives,
// unzeroed, in the XML-RPC client's request buffers for the call's length.
#pragma once

#include "plugin/ports/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace oneds::adapters::oned {

// A string that is zeroed when it is destroyed or assigned over. Not
// copyable, so that no stray copy outlives it.
class secret_string {
public:
    secret_string() = default;
    explicit secret_string(std::string value) : value_(std::move(value)) {}
    secret_string(secret_string &&other) noexcept;
    secret_string &operator=(secret_string &&other) noexcept;
    secret_string(const secret_string &) = delete;
    secret_string &operator=(const secret_string &) = delete;
    ~secret_string();

    const std::string &str() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

private:
    void wipe() noexcept;
    std::string value_;
};

// The lower-case hex SHA-256 of text (what oned stores for a password).
std::string sha256_hex(std::string_view text);

// What a token is made with: the server user and the derived key (the
// password itself is not kept).
class server_cipher {
public:
    // From the password, as the client side does.
    static server_cipher from_password(std::string server_user, std::string_view password);

    // Reads a cipher auth file. Errors name the file and say how to fix it,
    // never what it holds: not_found (missing), permission (unreadable),
    // invalid (empty, no ':', empty user or password).
    static ports::result<server_cipher> from_file(const std::filesystem::path &file);

    const std::string &server_user() const noexcept { return user_; }

    // "<server_user>:<target_user>:<base64 token>", valid until expires_at
    // (Unix time). The result is a secret: wrap it or wipe it.
    std::string session_for(std::string_view target_user, std::int64_t expires_at) const;

    // Raw AES-256-CBC of plain with this key and iv, PKCS#7 padded (for the
    // test vectors).
    std::string encrypt(std::string_view plain) const;

private:
    server_cipher(std::string user, secret_string key) : user_(std::move(user)), key_(std::move(key)) {}
    std::string user_;
    secret_string key_;  // 32 ASCII characters; the iv is the first 16
};

}  // namespace oneds::adapters::oned
