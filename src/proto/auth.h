#pragma once
// The shared secret of a deployment (network.auth_key: 64 hex characters)
// and the HMAC-SHA256 computations made with it.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"
#include "proto/wire.h"

namespace memkv::proto {

using Tag = std::array<std::byte, 32>;
// A connection's fresh random contribution, one from each side (Hello).
using Nonce = std::array<std::byte, 32>;

class AuthKey {
 public:
  // Parses 64 hex characters (either case) into a 32-byte key.
  static Result<AuthKey> FromHex(std::string_view hex);
  // 32 random bytes from OpenSSL's generator, for `memkv setup`.
  static AuthKey Generate();

  std::string ToHex() const;

  // The key of one connection: HMAC(key, "memkv-session-v2" ‖ client nonce
  // ‖ server nonce). Every frame after Hello is tagged with it, so a frame
  // recorded on one connection does not verify on another.
  AuthKey Session(const Nonce& client, const Nonce& server) const;

  // HMAC-SHA256 over the concatenation of `a` and `b` (the frame header and
  // the control payload), without copying them together.
  Tag Hmac(Bytes a, Bytes b) const;

 private:
  std::array<std::byte, 32> key_{};
};

// 32 bytes from OpenSSL's generator.
Nonce RandomNonce();

// Constant-time comparison of two tags.
bool TagsEqual(const Tag& a, const Tag& b);

// Initializes OpenSSL now (idempotent). OpenSSL frees its state, including
// each live thread's, from an exit handler registered when it initializes;
// a component whose own exit-time teardown joins threads that used OpenSSL
// calls this before registering that teardown, so the threads are joined
// first (exit handlers run in reverse order).
void InitCrypto();

// Frees OpenSSL's state for the calling thread (its error queue and the
// like) now. A thread that used OpenSSL calls this as it finishes, so that
// nothing of it is left for OpenSSL's exit handler, whatever order threads
// and exit handlers end in.
void ReleaseThreadCrypto();

}  // namespace memkv::proto
