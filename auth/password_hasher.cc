#include "auth/password_hasher.h"

#include <sodium.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {

namespace {

constexpr std::string_view kArgon2idPrefix = crypto_pwhash_argon2id_STRPREFIX;

// sodium_init() picks the fastest implementations and seeds the RNG; it must
// run before any other libsodium call. A function-local static runs it once,
// race-free, whichever thread gets here first.
bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

base::Status CheckPassword(std::string_view password) {
  if (password.empty()) {
    return base::InvalidArgument("password is empty");
  }
  if (password.size() > PasswordHasher::kMaxPasswordBytes) {
    return base::InvalidArgument("password is longer than " +
                                 std::to_string(PasswordHasher::kMaxPasswordBytes) + " bytes");
  }
  return base::Ok();
}

// A stored string as libsodium wants it: NUL-terminated and shorter than
// crypto_pwhash_argon2id_STRBYTES. nullopt for anything that cannot be an
// argon2id PHC string we made.
std::optional<std::string> AsStoredHash(std::string_view stored) {
  if (!stored.starts_with(kArgon2idPrefix) || stored.size() >= crypto_pwhash_argon2id_STRBYTES ||
      stored.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  return std::string(stored);
}

base::Result<std::string> HashWith(const PasswordHashOptions& options, std::string_view password) {
  std::array<char, crypto_pwhash_argon2id_STRBYTES> out{};
  if (crypto_pwhash_argon2id_str(out.data(), password.data(), password.size(), options.passes,
                                 options.memory_bytes) != 0) {
    // libsodium fails here only when it cannot allocate the memory.
    return base::MakeError(base::ErrorCode::kResourceExhausted,
                           "argon2id could not allocate its memory");
  }
  return std::string(out.data());
}

}  // namespace

base::Result<PasswordHasher> PasswordHasher::Create(PasswordHashOptions options) {
  if (options.passes < kMinPasses || options.passes > crypto_pwhash_argon2id_OPSLIMIT_MAX) {
    return base::InvalidArgument("argon2id passes must be between " + std::to_string(kMinPasses) +
                                 " and " + std::to_string(crypto_pwhash_argon2id_OPSLIMIT_MAX));
  }
  if (options.memory_bytes < kMinMemoryBytes || options.memory_bytes > kMaxMemoryBytes) {
    return base::InvalidArgument("argon2id memory must be between 19 MiB and 4 GiB");
  }
  if (!SodiumReady()) {
    return base::Internal("libsodium failed to initialise");
  }
  // The dummy password is random and thrown away: nobody can log in with it,
  // and it is the same length as a typical password.
  std::array<uint8_t, 16> secret{};
  if (!base::RandomBytes(secret)) {
    return base::Internal("random number generator failed");
  }
  const std::string dummy_password = base::HexEncode(secret);
  auto dummy = HashWith(options, dummy_password);
  if (!dummy) {
    return std::unexpected(std::move(dummy.error()));
  }
  return PasswordHasher(options, std::move(*dummy));
}

base::Result<std::string> PasswordHasher::Hash(std::string_view password) const {
  if (auto ok = CheckPassword(password); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  return HashWith(options_, password);
}

base::Result<bool> PasswordHasher::Verify(std::string_view password,
                                          std::string_view stored) const {
  if (auto ok = CheckPassword(password); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  const std::optional<std::string> hash = AsStoredHash(stored);
  // needs_rehash parses the whole PHC string without hashing and reports -1
  // when it is malformed; verify would only say "no match" for that.
  if (!hash || crypto_pwhash_argon2id_str_needs_rehash(hash->c_str(), options_.passes,
                                                       options_.memory_bytes) < 0) {
    return base::Internal("stored password hash is not an argon2id string");
  }
  return crypto_pwhash_argon2id_str_verify(hash->c_str(), password.data(), password.size()) == 0;
}

void PasswordHasher::DummyVerify(std::string_view password) const {
  // The password only feeds the first hash block, so its value and length
  // barely change the time; cut it so a huge one costs nothing extra.
  static constexpr char kFallback[] = "x";
  if (password.empty()) {
    password = kFallback;
  }
  password = password.substr(0, kMaxPasswordBytes);
  // Always false: nobody knows the dummy password.
  [[maybe_unused]] const int result =
      crypto_pwhash_argon2id_str_verify(dummy_hash_.c_str(), password.data(), password.size());
}

bool PasswordHasher::NeedsRehash(std::string_view stored) const {
  const std::optional<std::string> hash = AsStoredHash(stored);
  if (!hash) {
    return true;
  }
  return crypto_pwhash_argon2id_str_needs_rehash(hash->c_str(), options_.passes,
                                                 options_.memory_bytes) != 0;
}

}  // namespace turnkey::auth
