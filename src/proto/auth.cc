#include "proto/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace memkv::proto {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<AuthKey> AuthKey::FromHex(std::string_view hex) {
  AuthKey k;
  if (hex.size() != 2 * k.key_.size()) return errc::bad_auth_key;
  for (size_t i = 0; i < k.key_.size(); ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return errc::bad_auth_key;
    k.key_[i] = static_cast<std::byte>(hi * 16 + lo);
  }
  return k;
}

AuthKey AuthKey::Generate() {
  AuthKey k;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(k.key_.data()),
                 static_cast<int>(k.key_.size())) != 1) {
    // Only at set-up time; there is no safe key without a working generator.
    throw std::runtime_error("OpenSSL RAND_bytes failed: cannot generate an auth key");
  }
  return k;
}

AuthKey AuthKey::Session(const Nonce& client, const Nonce& server) const {
  static constexpr char kDomain[] = "memkv-session-v2";
  std::array<std::byte, sizeof kDomain - 1 + 2 * sizeof(Nonce)> msg;
  std::memcpy(msg.data(), kDomain, sizeof kDomain - 1);
  std::memcpy(msg.data() + sizeof kDomain - 1, client.data(), client.size());
  std::memcpy(msg.data() + sizeof kDomain - 1 + client.size(), server.data(), server.size());
  AuthKey k;
  const Tag t = Hmac(Bytes(msg.data(), msg.size()), {});
  std::memcpy(k.key_.data(), t.data(), t.size());
  return k;
}

Nonce RandomNonce() {
  Nonce n;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed: cannot make a connection nonce");
  return n;
}

std::string AuthKey::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * key_.size());
  for (std::byte b : key_) {
    s.push_back(kDigits[std::to_integer<int>(b) >> 4]);
    s.push_back(kDigits[std::to_integer<int>(b) & 15]);
  }
  return s;
}

Tag AuthKey::Hmac(Bytes a, Bytes b) const {
  // HMAC_CTX is deprecated in OpenSSL 3; EVP_MAC is its replacement. One MAC
  // object is fetched per thread, reused, and freed when the thread ends.
  struct MacHolder {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    ~MacHolder() { EVP_MAC_free(mac); }
  };
  thread_local MacHolder holder;
  EVP_MAC* mac = holder.mac;
  Tag tag{};
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", digest, 0),
      OSSL_PARAM_construct_end(),
  };
  size_t len = 0;
  const bool ok =
      ctx && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key_.data()), key_.size(),
                          params) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(a.data()), a.size()) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(b.data()), b.size()) == 1 &&
      EVP_MAC_final(ctx, reinterpret_cast<unsigned char*>(tag.data()), &len, tag.size()) == 1 &&
      len == tag.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) {
    // Without a working HMAC no frame can be authenticated or trusted.
    std::fputs("memkv: OpenSSL HMAC-SHA256 is unavailable; cannot authenticate frames\n", stderr);
    std::abort();
  }
  return tag;
}

void InitCrypto() { OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr); }

void ReleaseThreadCrypto() { OPENSSL_thread_stop(); }

bool TagsEqual(const Tag& a, const Tag& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace memkv::proto
