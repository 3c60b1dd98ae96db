// TlsContext: an immutable OpenSSL SSL_CTX with turnkey's TLS policy.
//
// Policy (reference/security.md): TLS 1.2 minimum, TLS 1.3 preferred (the
// highest common version wins), TLS 1.2 limited to ECDHE key exchange with
// AES-GCM or ChaCha20-Poly1305, no compression, no renegotiation.
//
// Reload: build a new context from the new files and hand it to the listener
// (StreamListener::SetTlsContext); new connections use it, established ones
// keep the one they started with (each SSL holds a reference to its SSL_CTX).
// A context is thread-safe to share between loops once created.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/address.h"
#include "base/status.h"
#include "net/tls_certificate.h"

struct ssl_ctx_st;
struct ssl_st;

namespace turnkey::net {

// What a server connection answers to the client's ALPN list (RFC 7301).
enum class AlpnPolicy : uint8_t {
  kNone,      // ALPN ignored: no protocol selected
  kHttp11,    // "http/1.1"; a client that offers ALPN without it (an
              // h2-only client) gets the no_application_protocol alert
  kStunTurn,  // "stun.turn" (RFC 7443) when offered; a client offering
              // other protocols only still connects, with none selected
};

// Sets the policy of one server connection (an SSL* from a context made by
// CreateServer, before its handshake). The default is kNone.
void SetAlpnPolicy(ssl_st* ssl, AlpnPolicy policy);

// The client address a DTLS server connection (an SSL* from dtls_native())
// makes and checks its cookies for (RFC 6347 section 4.2.1); `peer` must
// outlive every handshake step taken with it. Without one no cookie is made
// and every ClientHello is refused.
void SetDtlsCookiePeer(ssl_st* ssl, const base::SocketAddress* peer);

class TlsContext {
 public:
  // A server context from a PEM certificate chain (leaf first) and a PEM
  // private key. Fails, with a message naming the file and the reason, if
  // either cannot be read, holds no PEM certificate or key, or the key does
  // not match the certificate. An expired certificate or one without a
  // trusted chain loads: certificate() says so, the caller decides. The
  // chain is checked against `trusted_ca_file` if given (tests), else the
  // system trust store.
  static base::Result<std::shared_ptr<TlsContext>> CreateServer(
      const std::string& cert_path, const std::string& key_path,
      const std::optional<std::string>& trusted_ca_file = std::nullopt);

  // A client context (for `turnkey probe`). With `verify_peer`, the server
  // chain is checked against `ca_file` if given, else the system store; the
  // host name is checked per connection by the caller (BlockingClient does).
  // With `dtls`, a DTLS 1.2 client context (the same policy).
  static base::Result<std::shared_ptr<TlsContext>> CreateClient(
      bool verify_peer, const std::optional<std::string>& ca_file = std::nullopt,
      bool dtls = false);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool is_server() const { return is_server_; }
  bool verify_peer() const { return verify_peer_; }
  // The leaf certificate's notAfter as Unix seconds (server contexts; 0 for
  // client contexts). Exported as a metric so expiry can be alerted on.
  int64_t not_after_unix() const { return certificate_.not_after_unix; }
  // The leaf certificate's facts (server contexts; empty for client ones).
  const CertificateInfo& certificate() const { return certificate_; }
  // For net/ internals: the OpenSSL context (an SSL_CTX*).
  ssl_ctx_st* native() const { return ctx_; }
  // Server contexts: the same certificate, key and policy over DTLS 1.2
  // (DtlsSocket), with stateless cookies (SetDtlsCookiePeer). Null for
  // client contexts.
  ssl_ctx_st* dtls_native() const { return dtls_ctx_; }

 private:
  TlsContext(ssl_ctx_st* ctx, bool is_server) : ctx_(ctx), is_server_(is_server) {}

  ssl_ctx_st* ctx_;
  ssl_ctx_st* dtls_ctx_ = nullptr;
  bool is_server_;
  bool verify_peer_ = false;
  CertificateInfo certificate_;
};

// The OpenSSL error queue as one line ("what: reason; reason"), then cleared.
std::string TlsErrorMessage(const char* what);

}  // namespace turnkey::net
