// PasswordHasher: argon2id password hashes (libsodium crypto_pwhash, RFC 9106).
//
// Hashes are PHC strings ("$argon2id$v=19$m=...,t=...,p=1$salt$hash") that
// carry their own salt and cost, so old hashes keep verifying after the cost
// is raised; NeedsRehash() tells the caller when to store a fresh one after a
// successful login.
//
// Cost: every Hash() / Verify() / DummyVerify() takes `memory_bytes` of RAM
// and roughly 30-100 ms of one CPU at the defaults. Call them on work-queue
// threads, never on an event loop; the queue's size bounds the memory used
// (threads x memory_bytes).
//
// Thread-safety: immutable after Create(); every method may be called from
// any number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace turnkey::auth {

// Argon2id cost. The floors are the OWASP minimum for argon2id (19 MiB, 2
// passes, parallelism 1, which is all libsodium offers).
struct PasswordHashOptions {
  // Passes over memory (argon2 "t"). >= 2. Default 2.
  uint64_t passes = 2;
  // Memory per hash, bytes (argon2 "m"). >= 19 MiB, <= 4 GiB. Default 19 MiB.
  size_t memory_bytes = size_t{19} * 1024 * 1024;
};

class PasswordHasher {
 public:
  // Longest accepted password, bytes. Longer ones are refused before any
  // hashing, so a huge body cannot buy seconds of CPU.
  static constexpr size_t kMaxPasswordBytes = 1024;
  static constexpr uint64_t kMinPasses = 2;
  static constexpr size_t kMinMemoryBytes = size_t{19} * 1024 * 1024;
  static constexpr size_t kMaxMemoryBytes = size_t{4} * 1024 * 1024 * 1024;

  // Initialises libsodium (once per process), checks `options` against the
  // floors above and precomputes the hash DummyVerify() checks against, so
  // Create() itself costs one hash. kInvalidArgument for options out of range,
  // kInternal if libsodium cannot start, kResourceExhausted if the dummy hash
  // cannot get its memory.
  [[nodiscard]] static base::Result<PasswordHasher> Create(PasswordHashOptions options = {});

  // A PHC string for `password`, hashed with a fresh random salt at the
  // configured cost. kInvalidArgument ("password ...") if `password` is empty
  // or longer than kMaxPasswordBytes; kResourceExhausted if the memory could
  // not be had.
  [[nodiscard]] base::Result<std::string> Hash(std::string_view password) const;

  // Whether `password` matches `stored`. Comparison is constant-time inside
  // libsodium. kInvalidArgument for an empty or too-long `password` (checked
  // before any hashing); kInternal if `stored` is not an argon2id PHC string
  // (a corrupt row, not a wrong password).
  [[nodiscard]] base::Result<bool> Verify(std::string_view password, std::string_view stored) const;

  // Does the work of one Verify() at the configured cost against a hash of a
  // random password nobody knows, and ignores the result. Call it when the
  // account does not exist, so an unknown user costs about the same time as a
  // wrong password. `password` is what the client sent (cut to
  // kMaxPasswordBytes; its value does not matter).
  void DummyVerify(std::string_view password) const;

  // True when `stored` was not made with this hasher's cost (or is not an
  // argon2id string at all): hash the password again after a successful
  // Verify() and store the new string.
  bool NeedsRehash(std::string_view stored) const;

  const PasswordHashOptions& options() const { return options_; }

 private:
  PasswordHasher(PasswordHashOptions options, std::string dummy_hash)
      : options_(options), dummy_hash_(std::move(dummy_hash)) {}

  PasswordHashOptions options_;
  std::string dummy_hash_;
};

}  // namespace turnkey::auth
