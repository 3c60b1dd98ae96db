// Helpers for the net/ tests: drive a loop until a condition holds (with a
// deadline, never a sleep), a loop running on its own thread, and a
// self-signed certificate generated with OpenSSL at test time.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "net/event_loop.h"

struct ssl_ctx_st;
struct ssl_st;

namespace turnkey::net::testing {

// Runs `loop` one iteration at a time until `done()` or `timeout` passed.
// Returns done(). A deadline timer guarantees every iteration ends.
bool RunUntil(EventLoop& loop, const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Polls `done` every 10 ms from the test thread, while a loop runs on its
// own, for up to 5 s. Returns done().
bool Eventually(const std::function<bool()>& done);

// Creates a loop or fails the test.
std::unique_ptr<EventLoop> MakeLoop();

// The private redis-server of the ctest fixture `redis` (tests/redis/
// redis_server.sh): its directory and script from TURNKEY_REDIS_DIR and
// TURNKEY_REDIS_SCRIPT, and its address and password from server.env.
struct RedisTestServer {
  std::string dir;
  std::string script;
  std::string host;
  uint16_t port = 0;
  std::string password;
};
// An error text when the environment or server.env is missing or short.
std::expected<RedisTestServer, std::string> FindRedisTestServer();

// Runs a loop on a background thread (for tests that block on a client).
// Create sockets on the loop before Start(); the destructor stops and joins.
class LoopThread {
 public:
  explicit LoopThread(EventLoop& loop) : loop_(loop) {}
  ~LoopThread() { Join(); }
  void Start() {
    thread_ = std::thread([this] { loop_.Run(); });
  }
  void Join() {
    if (thread_.joinable()) {
      loop_.Stop();
      thread_.join();
    }
  }

 private:
  EventLoop& loop_;
  std::thread thread_;
};

// A temporary directory with cert.pem / key.pem for CN=localhost (EC P-256,
// SAN DNS:localhost and IP:127.0.0.1), removed on destruction.
class TestCertificate {
 public:
  // notAfter is now + `not_after_offset_seconds`.
  explicit TestCertificate(long not_after_offset_seconds = 2 * 86400);
  ~TestCertificate();
  const std::string& cert_path() const { return cert_path_; }
  const std::string& key_path() const { return key_path_; }
  const std::string& dir() const { return dir_; }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  std::string cert_path_;
  std::string key_path_;
  bool ok_ = false;
};

// A temporary directory with a three-level chain, as a public CA issues it: a
// root (root.pem, CA), an intermediate it signed, and a CN=localhost leaf the
// intermediate signed; fullchain.pem holds the leaf then the intermediate
// (certbot's fullchain.pem), leaf.pem the leaf alone, key.pem the leaf's key.
class TestCertificateChain {
 public:
  TestCertificateChain();
  ~TestCertificateChain();
  const std::string& root_path() const { return root_path_; }
  const std::string& fullchain_path() const { return fullchain_path_; }
  const std::string& leaf_path() const { return leaf_path_; }
  const std::string& key_path() const { return key_path_; }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  std::string root_path_;
  std::string fullchain_path_;
  std::string leaf_path_;
  std::string key_path_;
  bool ok_ = false;
};

// A blocking DTLS 1.2 client: OpenSSL's own, over a datagram BIO on a UDP
// socket bound to 127.0.0.1:`local_port` (0: any) and connected to `server`,
// with a 5 s receive timeout. `only_version` (DTLS1_VERSION, ...) pins the
// protocol version; 0 leaves OpenSSL's range.
class DtlsClient {
 public:
  explicit DtlsClient(const base::SocketAddress& server, int only_version = 0,
                      uint16_t local_port = 0);
  ~DtlsClient();
  DtlsClient(const DtlsClient&) = delete;
  DtlsClient& operator=(const DtlsClient&) = delete;

  // The handshake; last_error() says why it failed.
  bool Connect();
  // One non-blocking handshake step (the socket stays non-blocking after):
  // true once the handshake is done. Steps let a test stop half-way.
  bool ConnectStep();
  // One record.
  bool Write(base::ByteView bytes);
  bool Write(const std::string& text);
  // One record's bytes; nullopt on a timeout, close_notify or error
  // (last_error() tells which: an SSL_ERROR_ value).
  std::optional<base::Bytes> Read();
  std::optional<std::string> ReadText();
  int last_error() const { return last_error_; }
  // Connect(): the OpenSSL reason of its failure (SSL_R_...), 0 if none.
  int last_reason() const { return last_reason_; }
  // Sends close_notify.
  void Shutdown();
  // Sends bytes outside DTLS on the same socket.
  void SendRaw(const std::vector<uint8_t>& bytes);
  // True if any datagram arrives within `wait` (read outside DTLS).
  bool Receives(std::chrono::milliseconds wait);
  uint16_t local_port() const;

 private:
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  int fd_ = -1;
  int last_error_ = 0;
  int last_reason_ = 0;
};

}  // namespace turnkey::net::testing
