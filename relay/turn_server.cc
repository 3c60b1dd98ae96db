#include "relay/turn_server.h"

#include <utility>

#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"

namespace turnkey::relay {

const char* ClientTransportName(ClientTransport transport) {
  switch (transport) {
    case ClientTransport::kUdp: return "udp";
    case ClientTransport::kTcp: return "tcp";
    case ClientTransport::kTls: return "tls";
  }
  return "udp";
}

TurnServer::TurnServer(TurnServerOptions options, ClientSink& sink)
    : options_(std::move(options)), sink_(sink) {
  out_.reserve(1500);
}

void TurnServer::OnClientMessage(base::MonoTime /*now*/, const FiveTuple& from,
                                 base::ByteView data) {
  auto decoded = stun::Message::Decode(data);
  // A datagram carries exactly one message (RFC 8489 section 6.2.1); trailing
  // bytes mean it is not one of ours.
  if (!decoded || decoded->size() != data.size()) {
    ++counters_.dropped_malformed;
    return;
  }
  const stun::Message& msg = *decoded;
  // RFC 8489 section 7.3: a FINGERPRINT that does not match means the packet
  // is not STUN (or was damaged): discard silently.
  if (msg.has_fingerprint() &&
      stun::VerifyFingerprint(msg) != stun::IntegrityResult::kValid) {
    ++counters_.dropped_fingerprint;
    return;
  }
  if (!msg.IsRequest()) {
    // Binding indications are keepalives (RFC 8489 section 6.3.2): no answer.
    // Responses are never sent to a server.
    ++counters_.dropped_unexpected;
    return;
  }

  // RFC 8489 section 6.3.1: unknown comprehension-required attributes in a
  // request get 420 with UNKNOWN-ATTRIBUTES.
  if (!msg.unknown_required().empty()) {
    SendError(from, msg, 420, {});
    return;
  }

  if (msg.method() != stun::Method::kBinding) {
    // TURN methods arrive with the relay; until then a request for a method
    // this server does not serve gets 400 (RFC 8489 section 6.3.1).
    SendError(from, msg, 400, "Unsupported method");
    return;
  }

  // RFC 8489 section 6.3.1.1: the success response carries the client's
  // transport address as XOR-MAPPED-ADDRESS. FINGERPRINT is added when the
  // request had one, since such a client may be demultiplexing on it.
  out_.clear();
  auto b = stun::MessageBuilder::SuccessResponse(out_, msg);
  b.AddXorMappedAddress(from.client);
  if (!options_.software.empty()) {
    b.AddSoftware(options_.software);
  }
  if (msg.has_fingerprint()) {
    b.AddFingerprint();
  }
  if (b.ok()) {
    ++counters_.binding_requests;
    sink_.SendToClient(from, b.message());
  }
}

void TurnServer::SendError(const FiveTuple& to, const stun::Message& request, uint16_t code,
                           std::string_view reason) {
  out_.clear();
  auto b = stun::MessageBuilder::ErrorResponse(out_, request, code, reason);
  if (request.has_fingerprint()) {
    b.AddFingerprint();
  }
  if (b.ok()) {
    ++counters_.error_responses;
    sink_.SendToClient(to, b.message());
  }
}

}  // namespace turnkey::relay
