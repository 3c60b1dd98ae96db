// What an operator needs to know about a loaded server certificate: whose
// it is, when it is valid, and whether its chain leads to a trusted root.
//
// InspectCertificate reads the facts from a loaded SSL_CTX once, when the
// certificate is loaded (start and every reload); the other functions are
// pure over those facts and the current time, so tests need no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct ssl_ctx_st;

namespace turnkey::net {

// Facts about the leaf certificate of a server context.
struct CertificateInfo {
  // The subject CN, else the first DNS or IP subjectAltName, else
  // "(no name)". For log lines only.
  std::string name;
  // Validity period, Unix seconds (notBefore, notAfter).
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
  // Why the leaf plus the certificates that follow it in the certificate
  // file do not build a chain to a trusted root (OpenSSL's reason, e.g.
  // "self-signed certificate"); empty when they do. Validity times are not
  // part of this check (ValidityAt reports them).
  std::string chain_problem;
};

// Where `now_unix` falls in the certificate's validity period.
enum class CertificateValidity {
  kValid,        // notBefore <= now <= notAfter
  kNotYetValid,  // now < notBefore
  kExpired,      // now > notAfter
};
CertificateValidity ValidityAt(const CertificateInfo& info, int64_t now_unix);

// "localhost, valid until 2026-03-01T12:00:00Z": for the info line logged on
// every load.
std::string DescribeCertificate(const CertificateInfo& info);

// One sentence per problem a client would trip over: expired, not yet valid,
// no chain to a trusted root. Empty when there is none. These are warnings,
// never reasons to refuse a certificate by themselves (a self-signed
// development certificate has no trusted chain and is fine).
std::vector<std::string> CertificateWarnings(const CertificateInfo& info, int64_t now_unix);

// Unix seconds as "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatUtc(int64_t unix_seconds);

// Whether the context's leaf certificate is valid for `host` (a DNS name,
// matched against its DNS subjectAltNames, a wildcard only as a whole
// left-most label, never the subject CN; or an IP address, matched against
// its IP subjectAltNames), as browsers check a server's name.
// False for a context without a certificate.
bool CertificateCoversHost(ssl_ctx_st* ctx, const std::string& host);

// Reads the facts from a server context that holds a certificate and its
// chain (SSL_CTX_use_certificate_chain_file). The chain is checked against
// `trusted_ca_file` if given, else the system's default trust store, for
// the TLS server purpose. Returns nullopt if the context has no certificate
// or its validity times cannot be read.
std::optional<CertificateInfo> InspectCertificate(
    ssl_ctx_st* ctx, const std::optional<std::string>& trusted_ca_file = std::nullopt);

}  // namespace turnkey::net
