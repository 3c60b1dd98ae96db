// CommitAnswerCutter: a TCP proxy in front of the test MariaDB server that,
// when armed, lets the next COMMIT reach the server and run there, then drops
// both ends of that connection instead of passing the server's answer on.
// The client sees the connection lost after its COMMIT left: the outcome
// nobody can know from the client side (reference/security.md, "a connection
// lost during COMMIT is an unknown outcome"), made on purpose.
//
// It reads the MySQL client/server protocol's packet framing (3-byte length,
// 1-byte sequence id) without TLS or compression: a command is a client
// packet with sequence id 0. COMMIT counts as a text query (COM_QUERY
// "COMMIT") or as the execution (COM_STMT_EXECUTE) of a statement whose
// prepare (COM_STMT_PREPARE "COMMIT") it saw answered on that connection.
//
// One thread moves the bytes of every connection; the methods are
// thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace turnkey::sql::testing {

class CommitAnswerCutter {
 public:
  // Listens on 127.0.0.1 (an ephemeral port) and forwards every connection
  // to `host`:`port`. port() is 0 when it could not listen.
  CommitAnswerCutter(std::string host, uint16_t port);
  ~CommitAnswerCutter();
  CommitAnswerCutter(const CommitAnswerCutter&) = delete;
  CommitAnswerCutter& operator=(const CommitAnswerCutter&) = delete;

  uint16_t port() const { return port_; }
  // The next COMMIT of any connection runs on the server and loses its
  // answer (once).
  void CutNextCommitAnswer() { armed_ = true; }
  // Answers of COMMITs cut so far.
  int cuts() const { return cuts_; }

 private:
  void Loop();

  const std::string host_;
  const uint16_t upstream_port_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<bool> armed_{false};
  std::atomic<int> cuts_{0};
  std::thread thread_;
};

}  // namespace turnkey::sql::testing
