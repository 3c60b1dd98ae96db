#include "auth/nonce.h"

#include <utility>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {
namespace {

// 8 bytes of issue time plus the truncated tag, base64url without padding.
constexpr size_t kTimeSize = 8;
constexpr size_t kBodyBytes = kTimeSize + 16;
constexpr size_t kBodyChars = (kBodyBytes * 8 + 5) / 6;
constexpr size_t kPrefixSize = NonceIssuer::kCookie.size() + NonceIssuer::kFeatureBits.size();
static_assert(kPrefixSize + kBodyChars == NonceIssuer::kNonceLength);
// RFC 8489 section 14.10: a NONCE is fewer than 128 characters.
static_assert(NonceIssuer::kNonceLength < 128);

// Separates this MAC's inputs from any other use of the same key.
constexpr std::string_view kDomain = "turnkey nonce v1";

}  // namespace

base::Result<NonceIssuer> NonceIssuer::Create(std::chrono::seconds lifetime) {
  if (lifetime.count() <= 0) {
    return base::InvalidArgument("nonce lifetime must be positive");
  }
  Key key{};
  if (!base::RandomBytes(key)) {
    return base::Internal("no randomness for the nonce key");
  }
  return NonceIssuer(key, lifetime);
}

NonceIssuer::NonceIssuer(const Key& key, std::chrono::seconds lifetime)
    : key_(key), lifetime_(lifetime) {}

void NonceIssuer::SetKey(const Key& key) { previous_key_ = std::exchange(key_, key); }

NonceIssuer::Tag NonceIssuer::ComputeTag(const Key& key, uint64_t issued,
                                         const base::SocketAddress& client) {
  // MAC input: domain | cookie and feature bits | time | family | address | port.
  // The feature bits are covered so a downgrade of them (RFC 8489 section 9.2.1,
  // bid-down protection) is a forgery, not a different valid nonce.
  std::array<uint8_t, kDomain.size() + kPrefixSize + kTimeSize + 1 + 16 + 2> input{};
  uint8_t* p = input.data();
  for (char c : kDomain) {
    *p++ = static_cast<uint8_t>(c);
  }
  for (char c : kCookie) {
    *p++ = static_cast<uint8_t>(c);
  }
  for (char c : kFeatureBits) {
    *p++ = static_cast<uint8_t>(c);
  }
  base::StoreBe64(p, issued);
  p += kTimeSize;
  *p++ = static_cast<uint8_t>(client.family());
  // Always 16 address bytes (IPv4 zero-padded); the family byte keeps an IPv4
  // address distinct from an IPv6 one with the same leading bytes.
  for (size_t i = 0; i < client.size(); ++i) {
    p[i] = client.bytes()[i];
  }
  p += 16;
  base::StoreBe16(p, client.port());

  const base::Sha256Digest mac = base::HmacSha256(key, input);
  Tag tag{};
  for (size_t i = 0; i < kTagSize; ++i) {
    tag[i] = mac[i];
  }
  return tag;
}

std::string NonceIssuer::Issue(int64_t now_unix_seconds, const base::SocketAddress& client) const {
  const auto issued = static_cast<uint64_t>(now_unix_seconds);
  const Tag tag = ComputeTag(key_, issued, client);
  std::array<uint8_t, kBodyBytes> body{};
  base::StoreBe64(body.data(), issued);
  for (size_t i = 0; i < kTagSize; ++i) {
    body[kTimeSize + i] = tag[i];
  }
  std::string nonce;
  nonce.reserve(kNonceLength);
  nonce.append(kCookie);
  nonce.append(kFeatureBits);
  nonce.append(base::Base64UrlEncode(body));
  return nonce;
}

NonceCheck NonceIssuer::Check(std::string_view nonce, int64_t now_unix_seconds,
                              const base::SocketAddress& client,
                              std::chrono::seconds lifetime) const {
  // Everything we issue has one fixed length and prefix; reject other input
  // before decoding so garbage costs almost nothing.
  if (nonce.size() != kNonceLength || !nonce.starts_with(kCookie) ||
      nonce.substr(kCookie.size(), kFeatureBits.size()) != kFeatureBits) {
    return NonceCheck::kInvalid;
  }
  const std::optional<base::Bytes> body = base::Base64UrlDecode(nonce.substr(kPrefixSize));
  if (!body || body->size() != kBodyBytes) {
    return NonceCheck::kInvalid;
  }
  const uint64_t issued = base::LoadBe64(body->data());
  const base::ByteView received_tag(body->data() + kTimeSize, kTagSize);

  bool authentic = base::ConstantTimeEqual(received_tag, ComputeTag(key_, issued, client));
  if (!authentic && previous_key_) {
    authentic = base::ConstantTimeEqual(received_tag, ComputeTag(*previous_key_, issued, client));
  }
  if (!authentic) {
    return NonceCheck::kInvalid;
  }

  // The time is authentic here, but compare in a wide type anyway: `now` comes
  // from the caller and either value may sit near the int64 limits.
  const auto issued_at = static_cast<__int128>(static_cast<int64_t>(issued));
  const auto now = static_cast<__int128>(now_unix_seconds);
  if (issued_at > now + kMaxFutureSkewSeconds) {
    return NonceCheck::kInvalid;
  }
  // RFC 8489 section 9.2.4: an expired nonce gets 438 (Stale Nonce) and a new one.
  if (now - issued_at > lifetime.count()) {
    return NonceCheck::kStale;
  }
  return NonceCheck::kValid;
}

}  // namespace turnkey::auth
