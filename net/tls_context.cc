#include "net/tls_context.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string_view>
#include <utility>

namespace turnkey::net {

namespace {

// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites are
// all AEAD with (EC)DHE and keep OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

struct CtxOwner {
  SSL_CTX* ctx;
  ~CtxOwner() {
    if (ctx != nullptr) {
      SSL_CTX_free(ctx);
    }
  }
  SSL_CTX* Release() { return std::exchange(ctx, nullptr); }
};

// The same policy over DTLS: DTLS 1.2 is the DTLS of TLS 1.2 (RFC 6347;
// OpenSSL 3.0 has no DTLS 1.3), so `minimum` is DTLS1_2_VERSION there.
base::Status ApplyPolicy(SSL_CTX* ctx, int minimum = TLS1_2_VERSION) {
  if (SSL_CTX_set_min_proto_version(ctx, minimum) != 1) {
    return base::Internal(TlsErrorMessage("set minimum TLS version"));
  }
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return base::Internal(TlsErrorMessage("set TLS 1.2 ciphers"));
  }
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return base::Internal(TlsErrorMessage("set groups"));
  }
  // SSL_OP_IGNORE_UNEXPECTED_EOF: a TCP close without close_notify reads as a
  // normal end of stream. Every protocol carried here (STUN, HTTP with
  // lengths, WebSocket) delimits its own messages, so truncation shows up
  // there, and many clients never send close_notify.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Moving buffers: a retried SSL_write may find its bytes elsewhere in the
  // bufferevent's output. No partial writes: the OpenSSL bufferevent (libevent
  // 2.1) goes on to the next chunk of its output after a partial SSL_write
  // and then drains both as if written in order, so a chunk longer than one
  // record (a client's max_fragment_length, or a long chunk) would reach the
  // client out of order. Whole writes or SSL_ERROR_WANT_WRITE it retries.
  //
  // Released buffers: an idle connection gives OpenSSL's record buffers back
  // to the allocator and takes them again for its next record. An idle
  // authenticated WSS client cost 29 KiB of RSS, now 17 KiB (1,000 of them,
  // session 29); TURN-over-TLS clients between packets gain the same.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_clear_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
  return base::Ok();
}

// The SSL ex_data slot that holds a connection's AlpnPolicy (as a value
// cast to a pointer); 0 = kNone.
int AlpnPolicyIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// ALPN protocol names in wire format: a length byte, then the name.
constexpr unsigned char kHttp11Wire[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kStunTurnWire[] = {9, 's', 't', 'u', 'n', '.', 't', 'u', 'r', 'n'};

int SelectAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
               const unsigned char* offered, unsigned int offered_length, void*) {
  const auto policy =
      static_cast<AlpnPolicy>(reinterpret_cast<uintptr_t>(SSL_get_ex_data(ssl, AlpnPolicyIndex())));
  const unsigned char* wanted = nullptr;
  unsigned int wanted_length = 0;
  switch (policy) {
    case AlpnPolicy::kNone:
      return SSL_TLSEXT_ERR_NOACK;
    case AlpnPolicy::kHttp11:
      wanted = kHttp11Wire;
      wanted_length = sizeof(kHttp11Wire);
      break;
    case AlpnPolicy::kStunTurn:
      wanted = kStunTurnWire;
      wanted_length = sizeof(kStunTurnWire);
      break;
  }
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, wanted, wanted_length, offered,
                            offered_length) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return policy == AlpnPolicy::kHttp11 ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
}

// Larger than any certificate chain or key file; a bigger file is read only
// this far for the diagnosis below.
constexpr size_t kPemPeekBytes = 1 << 20;

// True if `text` holds a "-----BEGIN <label>-----" line whose label ends in
// `kind` ("CERTIFICATE" also matches "TRUSTED CERTIFICATE", "PRIVATE KEY"
// matches "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", ...).
bool HasPemBlock(std::string_view text, std::string_view kind) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  for (size_t at = text.find(kBegin); at != std::string_view::npos;
       at = text.find(kBegin, at + 1)) {
    const size_t label = at + kBegin.size();
    const size_t end = text.find("-----", label);
    if (end != std::string_view::npos && text.substr(label, end - label).ends_with(kind)) {
      return true;
    }
  }
  return false;
}

// Says why OpenSSL could not load `path`, in words an operator acts on
// ("Permission denied", "empty", "no PEM certificate") rather than OpenSSL's
// error codes; Ok when none of these is the reason. `what` names the file in
// the message; `kind` is the PEM label it must hold. Read only after a
// failed load, so a good file is read once.
base::Status CheckPemFile(const std::string& what, const std::string& path, std::string_view kind) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return base::InvalidArgument(what + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return base::InvalidArgument(what + ": is a directory");
  }
  std::string text;
  char buffer[16384];
  ssize_t n;
  while (text.size() < kPemPeekBytes && (n = ::read(fd, buffer, sizeof(buffer))) != 0) {
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int read_errno = errno;
      ::close(fd);
      return base::InvalidArgument(what + ": cannot read: " + std::strerror(read_errno));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (text.empty()) {
    return base::InvalidArgument(what + ": the file is empty");
  }
  if (!HasPemBlock(text, kind)) {
    std::string lower(kind);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return base::InvalidArgument(what + ": no PEM " + lower + " in it");
  }
  return base::Ok();
}

// True if the OpenSSL error queue says a key does not match its
// certificate; leaves the queue as it is.
bool KeyMismatchQueued() {
  const unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_X509 && ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH;
}

// The error for a PEM file OpenSSL just failed to load: CheckPemFile's
// reason if it finds one (the OpenSSL queue is then dropped), else
// OpenSSL's own.
std::unexpected<base::Error> LoadFailure(const std::string& what, const std::string& path,
                                         std::string_view kind) {
  if (base::Status reason = CheckPemFile(what, path, kind); !reason) {
    ERR_clear_error();
    return std::unexpected(reason.error());
  }
  return base::InvalidArgument(TlsErrorMessage(what.c_str()));
}

// OpenSSL asks for the passphrase of an encrypted key, by default on the
// terminal (check-config then waits at a prompt). A server has no one to
// ask: refuse, and note that it was asked.
int RefusePassphrase(char* /*buffer*/, int /*size*/, int /*rwflag*/, void* asked) {
  if (asked != nullptr) {
    *static_cast<bool*>(asked) = true;
  }
  return 0;
}

// DTLS cookies (RFC 6347 section 4.2.1): HMAC-SHA256 of the client's
// address and the current minute under a key drawn once per process, so a
// HelloVerifyRequest needs no state, only a client that receives at its
// address can go on, and a cookie is good for one to two minutes (this
// minute's and the last one's are accepted).
int DtlsPeerIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

constexpr size_t kCookieBytes = 16;

bool ComputeCookie(SSL* ssl, int64_t minute, unsigned char* out) {
  static std::array<unsigned char, 32> key;
  static bool key_ok = false;
  static std::once_flag once;
  std::call_once(once, [] { key_ok = RAND_bytes(key.data(), key.size()) == 1; });
  const auto* peer = static_cast<const base::SocketAddress*>(SSL_get_ex_data(ssl, DtlsPeerIndex()));
  if (!key_ok || peer == nullptr) {
    return false;
  }
  // The minute, family, port and IP bytes; a different port is a different
  // client.
  unsigned char input[8 + 1 + 2 + 16] = {};
  for (int i = 0; i < 8; ++i) {
    input[i] = static_cast<unsigned char>(static_cast<uint64_t>(minute) >> (56 - 8 * i));
  }
  input[8] = peer->is_v6() ? 6 : 4;
  input[9] = static_cast<unsigned char>(peer->port() >> 8);
  input[10] = static_cast<unsigned char>(peer->port());
  std::copy_n(peer->bytes(), peer->size(), input + 11);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (HMAC(EVP_sha256(), key.data(), key.size(), input, sizeof(input), digest, &digest_length) ==
          nullptr ||
      digest_length < kCookieBytes) {
    return false;
  }
  std::copy_n(digest, kCookieBytes, out);
  return true;
}

int64_t CookieMinute() { return static_cast<int64_t>(std::time(nullptr)) / 60; }

int GenerateCookie(SSL* ssl, unsigned char* cookie, unsigned int* length) {
  if (!ComputeCookie(ssl, CookieMinute(), cookie)) {
    return 0;
  }
  *length = kCookieBytes;
  return 1;
}

int VerifyCookie(SSL* ssl, const unsigned char* cookie, unsigned int length) {
  if (length != kCookieBytes) {
    return 0;
  }
  const int64_t minute = CookieMinute();
  for (int64_t m : {minute, minute - 1}) {
    unsigned char expected[kCookieBytes];
    if (ComputeCookie(ssl, m, expected) && CRYPTO_memcmp(expected, cookie, kCookieBytes) == 0) {
      return 1;
    }
  }
  return 0;
}

// A DTLS server context with `tls`'s policy, certificate chain and key (taken
// from it, not read again, so both always serve the same certificate).
SSL_CTX* CreateDtlsServer(SSL_CTX* tls) {
  CtxOwner owner{SSL_CTX_new(DTLS_server_method())};
  if (owner.ctx == nullptr || !ApplyPolicy(owner.ctx, DTLS1_2_VERSION)) {
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(owner.ctx, SelectAlpn, nullptr);
  SSL_CTX_set_cookie_generate_cb(owner.ctx, GenerateCookie);
  SSL_CTX_set_cookie_verify_cb(owner.ctx, VerifyCookie);
  STACK_OF(X509)* chain = nullptr;
  if (SSL_CTX_use_certificate(owner.ctx, SSL_CTX_get0_certificate(tls)) != 1 ||
      SSL_CTX_use_PrivateKey(owner.ctx, SSL_CTX_get0_privatekey(tls)) != 1 ||
      SSL_CTX_get0_chain_certs(tls, &chain) != 1 ||
      (chain != nullptr && SSL_CTX_set1_chain(owner.ctx, chain) != 1)) {
    return nullptr;
  }
  return owner.Release();
}

}  // namespace

void SetDtlsCookiePeer(SSL* ssl, const base::SocketAddress* peer) {
  SSL_set_ex_data(ssl, DtlsPeerIndex(), const_cast<base::SocketAddress*>(peer));
}

void SetAlpnPolicy(SSL* ssl, AlpnPolicy policy) {
  SSL_set_ex_data(ssl, AlpnPolicyIndex(), reinterpret_cast<void*>(static_cast<uintptr_t>(policy)));
}

std::string TlsErrorMessage(const char* what) {
  std::string message = what;
  const char* separator = ": ";
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    message += separator;
    message += buffer;
    separator = "; ";
  }
  return message;
}

base::Result<std::shared_ptr<TlsContext>> TlsContext::CreateServer(
    const std::string& cert_path, const std::string& key_path,
    const std::optional<std::string>& trusted_ca_file) {
  ERR_clear_error();
  CtxOwner owner{SSL_CTX_new(TLS_server_method())};
  if (owner.ctx == nullptr) {
    return base::Internal(TlsErrorMessage("SSL_CTX_new"));
  }
  if (auto s = ApplyPolicy(owner.ctx); !s) {
    return std::unexpected(s.error());
  }
  SSL_CTX_set_alpn_select_cb(owner.ctx, SelectAlpn, nullptr);
  const std::string cert_what = "certificate " + cert_path;
  const std::string key_what = "private key " + key_path;
  if (SSL_CTX_use_certificate_chain_file(owner.ctx, cert_path.c_str()) != 1) {
    return LoadFailure(cert_what, cert_path, "CERTIFICATE");
  }
  // SSL_CTX_use_PrivateKey_file already compares the key with the
  // certificate; SSL_CTX_check_private_key covers a key that loads first.
  const std::string mismatch = key_what + " does not match the " + cert_what;
  bool passphrase_asked = false;
  SSL_CTX_set_default_passwd_cb(owner.ctx, RefusePassphrase);
  SSL_CTX_set_default_passwd_cb_userdata(owner.ctx, &passphrase_asked);
  const bool key_loaded =
      SSL_CTX_use_PrivateKey_file(owner.ctx, key_path.c_str(), SSL_FILETYPE_PEM) == 1;
  SSL_CTX_set_default_passwd_cb_userdata(owner.ctx, nullptr);
  if (!key_loaded && passphrase_asked) {
    ERR_clear_error();
    return base::InvalidArgument(
        key_what +
        ": the key is encrypted (it needs a passphrase); give turnkey the key unencrypted, "
        "readable by the service user only (e.g. openssl pkey -in KEY -out NEW_KEY)");
  }
  if (!key_loaded) {
    if (KeyMismatchQueued()) {
      return base::InvalidArgument(TlsErrorMessage(mismatch.c_str()));
    }
    return LoadFailure(key_what, key_path, "PRIVATE KEY");
  }
  if (SSL_CTX_check_private_key(owner.ctx) != 1) {
    return base::InvalidArgument(TlsErrorMessage(mismatch.c_str()));
  }
  std::optional<CertificateInfo> info = InspectCertificate(owner.ctx, trusted_ca_file);
  if (!info) {
    return base::InvalidArgument(cert_what + ": cannot read the certificate's validity times");
  }
  SSL_CTX* dtls = CreateDtlsServer(owner.ctx);
  if (dtls == nullptr) {
    return base::Internal(TlsErrorMessage("DTLS context"));
  }
  std::shared_ptr<TlsContext> context(new TlsContext(owner.Release(), true));
  context->dtls_ctx_ = dtls;
  context->certificate_ = std::move(*info);
  return context;
}

base::Result<std::shared_ptr<TlsContext>> TlsContext::CreateClient(
    bool verify_peer, const std::optional<std::string>& ca_file, bool dtls) {
  ERR_clear_error();
  CtxOwner owner{SSL_CTX_new(dtls ? DTLS_client_method() : TLS_client_method())};
  if (owner.ctx == nullptr) {
    return base::Internal(TlsErrorMessage("SSL_CTX_new"));
  }
  if (auto s = ApplyPolicy(owner.ctx, dtls ? DTLS1_2_VERSION : TLS1_2_VERSION); !s) {
    return std::unexpected(s.error());
  }
  if (verify_peer) {
    int ok = ca_file ? SSL_CTX_load_verify_locations(owner.ctx, ca_file->c_str(), nullptr)
                     : SSL_CTX_set_default_verify_paths(owner.ctx);
    if (ok != 1) {
      return base::InvalidArgument(
          TlsErrorMessage(ca_file ? ("load CA file " + *ca_file).c_str() : "load system CA store"));
    }
    SSL_CTX_set_verify(owner.ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(owner.ctx, SSL_VERIFY_NONE, nullptr);
  }
  std::shared_ptr<TlsContext> context(new TlsContext(owner.Release(), false));
  context->verify_peer_ = verify_peer;
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
  if (dtls_ctx_ != nullptr) {
    SSL_CTX_free(dtls_ctx_);
  }
}

}  // namespace turnkey::net
