// NonceIssuer: stateless NONCE values for the STUN long-term credential
// mechanism (RFC 8489 section 9.2).
//
// A nonce binds its issue time to the client's transport address with an
// HMAC, so the server keeps no state for a client before it authenticates: a
// spoofed flood of unauthenticated requests costs no memory
// (../shared/reference/security.md, "TURN: protocol hygiene").
//
// Format (all printable, no spaces, quotes or backslashes, 45 characters):
//
//   "obMatJos2"  the RFC 8489 section 9.2 nonce cookie
//   "gAAA"       base64 of the 24-bit security feature set: PASSWORD-ALGORITHMS
//                (bit 0) set, USERNAME-ANONYMITY (bit 1) clear
//   32 chars     base64url (no padding) of 8 bytes big-endian issue time (unix
//                seconds) followed by a 16-byte truncated HMAC-SHA256 tag over
//                the cookie, the time and the client's IP address and port
//
// Thread-safety: Issue() and Check() only read the keys, so they may be called
// from any number of threads at once as long as nobody calls SetKey() at the
// same time. SetKey() needs exclusive access (or one issuer per thread).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/address.h"
#include "base/status.h"

namespace turnkey::auth {

enum class NonceCheck {
  kValid,    // issued by us (current or previous key) to this client, not expired
  kStale,    // issued by us to this client, but older than the lifetime: answer 438
  kInvalid,  // anything else: forged, garbled, other client, from the future
};

class NonceIssuer {
 public:
  using Key = std::array<uint8_t, 32>;

  // The nonce cookie and feature bits every nonce starts with (RFC 8489 9.2).
  static constexpr std::string_view kCookie = "obMatJos2";
  static constexpr std::string_view kFeatureBits = "gAAA";
  // Length of every nonce this class issues.
  static constexpr size_t kNonceLength = 45;
  // How far a nonce's issue time may lie ahead of `now` (clock steps between
  // threads or a small backwards NTP correction) before it counts as forged.
  static constexpr int64_t kMaxFutureSkewSeconds = 5;

  // An issuer with a fresh random key from the OpenSSL CSPRNG; fails only if
  // the RNG fails. `lifetime` must be positive (turn.auth.nonce_lifetime).
  [[nodiscard]] static base::Result<NonceIssuer> Create(std::chrono::seconds lifetime);

  // An issuer with a given key (tests, or a key shared by several processes).
  NonceIssuer(const Key& key, std::chrono::seconds lifetime);

  // Makes `key` the signing key; the former key stays accepted by Check() as a
  // fallback until the next SetKey(), so nonces in flight survive a rotation.
  void SetKey(const Key& key);

  // A nonce for `client` issued at `now_unix_seconds`. Never fails.
  std::string Issue(int64_t now_unix_seconds, const base::SocketAddress& client) const;

  // Classifies a NONCE attribute value received from `client` at `now`.
  // Any byte string is accepted as input; nothing here asserts on it.
  NonceCheck Check(std::string_view nonce, int64_t now_unix_seconds,
                   const base::SocketAddress& client) const {
    return Check(nonce, now_unix_seconds, client, lifetime_);
  }
  // The same with another lifetime (a reloaded turn.auth.nonce_lifetime
  // applies without a new key, so nonces in flight stay valid).
  NonceCheck Check(std::string_view nonce, int64_t now_unix_seconds,
                   const base::SocketAddress& client, std::chrono::seconds lifetime) const;

  std::chrono::seconds lifetime() const { return lifetime_; }

 private:
  static constexpr size_t kTagSize = 16;
  using Tag = std::array<uint8_t, kTagSize>;

  static Tag ComputeTag(const Key& key, uint64_t issued, const base::SocketAddress& client);

  Key key_;
  std::optional<Key> previous_key_;
  std::chrono::seconds lifetime_;
};

}  // namespace turnkey::auth
