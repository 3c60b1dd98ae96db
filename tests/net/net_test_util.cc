#include "tests/net/net_test_util.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "net/timer.h"

namespace turnkey::net::testing {

bool RunUntil(EventLoop& loop, const std::function<bool()>& done,
              std::chrono::milliseconds timeout) {
  bool expired = false;
  Timer deadline(loop, [&expired] { expired = true; });
  deadline.Start(timeout);
  while (!done() && !expired) {
    loop.RunOnce();
  }
  return done();
}

std::unique_ptr<EventLoop> MakeLoop() {
  auto loop = EventLoop::Create();
  EXPECT_TRUE(loop.has_value()) << loop.error().message;
  return loop ? std::move(*loop) : nullptr;
}

namespace {

bool AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) {
    return false;
  }
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool WritePem(const std::string& path, const std::function<int(FILE*)>& write) {
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return false;
  }
  bool ok = write(file) == 1;
  return std::fclose(file) == 0 && ok;
}

}  // namespace

TestCertificate::TestCertificate(long not_after_offset_seconds) {
  std::string pattern = (std::filesystem::temp_directory_path() / "turnkey-net-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return;
  }
  dir_ = pattern;
  cert_path_ = dir_ + "/cert.pem";
  key_path_ = dir_ + "/key.pem";

  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  bool ok = key != nullptr && cert != nullptr;
  ok = ok && X509_set_version(cert, 2) == 1;
  ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) == 1;
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr;
  ok = ok && X509_gmtime_adj(X509_getm_notAfter(cert), not_after_offset_seconds) != nullptr;
  ok = ok && X509_set_pubkey(cert, key) == 1;
  if (ok) {
    X509_NAME* name = X509_get_subject_name(cert);
    ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(cert, name) == 1;
  }
  ok = ok && AddExtension(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  ok = ok && AddExtension(cert, NID_basic_constraints, "critical,CA:TRUE");
  ok = ok && X509_sign(cert, key, EVP_sha256()) > 0;
  ok = ok && WritePem(cert_path_, [cert](FILE* f) { return PEM_write_X509(f, cert); });
  ok = ok && WritePem(key_path_, [key](FILE* f) {
         return PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
       });
  X509_free(cert);
  EVP_PKEY_free(key);
  ok_ = ok;
}

TestCertificate::~TestCertificate() {
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

}  // namespace turnkey::net::testing
