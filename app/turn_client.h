// TurnClient: a small synchronous TURN client (RFC 8656, RFC 6156) for the
// `probe` command: one allocation over one UDP, TCP or TLS connection.
//
// Authentication is the long-term credential mechanism (RFC 8489 s9.2): the
// first request goes without credentials, the 401 gives REALM and NONCE, and
// every later request carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY
// with the key MD5(user:realm:pass). When the 401 announces RFC 8489 password
// algorithms (the nonce cookie "obMatJos2" with the password-algorithms bit,
// and PASSWORD-ALGORITHMS), the client takes the first algorithm on the
// server's list that it knows (MD5 or SHA-256), echoes PASSWORD-ALGORITHMS,
// names its PASSWORD-ALGORITHM and signs with MESSAGE-INTEGRITY-SHA256. A 438 Stale Nonce is
// retried with the new nonce (up to kMaxNonceRetries times per request).
//
// Requests over UDP are retransmitted from 500 ms with a doubling interval
// (RFC 8489 s6.2.1) until the per-request timeout; over TCP and TLS they are
// sent once. Success responses must carry valid integrity (RFC 8489 s9.2.5).
// Data indications and ChannelData that arrive while a request waits are
// queued for Receive().
//
// Every call blocks for at most its timeout. Not thread-safe: one thread per
// client.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "net/blocking_client.h"
#include "stun/constants.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::app {

// Why a TURN transaction failed: the server's ERROR-CODE when it answered
// with one (code 300..699), or code 0 for a transport or protocol problem
// (timeout, closed connection, bad response).
struct TurnError {
  uint16_t code = 0;
  std::string message;  // "403 Forbidden" or what went wrong, for people
};
template <typename T>
using TurnResult = std::expected<T, TurnError>;
using TurnStatus = TurnResult<void>;

struct TurnClientOptions {
  // How to reach the server (transport, connect timeout, TLS checks).
  net::BlockingClientOptions connection;
  // Bound on each transaction (all retransmissions and nonce retries).
  std::chrono::milliseconds timeout{3000};
  std::string username;
  std::string password;  // never logged or printed
};

// How the client authenticates after the first 401.
enum class IntegrityMode : uint8_t {
  kNone,          // no 401 seen yet
  kMd5Sha1,       // MD5 key, MESSAGE-INTEGRITY (RFC 5389 style)
  kMd5Sha256,     // MD5 key via PASSWORD-ALGORITHM, MESSAGE-INTEGRITY-SHA256
  kSha256Sha256,  // SHA-256 key via PASSWORD-ALGORITHM, MESSAGE-INTEGRITY-SHA256
};
// "MD5 key, MESSAGE-INTEGRITY" and so on, for printing.
const char* IntegrityModeName(IntegrityMode mode);

struct AllocateResult {
  base::SocketAddress relayed;  // XOR-RELAYED-ADDRESS
  base::SocketAddress mapped;   // XOR-MAPPED-ADDRESS (unset if the server sent none)
  uint32_t lifetime_seconds = 0;
};

// One datagram the relay passed on from a peer.
struct RelayedData {
  base::SocketAddress peer;
  std::optional<uint16_t> channel;  // set when it arrived as ChannelData
  base::Bytes data;
};

class TurnClient {
 public:
  static constexpr int kMaxNonceRetries = 3;

  // Connects; sends nothing yet.
  static base::Result<std::unique_ptr<TurnClient>> Connect(const std::string& host, uint16_t port,
                                                           const TurnClientOptions& options);

  // Allocate (RFC 8656 s7.1) with REQUESTED-TRANSPORT UDP and, when given,
  // REQUESTED-ADDRESS-FAMILY.
  TurnResult<AllocateResult> Allocate(std::optional<stun::AddressFamily> family = std::nullopt);
  // Refresh (RFC 8656 s8.1); returns the granted LIFETIME. 0 frees the
  // allocation; a 437 to it counts as success (RFC 8656 s8.3).
  TurnResult<uint32_t> Refresh(uint32_t lifetime_seconds);
  // CreatePermission for the IP of `peer` (RFC 8656 s10.1).
  TurnStatus CreatePermission(const base::SocketAddress& peer);
  // ChannelBind `channel` (0x4000..0x4FFF) to `peer` (RFC 8656 s12.1). On
  // success ChannelData on `channel` is reported as coming from `peer`.
  TurnStatus ChannelBind(uint16_t channel, const base::SocketAddress& peer);

  // A Send indication (RFC 8656 s11.1) carrying `data` to `peer`.
  base::Status SendIndication(const base::SocketAddress& peer, base::ByteView data);
  // A ChannelData message (RFC 8656 s12.4), padded on TCP/TLS.
  base::Status SendChannelData(uint16_t channel, base::ByteView data);
  // The next Data indication or ChannelData from the relay, waiting at most
  // `timeout`; kUnavailable when none came.
  base::Result<RelayedData> Receive(std::chrono::milliseconds timeout);

  const net::BlockingClient& connection() const { return *connection_; }
  const std::string& realm() const { return realm_; }
  IntegrityMode integrity_mode() const { return mode_; }
  // 438 answers retried so far, over all requests.
  int stale_nonce_retries() const { return stale_nonce_retries_; }

 private:
  using Clock = std::chrono::steady_clock;

  TurnClient(std::unique_ptr<net::BlockingClient> connection, const TurnClientOptions& options)
      : connection_(std::move(connection)), options_(options) {}

  // Runs one request/response transaction including the 401 challenge and
  // 438 retries; returns the raw success response.
  TurnResult<base::Bytes> Transact(stun::Method method,
                                   const std::function<void(stun::MessageBuilder&)>& add);
  // Sends `request` (retransmitting over UDP) and waits for the response
  // with `txid`, queueing relayed data that arrives meanwhile.
  TurnResult<base::Bytes> Exchange(base::ByteView request, const stun::TransactionId& txid,
                                   Clock::time_point deadline);
  // Reads one datagram or frame. Relayed data goes to inbound_; a STUN
  // response is returned; anything else yields an empty Bytes.
  base::Result<base::Bytes> ReadOne(Clock::time_point deadline);
  // Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401/438 and derives the key.
  TurnStatus LearnChallenge(const stun::Message& response);
  bool stream() const { return !connection_->datagram(); }

  std::unique_ptr<net::BlockingClient> connection_;
  TurnClientOptions options_;
  std::string realm_;
  std::string nonce_;
  base::Bytes password_algorithms_;  // the PASSWORD-ALGORITHMS value to echo, if any
  stun::PasswordAlgorithmId algorithm_ = stun::PasswordAlgorithmId::kMd5;
  base::Bytes key_;
  IntegrityMode mode_ = IntegrityMode::kNone;
  int stale_nonce_retries_ = 0;
  std::map<uint16_t, base::SocketAddress> channels_;
  std::deque<RelayedData> inbound_;
};

}  // namespace turnkey::app
