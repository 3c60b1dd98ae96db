#include "app/turn_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "base/crypto.h"
#include "stun/attributes.h"
#include "stun/channel_data.h"
#include "stun/integrity.h"
#include "stun/stream_framer.h"

namespace turnkey::app {

namespace {

// RFC 8489 s9.2: the nonce cookie that announces security features, followed
// by the 24 feature bits in 4 base64 characters.
constexpr std::string_view kNonceCookie = "obMatJos2";
// RFC 8489 s18.1: the first (most significant) feature bit.
constexpr uint8_t kPasswordAlgorithmsBit = 0x80;
// RFC 8489 s6.2.1: the initial retransmission timeout over UDP.
constexpr std::chrono::milliseconds kInitialRto{500};

bool NonceAnnouncesPasswordAlgorithms(std::string_view nonce) {
  if (!nonce.starts_with(kNonceCookie) || nonce.size() < kNonceCookie.size() + 4) {
    return false;
  }
  auto bits = base::Base64Decode(nonce.substr(kNonceCookie.size(), 4));
  return bits && !bits->empty() && ((*bits)[0] & kPasswordAlgorithmsBit) != 0;
}

TurnError ErrorFromResponse(const stun::Message& msg) {
  auto value = msg.FindValue(stun::AttributeType::kErrorCode);
  auto code = value ? stun::DecodeErrorCode(*value) : std::nullopt;
  if (!code) {
    return TurnError{0, "error response without a valid ERROR-CODE"};
  }
  std::string reason(code->reason);
  if (reason.empty()) {
    reason = stun::DefaultReasonPhrase(code->code);
  }
  return TurnError{code->code, fmt::format("{} {}", code->code, reason)};
}

}  // namespace

const char* IntegrityModeName(IntegrityMode mode) {
  switch (mode) {
    case IntegrityMode::kNone:
      return "no credentials asked for";
    case IntegrityMode::kMd5Sha1:
      return "MD5 key, MESSAGE-INTEGRITY";
    case IntegrityMode::kMd5Sha256:
      return "MD5 key, MESSAGE-INTEGRITY-SHA256";
    case IntegrityMode::kSha256Sha256:
      return "SHA-256 key, MESSAGE-INTEGRITY-SHA256";
  }
  return "unknown";
}

base::Result<std::unique_ptr<TurnClient>> TurnClient::Connect(const std::string& host,
                                                              uint16_t port,
                                                              const TurnClientOptions& options) {
  auto connection = net::BlockingClient::Connect(host, port, options.connection);
  if (!connection) {
    return std::unexpected(connection.error());
  }
  return std::unique_ptr<TurnClient>(new TurnClient(std::move(*connection), options));
}

TurnStatus TurnClient::LearnChallenge(const stun::Message& response) {
  auto nonce_value = response.FindValue(stun::AttributeType::kNonce);
  auto nonce = nonce_value ? stun::DecodeNonce(*nonce_value) : std::nullopt;
  if (!nonce || nonce->empty()) {
    return std::unexpected(TurnError{0, "the server's challenge has no NONCE"});
  }
  nonce_ = std::string(*nonce);
  if (auto realm_value = response.FindValue(stun::AttributeType::kRealm)) {
    auto realm = stun::DecodeRealm(*realm_value);
    if (!realm) {
      return std::unexpected(TurnError{0, "the server's challenge has a malformed REALM"});
    }
    realm_ = std::string(*realm);
  } else if (mode_ == IntegrityMode::kNone) {
    return std::unexpected(TurnError{0, "the server's challenge has no REALM"});
  }

  // RFC 8489 s9.2.5: password algorithms are used only when the nonce cookie
  // announces them and the list is there; the client takes one it supports.
  password_algorithms_.clear();
  algorithm_ = stun::PasswordAlgorithmId::kMd5;
  mode_ = IntegrityMode::kMd5Sha1;
  auto algorithms_value = response.FindValue(stun::AttributeType::kPasswordAlgorithms);
  if (algorithms_value && NonceAnnouncesPasswordAlgorithms(nonce_)) {
    auto algorithms = stun::DecodePasswordAlgorithms(*algorithms_value);
    if (!algorithms) {
      return std::unexpected(TurnError{0, "the server sent malformed PASSWORD-ALGORITHMS"});
    }
    // "the first algorithm supported on the list": the server's order wins.
    bool chosen = false;
    for (const stun::PasswordAlgorithm& offered : algorithms->algorithms()) {
      if (offered.id == stun::PasswordAlgorithmId::kSha256 ||
          offered.id == stun::PasswordAlgorithmId::kMd5) {
        algorithm_ = offered.id;
        chosen = true;
        break;
      }
    }
    if (!chosen) {
      return std::unexpected(
          TurnError{0, "the server offers no password algorithm this client knows"});
    }
    mode_ = algorithm_ == stun::PasswordAlgorithmId::kSha256 ? IntegrityMode::kSha256Sha256
                                                             : IntegrityMode::kMd5Sha256;
    password_algorithms_.assign(algorithms_value->begin(), algorithms_value->end());
  }
  if (algorithm_ == stun::PasswordAlgorithmId::kSha256) {
    auto key = stun::LongTermKeySha256(options_.username, realm_, options_.password);
    key_.assign(key.begin(), key.end());
  } else {
    auto key = stun::LongTermKeyMd5(options_.username, realm_, options_.password);
    key_.assign(key.begin(), key.end());
  }
  return {};
}

TurnResult<base::Bytes> TurnClient::Transact(
    stun::Method method, const std::function<void(stun::MessageBuilder&)>& add) {
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  int nonce_retries = 0;
  for (;;) {
    stun::TransactionId txid{};
    if (!base::RandomBytes(txid)) {
      return std::unexpected(TurnError{0, "no randomness for a transaction id"});
    }
    base::Bytes request;
    stun::MessageBuilder builder(request, method, stun::MessageClass::kRequest, txid);
    add(builder);
    const bool authenticated = mode_ != IntegrityMode::kNone;
    if (authenticated) {
      builder.AddUsername(options_.username);
      builder.AddRealm(realm_);
      builder.AddNonce(nonce_);
      if (!password_algorithms_.empty()) {
        builder.AddAttribute(stun::AttributeType::kPasswordAlgorithms, password_algorithms_);
        builder.AddPasswordAlgorithm(algorithm_);
      }
      if (mode_ == IntegrityMode::kMd5Sha1) {
        builder.AddMessageIntegrity(key_);
      } else {
        builder.AddMessageIntegritySha256(key_);
      }
    }
    builder.AddFingerprint();
    if (!builder.ok()) {
      return std::unexpected(TurnError{
          0, std::string("cannot build the request: ") + stun::BuildErrorText(builder.error())});
    }
    auto response = Exchange(builder.message(), txid, deadline);
    if (!response) {
      return std::unexpected(response.error());
    }
    auto msg = stun::Message::Decode(*response);
    if (!msg || msg->method() != method) {
      return std::unexpected(TurnError{0, "the response does not match the request"});
    }
    if (msg->message_class() == stun::MessageClass::kSuccessResponse) {
      if (authenticated) {
        // RFC 8489 s9.2.5: a response that does not verify did not come from
        // a server that knows the key.
        const stun::IntegrityResult check = msg->Has(stun::AttributeType::kMessageIntegritySha256)
                                                ? stun::VerifyMessageIntegritySha256(*msg, key_)
                                                : stun::VerifyMessageIntegrity(*msg, key_);
        if (check != stun::IntegrityResult::kValid) {
          return std::unexpected(TurnError{0, fmt::format("the success response's integrity is {}",
                                                          stun::IntegrityResultName(check))});
        }
      }
      return std::move(*response);
    }
    TurnError error = ErrorFromResponse(*msg);
    if (error.code == stun::error_code::kUnauthenticated && !authenticated) {
      if (auto learned = LearnChallenge(*msg); !learned) {
        return std::unexpected(learned.error());
      }
      continue;
    }
    if (error.code == stun::error_code::kStaleNonce && authenticated &&
        nonce_retries < kMaxNonceRetries) {
      ++nonce_retries;
      ++stale_nonce_retries_;
      if (auto learned = LearnChallenge(*msg); !learned) {
        return std::unexpected(learned.error());
      }
      continue;
    }
    return std::unexpected(std::move(error));
  }
}

TurnResult<base::Bytes> TurnClient::Exchange(base::ByteView request,
                                             const stun::TransactionId& txid,
                                             Clock::time_point deadline) {
  std::chrono::milliseconds rto = kInitialRto;
  for (;;) {
    if (Clock::now() >= deadline) {
      return std::unexpected(TurnError{0, "no answer from the server in time"});
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (auto sent = connection_->Send(request, left); !sent) {
      return std::unexpected(TurnError{0, sent.error().message});
    }
    const Clock::time_point resend_at =
        stream() ? deadline : std::min(deadline, Clock::now() + rto);
    for (;;) {
      auto got = ReadOne(resend_at);
      if (!got) {
        if (Clock::now() >= resend_at) {
          break;  // retransmit (UDP) or give up at the deadline
        }
        return std::unexpected(TurnError{0, "no answer from the server: " + got.error().message});
      }
      if (got->empty()) {
        continue;
      }
      auto msg = stun::Message::Decode(*got);
      if (msg && msg->transaction_id() == txid) {
        return std::move(*got);
      }
    }
    rto *= 2;
  }
}

base::Result<base::Bytes> TurnClient::ReadOne(Clock::time_point deadline) {
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  wait = std::max(wait, std::chrono::milliseconds(0));
  auto packet = stream() ? connection_->ReceiveFrame(stun::ClientFrameLength, wait)
                         : connection_->ReceiveDatagram(wait);
  if (!packet) {
    return std::unexpected(packet.error());
  }
  if (packet->empty()) {
    return base::Bytes{};
  }
  // RFC 8656 s12: the first two bits tell ChannelData (01) from STUN (00).
  if (((*packet)[0] & 0xC0) == 0x40) {
    auto cd = stun::DecodeChannelData(*packet, stream() ? stun::ChannelDataPadding::kRequired
                                                        : stun::ChannelDataPadding::kOptional);
    if (cd) {
      auto bound = channels_.find(cd->channel);
      if (bound != channels_.end()) {
        inbound_.push_back(
            RelayedData{bound->second, cd->channel, base::Bytes(cd->data.begin(), cd->data.end())});
      }
    }
    return base::Bytes{};
  }
  auto msg = stun::Message::Decode(*packet);
  if (!msg) {
    return base::Bytes{};
  }
  if (msg->message_class() == stun::MessageClass::kIndication &&
      msg->method() == stun::Method::kData) {
    auto peer_value = msg->FindValue(stun::AttributeType::kXorPeerAddress);
    auto peer =
        peer_value ? stun::DecodeXorAddress(*peer_value, msg->transaction_id()) : std::nullopt;
    auto data = msg->FindValue(stun::AttributeType::kData);
    if (peer && data) {
      inbound_.push_back(RelayedData{*peer, std::nullopt, base::Bytes(data->begin(), data->end())});
    }
    return base::Bytes{};
  }
  if (msg->message_class() == stun::MessageClass::kSuccessResponse ||
      msg->message_class() == stun::MessageClass::kErrorResponse) {
    return std::move(*packet);
  }
  return base::Bytes{};
}

TurnResult<AllocateResult> TurnClient::Allocate(std::optional<stun::AddressFamily> family) {
  auto response = Transact(stun::Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.AddRequestedTransport(stun::kTransportUdp);
    if (family) {
      b.AddRequestedAddressFamily(*family);
    }
  });
  if (!response) {
    return std::unexpected(response.error());
  }
  auto msg = stun::Message::Decode(*response);
  AllocateResult result;
  auto relayed = msg->FindValue(stun::AttributeType::kXorRelayedAddress);
  auto relayed_address =
      relayed ? stun::DecodeXorAddress(*relayed, msg->transaction_id()) : std::nullopt;
  if (!relayed_address) {
    return std::unexpected(TurnError{0, "Allocate success without a valid XOR-RELAYED-ADDRESS"});
  }
  result.relayed = *relayed_address;
  if (auto mapped = msg->FindValue(stun::AttributeType::kXorMappedAddress)) {
    if (auto address = stun::DecodeXorAddress(*mapped, msg->transaction_id())) {
      result.mapped = *address;
    }
  }
  if (auto lifetime = msg->FindValue(stun::AttributeType::kLifetime)) {
    result.lifetime_seconds = stun::DecodeLifetime(*lifetime).value_or(0);
  }
  return result;
}

TurnResult<uint32_t> TurnClient::Refresh(uint32_t lifetime_seconds) {
  auto response = Transact(stun::Method::kRefresh,
                           [&](stun::MessageBuilder& b) { b.AddLifetime(lifetime_seconds); });
  if (!response) {
    // RFC 8656 s8.3: when a retransmitted deleting Refresh finds the
    // allocation already gone, the 437 means the deletion worked.
    if (lifetime_seconds == 0 && response.error().code == stun::error_code::kAllocationMismatch) {
      return uint32_t{0};
    }
    return std::unexpected(response.error());
  }
  auto msg = stun::Message::Decode(*response);
  auto lifetime = msg->FindValue(stun::AttributeType::kLifetime);
  return lifetime ? stun::DecodeLifetime(*lifetime).value_or(0) : uint32_t{0};
}

TurnStatus TurnClient::CreatePermission(const base::SocketAddress& peer) {
  auto response = Transact(stun::Method::kCreatePermission,
                           [&](stun::MessageBuilder& b) { b.AddXorPeerAddress(peer); });
  if (!response) {
    return std::unexpected(response.error());
  }
  return {};
}

TurnStatus TurnClient::ChannelBind(uint16_t channel, const base::SocketAddress& peer) {
  auto response = Transact(stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
    b.AddChannelNumber(channel);
    b.AddXorPeerAddress(peer);
  });
  if (!response) {
    return std::unexpected(response.error());
  }
  channels_[channel] = peer;
  return {};
}

base::Status TurnClient::SendIndication(const base::SocketAddress& peer, base::ByteView data) {
  stun::TransactionId txid{};
  if (!base::RandomBytes(txid)) {
    return base::Internal("no randomness for a transaction id");
  }
  base::Bytes out;
  stun::MessageBuilder builder(out, stun::Method::kSend, stun::MessageClass::kIndication, txid);
  builder.AddXorPeerAddress(peer);
  builder.AddData(data);
  if (!builder.ok()) {
    return base::InvalidArgument(std::string("cannot build a Send indication: ") +
                                 stun::BuildErrorText(builder.error()));
  }
  return connection_->Send(builder.message(), options_.timeout);
}

base::Status TurnClient::SendChannelData(uint16_t channel, base::ByteView data) {
  if (data.size() > 0xFFFF) {
    return base::InvalidArgument("ChannelData carries at most 65535 bytes");
  }
  base::Bytes out;
  stun::AppendChannelData(
      out, channel, data,
      stream() ? stun::ChannelDataPadding::kRequired : stun::ChannelDataPadding::kOptional);
  return connection_->Send(out, options_.timeout);
}

base::Result<RelayedData> TurnClient::Receive(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (inbound_.empty()) {
    auto got = ReadOne(deadline);
    if (!got) {
      if (Clock::now() >= deadline) {
        return base::Unavailable("nothing relayed back in time");
      }
      return std::unexpected(got.error());
    }
  }
  RelayedData next = std::move(inbound_.front());
  inbound_.pop_front();
  return next;
}

}  // namespace turnkey::app
