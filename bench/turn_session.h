// TurnSession: the client side of one TURN allocation over UDP, for the load
// generator (not a general-purpose client).
//
// It walks Allocate (first without credentials; the 401 gives REALM and
// NONCE; then with the long-term credential, RFC 8489 s9.2), then, when a
// peer is given, CreatePermission and ChannelBind for that peer
// (RFC 8656 s10, s12). Once ready it keeps the allocation alive: Refresh at
// half the granted lifetime and ChannelBind again every 4 minutes (which
// also refreshes the permission, RFC 8656 s12.2). 438 Stale Nonce is
// answered by retrying with the new nonce. Lost requests are retransmitted
// with a doubling timeout starting at 500 ms (RFC 8489 s6.2.1).
//
// Credentials are either a static user and password, or a TURN REST shared
// secret: then the username is "<unix expiry>:<user>" and the password
// base64(HMAC-SHA1(secret, username)).
//
// The session owns its socket, which is connected to the server, so its
// 5-tuple is the allocation's: a connected UDP socket, or a TCP/TLS
// StreamClient (RFC 8656 s3.1; the relay stays UDP). Over a stream nothing
// is retransmitted (reliable transport, RFC 8489 s6.2.2): a request just
// times out. The data path (ChannelData) uses fd() or stream() directly;
// only STUN messages are fed back here. One thread; no locking.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/address.h"
#include "base/bytes.h"
#include "base/crypto.h"
#include "bench/stream_client.h"
#include "bench/udp_util.h"
#include "stun/constants.h"

namespace turnkey::stun {
class Message;
}

namespace turnkey::bench {

struct TurnCredentials {
  // Static user name, or the user id part of a TURN REST username.
  std::string user;
  // Static user's password (ignored when `secret` is set).
  std::string password;
  // TURN REST shared secret; empty for a static user.
  std::string secret;
  // TURN REST: the username expires this many seconds from now.
  int64_t rest_ttl_seconds = 24 * 3600;
};

struct TurnSessionOptions {
  // Peer to open a permission and bind `channel` to; family kNone = allocate only.
  base::SocketAddress peer;
  uint16_t channel = stun::kMinChannelNumber;
  // LIFETIME asked for in Allocate and Refresh, seconds.
  uint32_t lifetime_seconds = 600;
  // Give up on a request after this long without an answer.
  int64_t request_timeout_ns = 10'000'000'000;
};

class TurnSession {
 public:
  enum class State : uint8_t {
    kIdle,        // nothing sent yet
    kAllocating,  // Allocate outstanding (first unauthenticated, then authenticated)
    kPermitting,  // CreatePermission outstanding
    kBinding,     // ChannelBind outstanding
    kReady,       // allocated, and with a peer: permission and channel in place
    kFailed,      // gave up; error() says why
    kClosed,      // deleted with Refresh LIFETIME 0 (or never started)
  };

  // `fd`: a UDP socket connected to the server; the session owns it.
  // `credentials` must outlive the session.
  TurnSession(UniqueFd fd, const TurnSessionOptions& options, const TurnCredentials& credentials);
  // `stream`: a connected TCP/TLS client; the session owns it.
  TurnSession(std::unique_ptr<StreamClient> stream, const TurnSessionOptions& options,
              const TurnCredentials& credentials);

  // Sends the first Allocate. Precondition: state() == kIdle.
  void Start(int64_t now_ns);
  // A STUN message that arrived on fd(); anything not answering the
  // outstanding request is ignored.
  void OnStunMessage(int64_t now_ns, base::ByteView bytes);
  // Retransmits, gives up, or starts a due refresh. Call at next_timer_ns().
  void OnTimer(int64_t now_ns);
  // When OnTimer has work next; INT64_MAX for never.
  int64_t next_timer_ns() const;
  // Deletes the allocation with Refresh LIFETIME 0: one send, no wait.
  void Close(int64_t now_ns);
  // The stream failed or was closed by the server: the session fails.
  void OnTransportError(const std::string& why);

  State state() const { return state_; }
  bool ready() const { return state_ == State::kReady; }
  bool done() const { return state_ == State::kReady || state_ == State::kFailed; }
  const std::string& error() const { return error_; }
  int fd() const { return stream_ ? stream_->fd() : fd_.get(); }
  // The TCP/TLS connection; null over UDP.
  StreamClient* stream() const { return stream_.get(); }
  const base::SocketAddress& relayed_address() const { return relayed_; }
  // When Start() ran and when the session first became ready.
  int64_t started_ns() const { return started_ns_; }
  int64_t ready_ns() const { return ready_ns_; }
  // Requests sent, retransmissions included.
  uint64_t requests_sent() const { return requests_sent_; }
  uint64_t retransmissions() const { return retransmissions_; }

 private:
  // Builds and sends a new request of `method` (fresh transaction id).
  void SendRequest(int64_t now_ns, stun::Method method);
  void Transmit(int64_t now_ns);
  void OnSuccess(int64_t now_ns, const stun::Message& msg);
  void Fail(std::string why);
  // Sets username_ / password_ for a TURN REST secret at `now`.
  void MintRestCredentials();

  UniqueFd fd_;
  std::unique_ptr<StreamClient> stream_;
  TurnSessionOptions options_;
  const TurnCredentials& credentials_;
  State state_ = State::kIdle;
  std::string error_;

  std::string username_;
  std::string password_;
  std::string realm_;
  std::string nonce_;
  base::Md5Digest key_{};
  bool have_key_ = false;

  // The outstanding transaction, if pending_.
  bool pending_ = false;
  stun::Method method_ = stun::Method::kAllocate;
  stun::TransactionId transaction_id_{};
  base::Bytes request_;
  int64_t first_sent_ns_ = 0;
  int64_t retransmit_at_ns_ = 0;
  int64_t rto_ns_ = 0;
  int stale_nonce_retries_ = 0;

  base::SocketAddress relayed_;
  uint32_t granted_lifetime_ = 0;
  int64_t refresh_due_ns_ = INT64_MAX;
  int64_t channel_due_ns_ = INT64_MAX;
  int64_t started_ns_ = 0;
  int64_t ready_ns_ = 0;
  uint64_t requests_sent_ = 0;
  uint64_t retransmissions_ = 0;
};

}  // namespace turnkey::bench
