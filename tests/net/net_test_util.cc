#include "tests/net/net_test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>

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

std::expected<RedisTestServer, std::string> FindRedisTestServer() {
  const char* dir = std::getenv("TURNKEY_REDIS_DIR");
  const char* script = std::getenv("TURNKEY_REDIS_SCRIPT");
  if (dir == nullptr || script == nullptr) {
    return std::unexpected(
        "TURNKEY_REDIS_DIR or TURNKEY_REDIS_SCRIPT is not set: run through ctest (fixture redis)");
  }
  RedisTestServer server{.dir = dir, .script = script};
  std::ifstream env(server.dir + "/server.env");
  if (!env) {
    return std::unexpected(server.dir + "/server.env missing: the redis_start fixture failed");
  }
  std::map<std::string, std::string> vars;
  for (std::string line; std::getline(env, line);) {
    if (auto eq = line.find('='); eq != std::string::npos) {
      vars[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  if (!vars.contains("REDIS_HOST") || !vars.contains("REDIS_PORT") ||
      !vars.contains("REDIS_PASSWORD")) {
    return std::unexpected(server.dir +
                           "/server.env lacks REDIS_HOST, REDIS_PORT or REDIS_PASSWORD");
  }
  server.host = vars["REDIS_HOST"];
  server.port = static_cast<uint16_t>(std::stoi(vars["REDIS_PORT"]));
  server.password = vars["REDIS_PASSWORD"];
  return server;
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

namespace {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

// A certificate for `key` named CN=`cn`, valid from an hour ago to now +
// `not_after_offset_seconds`, signed by `issuer`/`issuer_key` (itself when
// both are null). `san` may be null; a CA gets basicConstraints CA:TRUE.
X509Ptr Issue(EVP_PKEY* key, const char* cn, const char* san, bool ca,
              long not_after_offset_seconds, long serial, X509* issuer = nullptr,
              EVP_PKEY* issuer_key = nullptr) {
  X509Ptr cert(X509_new(), X509_free);
  bool ok = key != nullptr && cert != nullptr;
  ok = ok && X509_set_version(cert.get(), 2) == 1;
  ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) == 1;
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr;
  ok = ok && X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_offset_seconds) != nullptr;
  ok = ok && X509_set_pubkey(cert.get(), key) == 1;
  ok = ok && X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>(cn), -1, -1, 0) == 1;
  X509* signer = issuer != nullptr ? issuer : cert.get();
  ok = ok && X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1;
  ok = ok && (san == nullptr || AddExtension(cert.get(), NID_subject_alt_name, san));
  ok = ok && AddExtension(cert.get(), NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  ok = ok && X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0;
  return ok ? std::move(cert) : X509Ptr(nullptr, X509_free);
}

bool WriteCerts(const std::string& path, std::initializer_list<X509*> certs) {
  return WritePem(path, [&certs](FILE* f) {
    for (X509* cert : certs) {
      if (cert == nullptr || PEM_write_X509(f, cert) != 1) {
        return 0;
      }
    }
    return 1;
  });
}

bool WriteKey(const std::string& path, EVP_PKEY* key) {
  return key != nullptr && WritePem(path, [key](FILE* f) {
           return PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
         });
}

void RemoveTempDir(const std::string& dir) {
  if (!dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}

std::string MakeTempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "turnkey-net-XXXXXX").string();
  return ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
}

}  // namespace

TestCertificate::TestCertificate(long not_after_offset_seconds) {
  dir_ = MakeTempDir();
  if (dir_.empty()) {
    return;
  }
  cert_path_ = dir_ + "/cert.pem";
  key_path_ = dir_ + "/key.pem";
  KeyPtr key = NewKey();
  X509Ptr cert = Issue(key.get(), "localhost", "DNS:localhost,IP:127.0.0.1", true,
                       not_after_offset_seconds, 1);
  ok_ = cert != nullptr && WriteCerts(cert_path_, {cert.get()}) && WriteKey(key_path_, key.get());
}

TestCertificate::~TestCertificate() { RemoveTempDir(dir_); }

TestCertificateChain::TestCertificateChain() {
  dir_ = MakeTempDir();
  if (dir_.empty()) {
    return;
  }
  root_path_ = dir_ + "/root.pem";
  fullchain_path_ = dir_ + "/fullchain.pem";
  leaf_path_ = dir_ + "/leaf.pem";
  key_path_ = dir_ + "/key.pem";
  constexpr long kYear = 365L * 86400;
  KeyPtr root_key = NewKey();
  KeyPtr intermediate_key = NewKey();
  KeyPtr leaf_key = NewKey();
  X509Ptr root = Issue(root_key.get(), "turnkey test root", nullptr, true, kYear, 1);
  X509Ptr intermediate = Issue(intermediate_key.get(), "turnkey test intermediate", nullptr, true,
                               kYear, 2, root.get(), root_key.get());
  X509Ptr leaf = Issue(leaf_key.get(), "localhost", "DNS:localhost,IP:127.0.0.1", false, kYear, 3,
                       intermediate.get(), intermediate_key.get());
  ok_ = root != nullptr && intermediate != nullptr && leaf != nullptr &&
        WriteCerts(root_path_, {root.get()}) &&
        WriteCerts(fullchain_path_, {leaf.get(), intermediate.get()}) &&
        WriteCerts(leaf_path_, {leaf.get()}) && WriteKey(key_path_, leaf_key.get());
}

TestCertificateChain::~TestCertificateChain() { RemoveTempDir(dir_); }

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

DtlsClient::DtlsClient(const base::SocketAddress& server, int only_version, uint16_t local_port) {
  ctx_ = SSL_CTX_new(DTLS_client_method());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  if (only_version != 0) {
    SSL_CTX_set_min_proto_version(ctx_, only_version);
    SSL_CTX_set_max_proto_version(ctx_, only_version);
    SSL_CTX_set_security_level(ctx_, 0);
  }
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage local{};
  const socklen_t local_length =
      base::SocketAddress::V4({127, 0, 0, 1}, local_port).ToSockaddr(&local);
  EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&local), local_length), 0);
  sockaddr_storage to{};
  const socklen_t to_length = server.ToSockaddr(&to);
  EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&to), to_length), 0);
  timeval timeout{5, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  BIO* bio = BIO_new_dgram(fd_, BIO_NOCLOSE);
  BIO_ADDR* peer = BIO_ADDR_new();
  const auto* to4 = reinterpret_cast<const sockaddr_in*>(&to);
  BIO_ADDR_rawmake(peer, AF_INET, &to4->sin_addr, sizeof(to4->sin_addr), to4->sin_port);
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, peer);
  BIO_ADDR_free(peer);
  ssl_ = SSL_new(ctx_);
  SSL_set_bio(ssl_, bio, bio);
}

DtlsClient::~DtlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
  ::close(fd_);
}

bool DtlsClient::Connect() {
  ERR_clear_error();
  const int done = SSL_connect(ssl_);
  last_error_ = done == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, done);
  last_reason_ = done == 1 ? 0 : ERR_GET_REASON(ERR_peek_last_error());
  return done == 1;
}

bool DtlsClient::ConnectStep() {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  ERR_clear_error();
  return SSL_connect(ssl_) == 1;
}

bool DtlsClient::Write(base::ByteView bytes) {
  return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
         static_cast<int>(bytes.size());
}

bool DtlsClient::Write(const std::string& text) { return Write(base::AsBytes(text)); }

std::optional<base::Bytes> DtlsClient::Read() {
  base::Bytes buffer(65536);
  const int n = SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
  if (n <= 0) {
    last_error_ = SSL_get_error(ssl_, n);
    return std::nullopt;
  }
  buffer.resize(static_cast<size_t>(n));
  return buffer;
}

std::optional<std::string> DtlsClient::ReadText() {
  auto bytes = Read();
  if (!bytes) {
    return std::nullopt;
  }
  return std::string(bytes->begin(), bytes->end());
}

void DtlsClient::Shutdown() { SSL_shutdown(ssl_); }

void DtlsClient::SendRaw(const std::vector<uint8_t>& bytes) {
  ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
}

bool DtlsClient::Receives(std::chrono::milliseconds wait) {
  timeval timeout{static_cast<time_t>(wait.count() / 1000),
                  static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  uint8_t buffer[2048];
  return ::recv(fd_, buffer, sizeof(buffer), 0) > 0;
}

uint16_t DtlsClient::local_port() const {
  sockaddr_in local{};
  socklen_t length = sizeof(local);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &length);
  return ntohs(local.sin_port);
}

}  // namespace turnkey::net::testing
