#include "bench/turn_session.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <optional>

#include "stun/attributes.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::bench {

namespace {

constexpr int64_t kInitialRtoNs = 500'000'000;  // RFC 8489 s6.2.1
constexpr int64_t kMaxRtoNs = 4'000'000'000;
constexpr int64_t kChannelRefreshNs = 240'000'000'000;  // well inside the 300 s permission
constexpr int kMaxStaleNonceRetries = 3;

std::string ErrorText(const stun::Message& msg) {
  auto value = msg.FindValue(stun::AttributeType::kErrorCode);
  auto code = value ? stun::DecodeErrorCode(*value) : std::nullopt;
  if (!code) {
    return "error response without ERROR-CODE";
  }
  return std::to_string(code->code) + " " + std::string(code->reason);
}

}  // namespace

TurnSession::TurnSession(UniqueFd fd, const TurnSessionOptions& options,
                         const TurnCredentials& credentials)
    : fd_(std::move(fd)), options_(options), credentials_(credentials) {}

TurnSession::TurnSession(std::unique_ptr<StreamClient> stream, const TurnSessionOptions& options,
                         const TurnCredentials& credentials)
    : stream_(std::move(stream)), options_(options), credentials_(credentials) {}

void TurnSession::Start(int64_t now_ns) {
  started_ns_ = now_ns;
  if (credentials_.secret.empty()) {
    username_ = credentials_.user;
    password_ = credentials_.password;
  } else {
    MintRestCredentials();
  }
  state_ = State::kAllocating;
  SendRequest(now_ns, stun::Method::kAllocate);
}

void TurnSession::MintRestCredentials() {
  const int64_t expiry = static_cast<int64_t>(std::time(nullptr)) + credentials_.rest_ttl_seconds;
  username_ = std::to_string(expiry) + ":" + credentials_.user;
  base::Sha1Digest mac =
      base::HmacSha1(base::AsBytes(credentials_.secret), base::AsBytes(username_));
  password_ = base::Base64Encode(mac);
}

void TurnSession::SendRequest(int64_t now_ns, stun::Method method) {
  method_ = method;
  stale_nonce_retries_ = 0;
  first_sent_ns_ = now_ns;
  rto_ns_ = kInitialRtoNs;
  if (!base::RandomBytes(transaction_id_)) {
    Fail("no randomness for a transaction id");
    return;
  }
  request_.clear();
  stun::MessageBuilder b(request_, method, stun::MessageClass::kRequest, transaction_id_);
  switch (method) {
    case stun::Method::kAllocate:
      b.AddRequestedTransport(stun::kTransportUdp);
      b.AddLifetime(options_.lifetime_seconds);
      break;
    case stun::Method::kRefresh:
      b.AddLifetime(state_ == State::kClosed ? 0 : options_.lifetime_seconds);
      break;
    case stun::Method::kCreatePermission:
      b.AddXorPeerAddress(options_.peer);
      break;
    case stun::Method::kChannelBind:
      b.AddChannelNumber(options_.channel);
      b.AddXorPeerAddress(options_.peer);
      break;
    default:
      break;
  }
  if (have_key_) {
    b.AddUsername(username_);
    b.AddRealm(realm_);
    b.AddNonce(nonce_);
    b.AddMessageIntegrity(key_);
  }
  b.AddFingerprint();
  if (!b.ok()) {
    Fail(std::string("cannot build request: ") + stun::BuildErrorText(b.error()));
    return;
  }
  pending_ = true;
  Transmit(now_ns);
}

void TurnSession::Transmit(int64_t now_ns) {
  ++requests_sent_;
  if (stream_) {
    // Reliable transport: sent once; the timer only gives up on it.
    if (!stream_->Write(request_.data(), request_.size())) {
      Fail(stream_->error());
      return;
    }
    retransmit_at_ns_ = first_sent_ns_ + options_.request_timeout_ns;
    return;
  }
  // A full socket buffer is a lost datagram like any other: the
  // retransmission timer covers it.
  (void)::send(fd_.get(), request_.data(), request_.size(), MSG_DONTWAIT);
  retransmit_at_ns_ = now_ns + rto_ns_;
}

void TurnSession::OnTransportError(const std::string& why) {
  if (state_ != State::kFailed && state_ != State::kClosed) {
    Fail(why);
  }
}

void TurnSession::OnTimer(int64_t now_ns) {
  if (pending_) {
    if (now_ns < retransmit_at_ns_) {
      return;
    }
    if (now_ns - first_sent_ns_ >= options_.request_timeout_ns) {
      Fail(std::string("no answer to ") + stun::MethodName(method_));
      return;
    }
    rto_ns_ = std::min(rto_ns_ * 2, kMaxRtoNs);
    ++retransmissions_;
    Transmit(now_ns);
    return;
  }
  if (state_ != State::kReady) {
    return;
  }
  if (now_ns >= refresh_due_ns_) {
    SendRequest(now_ns, stun::Method::kRefresh);
  } else if (now_ns >= channel_due_ns_) {
    SendRequest(now_ns, stun::Method::kChannelBind);
  }
}

int64_t TurnSession::next_timer_ns() const {
  if (pending_) {
    return retransmit_at_ns_;
  }
  if (state_ == State::kReady) {
    return std::min(refresh_due_ns_, channel_due_ns_);
  }
  return INT64_MAX;
}

void TurnSession::OnStunMessage(int64_t now_ns, base::ByteView bytes) {
  if (!pending_) {
    return;
  }
  auto msg = stun::Message::Decode(bytes);
  if (!msg || msg->transaction_id() != transaction_id_ || msg->method() != method_) {
    return;
  }
  if (msg->has_fingerprint() && stun::VerifyFingerprint(*msg) != stun::IntegrityResult::kValid) {
    return;  // corrupted: as if lost
  }
  if (msg->message_class() == stun::MessageClass::kSuccessResponse) {
    if (have_key_) {
      stun::IntegrityResult mi = stun::VerifyMessageIntegrity(*msg, key_);
      if (mi == stun::IntegrityResult::kMismatch || mi == stun::IntegrityResult::kMalformed) {
        Fail(std::string(stun::MethodName(method_)) +
             ": response MESSAGE-INTEGRITY does not verify");
        return;
      }
    }
    pending_ = false;
    OnSuccess(now_ns, *msg);
    return;
  }
  if (msg->message_class() != stun::MessageClass::kErrorResponse) {
    return;
  }
  auto value = msg->FindValue(stun::AttributeType::kErrorCode);
  auto code = value ? stun::DecodeErrorCode(*value) : std::nullopt;
  const uint16_t error = code ? code->code : 0;
  const bool first_challenge = error == stun::error_code::kUnauthenticated && !have_key_;
  const bool stale =
      error == stun::error_code::kStaleNonce && stale_nonce_retries_ < kMaxStaleNonceRetries;
  if (first_challenge || stale) {
    // Plain views rather than optionals: g++ 12 warns (wrongly) about the latter here.
    std::string_view realm;
    std::string_view nonce;
    bool have_nonce = false;
    if (auto v = msg->FindValue(stun::AttributeType::kRealm)) {
      realm = stun::DecodeRealm(*v).value_or(std::string_view());
    }
    if (auto v = msg->FindValue(stun::AttributeType::kNonce)) {
      if (auto decoded = stun::DecodeNonce(*v)) {
        nonce = *decoded;
        have_nonce = true;
      }
    }
    if (!have_nonce || (realm.empty() && realm_.empty())) {
      Fail(std::string(stun::MethodName(method_)) + ": " + ErrorText(*msg) +
           " without REALM/NONCE");
      return;
    }
    nonce_ = std::string(nonce);
    if (!realm.empty() && realm != realm_) {
      realm_ = std::string(realm);
      key_ = stun::LongTermKeyMd5(username_, realm_, password_);
    }
    have_key_ = true;
    const int retries = stale ? stale_nonce_retries_ + 1 : 0;
    SendRequest(now_ns, method_);
    stale_nonce_retries_ = retries;
    return;
  }
  Fail(std::string(stun::MethodName(method_)) + ": " + ErrorText(*msg));
}

void TurnSession::OnSuccess(int64_t now_ns, const stun::Message& msg) {
  switch (method_) {
    case stun::Method::kAllocate: {
      auto relayed_value = msg.FindValue(stun::AttributeType::kXorRelayedAddress);
      auto relayed =
          relayed_value ? stun::DecodeXorAddress(*relayed_value, transaction_id_) : std::nullopt;
      if (!relayed) {
        Fail("Allocate success without XOR-RELAYED-ADDRESS");
        return;
      }
      relayed_ = *relayed;
      auto lifetime_value = msg.FindValue(stun::AttributeType::kLifetime);
      auto lifetime = lifetime_value ? stun::DecodeLifetime(*lifetime_value) : std::nullopt;
      granted_lifetime_ = lifetime.value_or(options_.lifetime_seconds);
      refresh_due_ns_ = now_ns + int64_t{granted_lifetime_} * 1'000'000'000 / 2;
      if (options_.peer.family() != base::Family::kNone) {
        state_ = State::kPermitting;
        SendRequest(now_ns, stun::Method::kCreatePermission);
      } else {
        state_ = State::kReady;
        ready_ns_ = now_ns;
      }
      return;
    }
    case stun::Method::kCreatePermission:
      state_ = State::kBinding;
      SendRequest(now_ns, stun::Method::kChannelBind);
      return;
    case stun::Method::kChannelBind:
      if (state_ == State::kBinding) {
        state_ = State::kReady;
        ready_ns_ = now_ns;
      }
      channel_due_ns_ = now_ns + kChannelRefreshNs;
      return;
    case stun::Method::kRefresh: {
      auto lifetime_value = msg.FindValue(stun::AttributeType::kLifetime);
      auto lifetime = lifetime_value ? stun::DecodeLifetime(*lifetime_value) : std::nullopt;
      granted_lifetime_ = lifetime.value_or(options_.lifetime_seconds);
      refresh_due_ns_ = now_ns + int64_t{granted_lifetime_} * 1'000'000'000 / 2;
      return;
    }
    default:
      return;
  }
}

void TurnSession::Close(int64_t now_ns) {
  const bool allocated =
      state_ == State::kReady || state_ == State::kPermitting || state_ == State::kBinding;
  state_ = State::kClosed;
  if (allocated) {
    SendRequest(now_ns, stun::Method::kRefresh);
  }
  pending_ = false;
}

void TurnSession::Fail(std::string why) {
  pending_ = false;
  state_ = State::kFailed;
  error_ = std::move(why);
}

}  // namespace turnkey::bench
