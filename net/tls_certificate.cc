#include "net/tls_certificate.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <ctime>
#include <memory>

namespace turnkey::net {

namespace {

constexpr int64_t kSecondsPerDay = 86400;

std::string Utf8(const ASN1_STRING* text) {
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, text);
  if (length < 0) {
    return "";
  }
  std::string result(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return result;
}

std::string CommonName(X509* leaf) {
  X509_NAME* subject = X509_get_subject_name(leaf);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) {
    return "";
  }
  return Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
}

std::string FirstSubjectAltName(X509* leaf) {
  std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)),
      GENERAL_NAMES_free);
  if (!names) {
    return "";
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      return Utf8(name->d.dNSName);
    }
    if (name->type == GEN_IPADD) {
      const int length = ASN1_STRING_length(name->d.iPAddress);
      const int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : AF_UNSPEC;
      char text[INET6_ADDRSTRLEN];
      if (family != AF_UNSPEC &&
          inet_ntop(family, ASN1_STRING_get0_data(name->d.iPAddress), text, sizeof(text))) {
        return text;
      }
    }
  }
  return "";
}

std::optional<int64_t> UnixTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

// X509_verify_cert over the leaf and the file's other certificates. Time is
// left out of it: an expired leaf is reported once, by ValidityAt, not also
// as a chain problem.
std::string ChainProblem(SSL_CTX* ctx, X509* leaf,
                         const std::optional<std::string>& trusted_ca_file) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> verify(X509_STORE_CTX_new(),
                                                                         X509_STORE_CTX_free);
  if (!store || !verify) {
    return "out of memory";
  }
  const int loaded = trusted_ca_file ? X509_STORE_load_file(store.get(), trusted_ca_file->c_str())
                                     : X509_STORE_set_default_paths(store.get());
  if (loaded != 1) {
    return trusted_ca_file ? "cannot load the trusted roots in " + *trusted_ca_file
                           : "cannot load the system trust store";
  }
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &chain);
  if (X509_STORE_CTX_init(verify.get(), store.get(), leaf, chain) != 1) {
    return "cannot set up the chain check";
  }
  X509_STORE_CTX_set_purpose(verify.get(), X509_PURPOSE_SSL_SERVER);
  X509_STORE_CTX_set_flags(verify.get(), X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(verify.get()) == 1) {
    return "";
  }
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(verify.get()));
}

}  // namespace

CertificateValidity ValidityAt(const CertificateInfo& info, int64_t now_unix) {
  if (now_unix < info.not_before_unix) {
    return CertificateValidity::kNotYetValid;
  }
  if (now_unix > info.not_after_unix) {
    return CertificateValidity::kExpired;
  }
  return CertificateValidity::kValid;
}

std::string FormatUtc(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  char text[32];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(text, sizeof(text), "%FT%TZ", &tm) == 0) {
    return std::to_string(unix_seconds);
  }
  return text;
}

std::string DescribeCertificate(const CertificateInfo& info) {
  return info.name + ", valid until " + FormatUtc(info.not_after_unix);
}

std::vector<std::string> CertificateWarnings(const CertificateInfo& info, int64_t now_unix) {
  std::vector<std::string> warnings;
  switch (ValidityAt(info, now_unix)) {
    case CertificateValidity::kValid:
      break;
    case CertificateValidity::kNotYetValid:
      warnings.push_back("the certificate for " + info.name + " is not valid before " +
                         FormatUtc(info.not_before_unix) + "; clients refuse it until then");
      break;
    case CertificateValidity::kExpired: {
      const int64_t days = (now_unix - info.not_after_unix) / kSecondsPerDay;
      warnings.push_back("the certificate for " + info.name + " expired at " +
                         FormatUtc(info.not_after_unix) + " (" + std::to_string(days) +
                         (days == 1 ? " day" : " days") + " ago); clients refuse it");
      break;
    }
  }
  if (!info.chain_problem.empty()) {
    warnings.push_back("the certificate for " + info.name +
                       " and the chain in its file do not lead to a trusted root (" +
                       info.chain_problem +
                       "); clients that verify it refuse it (expected for a self-signed test "
                       "certificate)");
  }
  return warnings;
}

bool CertificateCoversHost(ssl_ctx_st* ctx, const std::string& host) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (leaf == nullptr || host.empty()) {
    return false;
  }
  in6_addr address{};
  const bool is_ip = inet_pton(AF_INET, host.c_str(), &address) == 1 ||
                     inet_pton(AF_INET6, host.c_str(), &address) == 1;
  const int covered = is_ip ? X509_check_ip_asc(leaf, host.c_str(), 0)
                            : X509_check_host(leaf, host.data(), host.size(),
                                              X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                                  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                              nullptr);
  ERR_clear_error();
  return covered == 1;
}

std::optional<CertificateInfo> InspectCertificate(
    ssl_ctx_st* ctx, const std::optional<std::string>& trusted_ca_file) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (leaf == nullptr) {
    return std::nullopt;
  }
  const std::optional<int64_t> not_before = UnixTime(X509_get0_notBefore(leaf));
  const std::optional<int64_t> not_after = UnixTime(X509_get0_notAfter(leaf));
  if (!not_before || !not_after) {
    ERR_clear_error();
    return std::nullopt;
  }
  CertificateInfo info;
  info.name = CommonName(leaf);
  if (info.name.empty()) {
    info.name = FirstSubjectAltName(leaf);
  }
  if (info.name.empty()) {
    info.name = "(no name)";
  }
  info.not_before_unix = *not_before;
  info.not_after_unix = *not_after;
  info.chain_problem = ChainProblem(ctx, leaf, trusted_ca_file);
  // A failed check or a missing trust store directory leaves entries that
  // are answered above; they must not show in the next TlsErrorMessage.
  ERR_clear_error();
  return info;
}

}  // namespace turnkey::net
