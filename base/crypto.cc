#include "base/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace turnkey::base {

namespace {

template <size_t N>
std::array<uint8_t, N> Hmac(const EVP_MD* md, ByteView key, ByteView data) {
  std::array<uint8_t, N> out{};
  unsigned int len = 0;
  // HMAC() with a caller buffer neither allocates a context we must free nor
  // fails for valid digests; a failure would leave `out` zeroed, which no
  // verifier accepts.
  // OpenSSL 3 refuses a NULL key pointer even with length 0 (an empty span's
  // data() may be NULL) and the output would stay zeroed, which a caller
  // comparing two computed MACs would accept; pass a valid pointer instead.
  static constexpr uint8_t kEmpty[1] = {0};
  const uint8_t* key_ptr = key.empty() ? kEmpty : key.data();
  const uint8_t* data_ptr = data.empty() ? kEmpty : data.data();
  HMAC(md, key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), out.data(), &len);
  return out;
}

template <size_t N>
std::array<uint8_t, N> Digest(const EVP_MD* md, ByteView data) {
  std::array<uint8_t, N> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  return out;
}

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Encode64(ByteView data, const char* alphabet, bool pad) {
  // Exactly the output's length: an 11-byte id (15 characters) then stays in
  // std::string's inline buffer, with no allocation behind it.
  std::string out;
  out.reserve(pad ? Base64EncodedSize(data.size()) : (data.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = uint32_t{data[i]} << 16 | uint32_t{data[i + 1]} << 8 | data[i + 2];
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{data[i]} << 16 | (rest == 2 ? uint32_t{data[i + 1]} << 8 : 0);
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (rest == 2) {
      out.push_back(alphabet[(v >> 6) & 63]);
    } else if (pad) {
      out.push_back('=');
    }
    if (pad) {
      out.push_back('=');
    }
  }
  return out;
}

int Value64(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

// `padding_optional` applies to the standard form only; the URL form never
// has padding.
std::optional<Bytes> Decode64(std::string_view text, bool url, bool padding_optional) {
  if (!url && text.size() % 4 != 0 && !padding_optional) {
    return std::nullopt;
  }
  // Padded text is a multiple of 4 long; text that is not has no '=' (it is
  // refused as a bad character below).
  if (!url && text.size() % 4 == 0) {
    size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') {
      ++pad;
    }
    text.remove_suffix(pad);
  }
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  Bytes out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Value64(c, url);
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  // Leftover bits must be zero, so every byte string has one encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

Sha1Digest HmacSha1(ByteView key, ByteView data) { return Hmac<20>(EVP_sha1(), key, data); }
Sha256Digest HmacSha256(ByteView key, ByteView data) { return Hmac<32>(EVP_sha256(), key, data); }
Md5Digest Md5(ByteView data) { return Digest<16>(EVP_md5(), data); }
Sha1Digest Sha1(ByteView data) { return Digest<20>(EVP_sha1(), data); }
Sha256Digest Sha256(ByteView data) { return Digest<32>(EVP_sha256(), data); }

uint32_t Crc32(ByteView data, uint32_t seed) {
  uint32_t c = seed ^ 0xFFFFFFFFu;
  for (uint8_t b : data) {
    c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  }
  return c ^ 0xFFFFFFFFu;
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// Small requests (ids, nonces) are served from a per-thread block of CSPRNG
// output: RAND_bytes costs the same few microseconds (locks, the provider
// layers, a getpid() for its fork check) for 10 bytes as for 512, and a call
// id is made on every call. Bytes are handed out once and wiped as they go.
constexpr size_t kPoolBytes = 512;
constexpr size_t kPooledMax = 64;

// Bumped in a forked child, whose copy of the pool the parent also holds.
std::atomic<uint64_t> g_fork_generation{0};

void OnForkChild() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct RandomPool {
  std::array<uint8_t, kPoolBytes> bytes{};
  size_t used = kPoolBytes;  // nothing left
  uint64_t generation = 0;
  ~RandomPool() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

}  // namespace

bool RandomBytes(MutableByteView out) {
  if (out.empty()) {
    return true;
  }
  if (out.size() > kPooledMax) {
    return RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
  }
  [[maybe_unused]] static const bool fork_handler =
      pthread_atfork(nullptr, nullptr, &OnForkChild) == 0;
  thread_local RandomPool pool;
  const uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
  if (pool.generation != generation) {
    pool.generation = generation;
    pool.used = kPoolBytes;
  }
  if (kPoolBytes - pool.used < out.size()) {
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(kPoolBytes)) != 1) {
      pool.used = kPoolBytes;
      return false;
    }
    pool.used = 0;
  }
  uint8_t* take = pool.bytes.data() + pool.used;
  std::memcpy(out.data(), take, out.size());
  OPENSSL_cleanse(take, out.size());
  pool.used += out.size();
  return true;
}

std::string RandomHex(size_t n) {
  Bytes b(n);
  if (!RandomBytes(b)) {
    std::abort();  // No randomness means no safe secrets: stop rather than go on.
  }
  return HexEncode(b);
}

std::string TimeOrderedId(int64_t unix_ms) {
  std::array<uint8_t, 16> b{};
  const auto ms = static_cast<uint64_t>(unix_ms);
  for (int i = 0; i < 6; ++i) {
    b[static_cast<size_t>(i)] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  }
  if (!RandomBytes(MutableByteView(b).subspan(6))) {
    std::abort();
  }
  // Within one millisecond the ids of this process ascend too (calls made
  // in the same millisecond list in the order they were made): the random
  // part is the previous one's plus a random step below 2^32. Should that
  // overflow, the fresh random part stays.
  static std::mutex mutex;
  static uint64_t last_ms = 0;
  static std::array<uint8_t, 10> last_tail{};
  std::lock_guard lock(mutex);
  if (ms == last_ms) {
    std::array<uint8_t, 10> next = last_tail;
    uint64_t carry = (static_cast<uint64_t>(LoadBe32(b.data() + 6)) | 1);
    for (size_t i = next.size(); i-- > 0 && carry != 0;) {
      carry += next[i];
      next[i] = static_cast<uint8_t>(carry);
      carry >>= 8;
    }
    if (carry == 0) {
      std::copy(next.begin(), next.end(), b.begin() + 6);
    }
  }
  last_ms = ms;
  std::copy(b.begin() + 6, b.end(), last_tail.begin());
  return HexEncode(b);
}

uint64_t RandomUint64() {
  std::array<uint8_t, 8> b{};
  if (!RandomBytes(b)) {
    std::abort();
  }
  return LoadBe64(b.data());
}

std::string Base64Encode(ByteView data) { return Encode64(data, kB64, true); }
std::optional<Bytes> Base64Decode(std::string_view text, Base64Padding padding) {
  return Decode64(text, false, padding == Base64Padding::kOptional);
}
std::string Base64UrlEncode(ByteView data) { return Encode64(data, kB64Url, false); }
std::optional<Bytes> Base64UrlDecode(std::string_view text) { return Decode64(text, true, false); }

}  // namespace turnkey::base
