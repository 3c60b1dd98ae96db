// `turnkey probe URI`: what an admin runs after deploying. For stun: and
// stuns: URIs, sends a STUN Binding request over UDP, TCP or TLS and prints
// the mapped address and the round-trip time, or what went wrong; turn: and
// turns: URIs go to the TURN probe (turn_probe.h).
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "app/commands.h"
#include "app/probe_uri.h"
#include "app/turn_probe.h"
#include "base/crypto.h"
#include "config/duration.h"
#include "net/blocking_client.h"
#include "net/tls_context.h"
#include "stun/attributes.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "stun/stream_framer.h"

namespace turnkey::app {

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const std::string& what) {
  std::printf("  FAILED: %s\n", what.c_str());
  return 1;
}

}  // namespace

int RunProbe(const ProbeArgs& args) {
  auto target = ParseProbeUri(args.uri);
  if (!target) {
    // The URI may hold a password: quote only the scheme.
    std::fprintf(stderr, "turnkey probe: %.*s: %s\n",
                 static_cast<int>(args.uri.find(':') == std::string::npos ? args.uri.size()
                                                                          : args.uri.find(':')),
                 args.uri.c_str(), target.error().message.c_str());
    return 2;
  }
  auto timeout = config::ParseDuration(args.timeout);
  if (!timeout || timeout->count() <= 0) {
    std::fprintf(stderr, "turnkey probe: --timeout: expected a duration such as 3s\n");
    return 2;
  }
  if (!args.ca_file.empty()) {
    // The CA file is input from the command line like the URI: one that
    // cannot be used is bad input (2), not a step that failed (1). It is
    // loaded now, before anything is sent, whatever the transport.
    std::FILE* ca = std::fopen(args.ca_file.c_str(), "rb");
    if (ca == nullptr) {
      std::fprintf(stderr, "turnkey probe: --ca %s: cannot read: %s\n", args.ca_file.c_str(),
                   std::strerror(errno));
      return 2;
    }
    std::fclose(ca);
    if (auto context = net::TlsContext::CreateClient(true, args.ca_file); !context) {
      std::fprintf(stderr, "turnkey probe: --ca: %s\n", context.error().message.c_str());
      return 2;
    }
  }
  if (target->is_turn()) {
    return RunTurnProbe(*target, args, *timeout);
  }
  if (!args.secret.empty()) {
    std::fprintf(stderr, "turnkey probe: --secret is for turn: and turns: URIs\n");
    return 2;
  }
  std::printf("probe %s (%s)\n", args.uri.c_str(), net::TransportName(target->transport));

  net::BlockingClientOptions options;
  options.transport = target->transport;
  options.connect_timeout = *timeout;
  options.verify_peer = !args.insecure;
  if (!args.ca_file.empty()) {
    options.ca_file = args.ca_file;
  }
  auto client = net::BlockingClient::Connect(target->host, target->port, options);
  if (!client) {
    return Fail("connect: " + client.error().message);
  }
  std::printf("  server         : %s\n", (*client)->peer_address().ToString().c_str());
  std::printf("  local address  : %s\n", (*client)->local_address().ToString().c_str());
  if (const std::string version = (*client)->tls_version(); !version.empty()) {
    std::printf("  tls            : %s\n", version.c_str());
  }

  stun::TransactionId txid{};
  if (!base::RandomBytes(txid)) {
    return Fail("no randomness for a transaction id");
  }
  base::Bytes request;
  stun::MessageBuilder builder(request, stun::Method::kBinding, stun::MessageClass::kRequest, txid);
  builder.AddFingerprint();

  // UDP and DTLS: retransmit with a doubling interval from 500 ms (RFC 8489
  // section 6.2.1, RFC 7350 section 4) until the overall timeout. Streams are
  // reliable: send once.
  const bool datagram = (*client)->datagram();
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + *timeout;
  std::chrono::milliseconds rto(500);
  constexpr std::chrono::milliseconds kMaxRto(8000);
  Clock::time_point sent_at = start;
  base::Bytes response;
  for (;;) {
    sent_at = Clock::now();
    if (auto sent = (*client)->Send(builder.message(), *timeout); !sent) {
      return Fail("send: " + sent.error().message);
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (datagram) {
      wait = std::min(wait, rto);
    }
    auto received = datagram ? (*client)->ReceiveDatagram(wait)
                             : (*client)->ReceiveFrame(stun::ClientFrameLength, wait);
    if (received) {
      auto decoded = stun::Message::Decode(*received);
      if (decoded && decoded->transaction_id() == txid) {
        response = std::move(*received);
        break;
      }
      continue;  // someone else's packet: keep waiting
    }
    if ((*client)->ended()) {
      return Fail(received.error().message);  // DTLS: no retransmission can help
    }
    if (!datagram || Clock::now() >= deadline) {
      return Fail("no answer within " + args.timeout + " (" + received.error().message + ")");
    }
    // A datagram refused by the host (ICMP port unreachable) fails the
    // receive at once: wait out the interval before the next transmission.
    const Clock::time_point next = std::min(sent_at + rto, deadline);
    if (next > Clock::now()) {
      std::this_thread::sleep_until(next);
    }
    if (Clock::now() >= deadline) {
      return Fail("no answer within " + args.timeout + " (" + received.error().message + ")");
    }
    rto = std::min(rto * 2, kMaxRto);
  }
  const double rtt_ms = std::chrono::duration<double, std::milli>(Clock::now() - sent_at).count();

  auto msg = stun::Message::Decode(response);
  if (!msg) {
    return Fail(std::string("bad response: ") + stun::DecodeErrorText(msg.error()));
  }
  if (msg->has_fingerprint() && stun::VerifyFingerprint(*msg) != stun::IntegrityResult::kValid) {
    return Fail("response FINGERPRINT does not match");
  }
  if (msg->message_class() == stun::MessageClass::kErrorResponse) {
    auto code = msg->FindValue(stun::AttributeType::kErrorCode);
    auto value = code ? stun::DecodeErrorCode(*code) : std::nullopt;
    return Fail("error response " +
                (value ? std::to_string(value->code) + " " + std::string(value->reason)
                       : std::string("without ERROR-CODE")));
  }
  if (msg->message_class() != stun::MessageClass::kSuccessResponse ||
      msg->method() != stun::Method::kBinding) {
    return Fail("unexpected response type");
  }
  auto xma = msg->FindValue(stun::AttributeType::kXorMappedAddress);
  std::optional<base::SocketAddress> mapped =
      xma ? stun::DecodeXorAddress(*xma, txid) : std::nullopt;
  if (!mapped) {
    auto ma = msg->FindValue(stun::AttributeType::kMappedAddress);
    mapped = ma ? stun::DecodeAddress(*ma) : std::nullopt;
  }
  if (!mapped) {
    return Fail("success response without a mapped address");
  }
  std::printf("  mapped address : %s\n", mapped->ToString().c_str());
  std::printf("  rtt            : %.2f ms\n", rtt_ms);
  if (auto software = msg->FindValue(stun::AttributeType::kSoftware)) {
    std::printf("  software       : %.*s\n", static_cast<int>(software->size()),
                reinterpret_cast<const char*>(software->data()));
  }
  // A server doing RFC 5780 NAT behavior discovery names where the answer
  // came from and its second address: what a deployment check wants to see.
  for (const auto& [type, label] :
       {std::pair{stun::AttributeType::kResponseOrigin, "response origin"},
        std::pair{stun::AttributeType::kOtherAddress, "other address  "}}) {
    auto value = msg->FindValue(type);
    auto address = value ? stun::DecodeAddress(*value) : std::nullopt;
    if (address) {
      std::printf("  %s: %s (RFC 5780)\n", label, address->ToString().c_str());
    }
  }
  std::printf("  fingerprint    : %s\n", msg->has_fingerprint() ? "valid" : "absent");
  std::printf("  ok\n");
  return 0;
}

}  // namespace turnkey::app
