#include "signal/engineio_socket.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "base/crypto.h"
#include "base/log.h"
#include "base/utf8.h"
#include "net/http_request.h"
#include "net/websocket_session.h"
#include "signal/engineio_server.h"

namespace turnkey::signal {

namespace {

using State = EngineIoSocket::State;

const char* StateName(State state) {
  switch (state) {
    case State::kNew:
      return "new";
    case State::kPolling:
      return "polling";
    case State::kUpgrading:
      return "upgrading";
    case State::kWebSocket:
      return "websocket";
    case State::kClosing:
      return "closing";
    case State::kClosed:
      return "closed";
  }
  return "unknown";
}

bool IsLegalTransition(State from, State to) {
  switch (from) {
    case State::kNew:
      return to == State::kPolling || to == State::kWebSocket || to == State::kClosed;
    case State::kPolling:
      return to == State::kUpgrading || to == State::kClosing || to == State::kClosed;
    case State::kUpgrading:
      return to == State::kPolling || to == State::kWebSocket || to == State::kClosing ||
             to == State::kClosed;
    case State::kWebSocket:
    case State::kClosing:
      return to == State::kClosed;
    case State::kClosed:
      return false;
  }
  return false;
}

void AddHeaders(net::HttpResponse& response, const net::HttpHeaders& extra) {
  for (const auto& [name, value] : extra) {
    response.headers.Set(name, value);
  }
}

// Section 1.6: GET answers are text/plain, never cached.
net::HttpResponse PollResponse(std::span<const EngineIoPacket> packets,
                               const net::HttpHeaders& cors) {
  net::HttpResponse response =
      net::HttpResponse::Text(200, EncodePollingPayload(packets), "text/plain; charset=UTF-8");
  response.headers.Set("Cache-Control", "no-store");
  AddHeaders(response, cors);
  return response;
}

EngineIoPacket Noop() { return EngineIoPacket::Text(EngineIoPacketType::kNoop); }
EngineIoPacket ClosePacket() { return EngineIoPacket::Text(EngineIoPacketType::kClose); }

}  // namespace

const char* EngineIoTransportName(EngineIoTransport transport) {
  return transport == EngineIoTransport::kWebSocket ? "websocket" : "polling";
}

const char* EngineIoCloseReasonName(EngineIoCloseReason reason) {
  switch (reason) {
    case EngineIoCloseReason::kForcedClose:
      return "forced close";
    case EngineIoCloseReason::kServerShutdown:
      return "server shutting down";
    case EngineIoCloseReason::kTransportClose:
      return "transport close";
    case EngineIoCloseReason::kTransportError:
      return "transport error";
    case EngineIoCloseReason::kPingTimeout:
      return "ping timeout";
    case EngineIoCloseReason::kParseError:
      return "parse error";
  }
  return "unknown";
}

std::string NewRandomId() {
  std::array<uint8_t, 11> bytes{};
  if (!base::RandomBytes(bytes)) {
    TK_LOG_ERROR("signal: the random number generator failed");
    std::abort();
  }
  return base::Base64UrlEncode(bytes);
}

net::HttpResponse EngineIoErrorResponse(EngineIoRequestError error, const net::HttpHeaders& extra) {
  net::HttpResponse response = net::HttpResponse::Text(
      EngineIoRequestErrorStatus(error), EncodeEngineIoRequestError(error), "application/json");
  AddHeaders(response, extra);
  return response;
}

EngineIoSocket::EngineIoSocket(EngineIoServer& server, std::string id, EngineIoHandshake handshake)
    : server_(server), id_(std::move(id)), handshake_(std::move(handshake)) {}

EngineIoSocket::~EngineIoSocket() {
  // A session freed by Forget() is closed and out of the queue already, and
  // may be freed after the server (EventLoop::DeleteLater).
  if (heartbeat_.scheduled()) {
    server_.heartbeats_.Cancel(heartbeat_);
  }
}

bool EngineIoSocket::is_open() const {
  return state_ == State::kPolling || state_ == State::kUpgrading || state_ == State::kWebSocket;
}

EngineIoTransport EngineIoSocket::transport() const {
  return state_ == State::kWebSocket ? EngineIoTransport::kWebSocket : EngineIoTransport::kPolling;
}

void EngineIoSocket::SetState(State next) {
  if (!IsLegalTransition(state_, next)) {
    TK_LOG_ERROR("engine.io session: illegal transition {} -> {}", StateName(state_),
                 StateName(next));
    assert(false && "illegal EngineIoSocket state transition");
  }
  State previous = state_;
  state_ = next;
  server_.OnStateChange(previous, next);
}

void EngineIoSocket::Start() { RestartHeartbeat(); }

void EngineIoSocket::RestartHeartbeat() {
  awaiting_pong_ = false;
  pong_deadline_ =
      server_.clock_.Now() + server_.options_.ping_interval + server_.options_.ping_timeout;
  server_.heartbeats_.Schedule(heartbeat_, server_.options_.ping_interval);
}

bool EngineIoSocket::ExpireIfOverdue() {
  if (!is_open() || server_.clock_.Now() < pong_deadline_) {
    return false;
  }
  ++server_.stats_.ping_timeouts;
  CloseWith(EngineIoCloseReason::kPingTimeout);
  return true;
}

bool EngineIoSocket::SendText(std::string_view text) {
  if (state_ == State::kWebSocket) {
    // Section 1.4: "4" and the text, framed at once (no packet in between).
    if (ws_ == nullptr) {
      return false;
    }
    static constexpr char kMessage[] = {
        static_cast<char>('0' + static_cast<int>(EngineIoPacketType::kMessage))};
    return ws_->SendText(std::string_view(kMessage, 1), text);
  }
  return Send(EngineIoPacket::Text(EngineIoPacketType::kMessage, text));
}

bool EngineIoSocket::SendBinary(base::ByteView data) { return Send(EngineIoPacket::Binary(data)); }

bool EngineIoSocket::Send(EngineIoPacket packet) {
  switch (state_) {
    case State::kPolling:
    case State::kUpgrading:
      if (overflowed_) {
        return false;
      }
      // Section 1.7: until "5" everything goes to polling.
      Enqueue(std::move(packet));
      if (queued_bytes_ > std::max(kMaxQueuedBytes, 2 * server_.options_.max_payload)) {
        overflowed_ = true;
        ++server_.stats_.queue_overflows;
        ClearQueue();
        server_.heartbeats_.Schedule(heartbeat_, std::chrono::milliseconds(0));
        return false;
      }
      FlushPoll();
      return true;
    case State::kWebSocket:
      return ws_ != nullptr && WriteWebSocket(*ws_, ws_binary_, packet);
    case State::kNew:
    case State::kClosing:
    case State::kClosed:
      return false;
  }
  return false;
}

bool EngineIoSocket::WriteWebSocket(net::WebSocketSession& session, bool binary_frames,
                                    const EngineIoPacket& packet) {
  if (packet.binary && binary_frames) {
    return session.SendBinary(base::AsBytes(packet.data));
  }
  // Section 1.4: text packets, and binary ones for b64=1 clients, as text.
  return session.SendText(EncodeEngineIoText(packet));
}

void EngineIoSocket::Close() { CloseWith(EngineIoCloseReason::kForcedClose); }

void EngineIoSocket::MarkAccepted() { server_.EndPending(*this); }

void EngineIoSocket::MarkPending() {
  if (is_open()) {
    server_.BeginPending(*this);
  }
}

void EngineIoSocket::CloseWith(EngineIoCloseReason reason) {
  if (!is_open()) {
    return;
  }
  server_.heartbeats_.Cancel(heartbeat_);
  StopUpgradeTimer();
  // After "3probe" the client pauses its polling and, once its requests are
  // answered, moves to the probe with "5"; engine.io-client never polls
  // again if the probe closes before that. Without a GET to carry "1", a
  // graceful close then waits for that "5" (OnWebSocketText).
  const bool client_moving = state_ == State::kUpgrading && probed_ && probe_ != nullptr;
  if (state_ == State::kWebSocket) {
    // Section 1.7: over WebSocket the server just closes the socket.
    if (ws_ != nullptr) {
      ws_->Close();
    }
    SetState(State::kClosed);
  } else {
    const bool graceful = reason == EngineIoCloseReason::kForcedClose ||
                          reason == EngineIoCloseReason::kServerShutdown;
    // Section 1.6: a held GET learns of the close at once; "6" when the
    // client asked for it, "1" when the server ends the session. A graceful
    // close first delivers what is queued, over as many GETs as the answer
    // limits need (FlushPoll); the session lingers for them.
    if (!graceful) {
      AnswerPoll(
          std::array{reason == EngineIoCloseReason::kTransportClose ? Noop() : ClosePacket()});
      SetState(State::kClosed);
    } else if (AnswerPollWithClose()) {
      SetState(State::kClosed);
    } else {
      SetState(State::kClosing);
      server_.heartbeats_.Schedule(heartbeat_, server_.options_.close_linger);
    }
  }
  if (state_ != State::kClosing || !client_moving) {
    DropProbe();
  }
  if (state_ == State::kClosed) {
    ClearQueue();
  }
  ++server_.stats_.closed.at(static_cast<size_t>(reason));
  if (server_.callbacks_.on_close) {
    server_.callbacks_.on_close(*this, reason);
  }
  if (state_ == State::kClosed) {
    server_.Forget(id_);
  }
}

void EngineIoSocket::Finish() {
  if (state_ != State::kClosing) {
    return;
  }
  server_.heartbeats_.Cancel(heartbeat_);
  DropProbe();
  ClearQueue();
  SetState(State::kClosed);
  server_.Forget(id_);
}

void EngineIoSocket::DropProbe() {
  if (probe_ != nullptr) {
    probe_->Close();
  }
  probe_ = nullptr;
  probe_link_ = 0;
  probed_ = false;
}

bool EngineIoSocket::AnswerPoll(std::span<const EngineIoPacket> packets) {
  if (!poll_) {
    return false;
  }
  HeldPoll poll = std::move(*poll_);
  poll_.reset();
  // The held GET's connection may be gone (the server cannot notice while it
  // holds the request); the packets then wait for the client's next GET.
  if (!poll.responder.is_pending()) {
    return false;
  }
  poll.responder.Respond(PollResponse(packets, poll.cors));
  return true;
}

size_t EngineIoSocket::PollBatchSize() const {
  // At most kMaxPacketsPerPoll per answer, and no more than maxPayload bytes
  // of body unless one packet alone is larger; the rest waits for the next
  // GET, which the client sends as soon as this one is answered.
  const uint64_t max_bytes = server_.options_.max_payload;
  size_t count = 0;
  uint64_t bytes = 0;
  while (count < queue_.size() && count < kMaxPacketsPerPoll) {
    const uint64_t size = (count > 0 ? 1 : 0) + EngineIoTextSize(queue_[count]);
    if (count > 0 && bytes + size > max_bytes) {
      break;
    }
    bytes += size;
    ++count;
  }
  return count;
}

void EngineIoSocket::FlushPoll() {
  if (queue_.empty()) {
    return;
  }
  const size_t count = PollBatchSize();
  if (AnswerPoll(std::span<const EngineIoPacket>(queue_.data(), count))) {
    DropQueued(count);
  }
}

void EngineIoSocket::Enqueue(EngineIoPacket packet) {
  queued_bytes_ += packet.data.size() + kQueuedPacketOverhead;
  queue_.push_back(std::move(packet));
}

void EngineIoSocket::DropQueued(size_t count) {
  for (size_t i = 0; i < count; ++i) {
    queued_bytes_ -= queue_[i].data.size() + kQueuedPacketOverhead;
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
}

void EngineIoSocket::ClearQueue() {
  queue_.clear();
  queued_bytes_ = 0;
}

bool EngineIoSocket::AnswerPollWithClose() {
  queue_.push_back(ClosePacket());
  const size_t count = PollBatchSize();
  if (count == queue_.size()) {
    if (AnswerPoll(queue_)) {
      ClearQueue();
      return true;
    }
    queue_.pop_back();
    return false;
  }
  // Too much for one answer: this GET takes a batch, "1" comes later.
  queue_.pop_back();
  if (AnswerPoll(std::span<const EngineIoPacket>(queue_.data(), count))) {
    DropQueued(count);
  }
  return false;
}

void EngineIoSocket::SendUpgradeNoop() {
  if (probed_ && queue_.empty()) {
    AnswerPoll(std::array{Noop()});
  }
}

void EngineIoSocket::RejectAndClose(net::Responder& responder, net::HttpResponse response) {
  ++server_.stats_.rejected;
  responder.Respond(std::move(response));
  CloseWith(EngineIoCloseReason::kTransportError);
}

void EngineIoSocket::OnPollGet(net::Responder responder, net::HttpHeaders cors) {
  if (poll_ && poll_->responder.is_pending()) {
    // Section 1.6: one GET at a time; a second one ends the session and the
    // held one is answered "1".
    RejectAndClose(responder, EngineIoErrorResponse(EngineIoRequestError::kBadRequest, cors));
    return;
  }
  poll_ = std::make_unique<HeldPoll>(HeldPoll{std::move(responder), std::move(cors)});
  // Section 1.8: a held GET the client drops ends the session. The watch
  // goes with the responder once it is answered (or this socket is freed).
  poll_->responder.OnConnectionLost([this] { OnPollLost(); });
  if (state_ == State::kClosing) {
    // A GET after a server-side close: what was queued, then "1" ("6\x1e1"
    // when nothing was, as the reference answers). A queue too long for one
    // answer takes more GETs, each within the linger time.
    if (queue_.empty()) {
      Enqueue(Noop());
    }
    if (AnswerPollWithClose()) {
      Finish();
    } else {
      server_.heartbeats_.Schedule(heartbeat_, server_.options_.close_linger);
    }
    return;
  }
  FlushPoll();
}

void EngineIoSocket::OnPollLost() {
  // While upgrading the WebSocket is about to take over; a client may give
  // up its last GET then.
  if (state_ == State::kPolling) {
    CloseWith(EngineIoCloseReason::kTransportError);
  }
}

std::shared_ptr<void> EngineIoSocket::OnPostBodyPending() {
  if (state_ != State::kPolling && state_ != State::kUpgrading) {
    return nullptr;
  }
  if (!post_in_flight_.expired()) {
    // Section 1.6: one POST at a time; the session ends now, as the
    // reference's does. Both POSTs are answered once their bodies are in:
    // 400 "Session ID unknown", as the sid is gone by then.
    TK_LOG_DEBUG("engine.io session: a second POST while one is in flight");
    CloseWith(EngineIoCloseReason::kTransportError);
    return nullptr;
  }
  auto token = std::make_shared<bool>(true);
  post_in_flight_ = token;
  return token;
}

void EngineIoSocket::OnPollPost(const net::HttpRequest& request, net::Responder responder,
                                net::HttpHeaders cors) {
  if (!post_in_flight_.expired()) {
    // Section 1.6: one POST at a time, and another one's body is still
    // arriving (the token of this one is released before it gets here).
    RejectAndClose(responder, EngineIoErrorResponse(EngineIoRequestError::kBadRequest, cors));
    return;
  }
  if (request.body.size() > server_.PayloadLimit(*this)) {
    // Section 1.6: 413. The client treats the failed POST as a transport
    // error and reconnects, so the session is of no further use.
    net::HttpResponse response = net::HttpResponse::Error(413);
    AddHeaders(response, cors);
    RejectAndClose(responder, std::move(response));
    return;
  }
  auto content_type = request.Header("Content-Type");
  if (content_type && content_type->starts_with("application/octet-stream")) {
    // Section 1.2: v4 clients always POST text.
    RejectAndClose(responder, EngineIoErrorResponse(EngineIoRequestError::kBadRequest, cors));
    return;
  }
  // The body is text/plain; charset=UTF-8. Ill-formed bytes (a client that
  // sent Latin-1) become U+FFFD, as the reference's string decoding does, so
  // a text message is well-formed UTF-8 on either transport.
  std::string repaired;
  std::string_view body = request.body;
  if (!base::IsValidUtf8(body)) {
    repaired = base::ToValidUtf8(body);
    body = repaired;
  }
  std::vector<EngineIoPacket> packets;
  auto decoded = DecodePollingPayload(body, packets);
  for (const EngineIoPacket& packet : packets) {
    if (!is_open() || overflowed_) {
      break;
    }
    OnPacket(packet);
  }
  if (!decoded) {
    // Section 1.4: the packets before the bad one count, then the session ends.
    TK_LOG_DEBUG("engine.io session: bad POST payload: {}", EngineIoErrorText(decoded.error()));
    responder.Respond(EngineIoErrorResponse(EngineIoRequestError::kBadRequest, cors));
    if (is_open()) {
      ++server_.stats_.parse_errors;
      CloseWith(EngineIoCloseReason::kParseError);
    }
    return;
  }
  // "text/html" as the reference answers (section 1.6).
  net::HttpResponse response = net::HttpResponse::Text(200, "ok", "text/html");
  response.headers.Set("Cache-Control", "no-store");
  AddHeaders(response, cors);
  responder.Respond(std::move(response));
}

void EngineIoSocket::OnPacket(const EngineIoPacket& packet) {
  if (!is_open()) {
    return;
  }
  if (packet.binary) {
    if (server_.callbacks_.on_message) {
      server_.callbacks_.on_message(*this, packet);
    }
    return;
  }
  switch (packet.type) {
    case EngineIoPacketType::kClose:
      CloseWith(EngineIoCloseReason::kTransportClose);
      return;
    case EngineIoPacketType::kPong:
      // Section 1.5: the next ping is pingInterval after the pong.
      RestartHeartbeat();
      return;
    case EngineIoPacketType::kPing:
      // Section 1.4: v4 clients never ping ("invalid heartbeat direction").
      ++server_.stats_.parse_errors;
      CloseWith(EngineIoCloseReason::kParseError);
      return;
    case EngineIoPacketType::kMessage:
      if (server_.callbacks_.on_message) {
        server_.callbacks_.on_message(*this, packet);
      }
      return;
    case EngineIoPacketType::kOpen:
    case EngineIoPacketType::kUpgrade:
    case EngineIoPacketType::kNoop:
      // Ignored on an established transport, as the reference does.
      return;
  }
}

void EngineIoSocket::OnHeartbeatTimer() {
  if (state_ == State::kClosing) {
    Finish();
    return;
  }
  if (!is_open()) {
    return;
  }
  if (overflowed_) {
    CloseWith(EngineIoCloseReason::kTransportError);
    return;
  }
  if (ExpireIfOverdue()) {
    return;
  }
  if (awaiting_pong_) {
    // Woken before the deadline (the timer's clock is coarser than ours).
    server_.heartbeats_.Schedule(heartbeat_, pong_deadline_ - server_.clock_.Now());
    return;
  }
  // Section 1.5: the pong deadline runs from when the ping is due
  // (pingInterval after the open or the last pong), not from when a GET
  // carries it; the client's own watchdog is the mirror of this rule.
  awaiting_pong_ = true;
  server_.heartbeats_.Schedule(heartbeat_, pong_deadline_ - server_.clock_.Now());
  Send(EngineIoPacket::Text(EngineIoPacketType::kPing));
}

void EngineIoSocket::ApplyPayloadLimit() {
  const size_t limit = server_.PayloadLimit(*this);
  for (net::WebSocketSession* session : {ws_, probe_}) {
    if (session != nullptr) {
      session->SetMaxMessageBytes(limit);
    }
  }
}

void EngineIoSocket::AttachWebSocket(uint64_t link, net::WebSocketSession& session,
                                     bool supports_binary) {
  ws_link_ = link;
  ws_ = &session;
  ApplyPayloadLimit();
  ws_binary_ = supports_binary;
  SetState(State::kWebSocket);
  EngineIoOpen open;
  open.sid = id_;
  open.ping_interval_ms = static_cast<uint64_t>(server_.options_.ping_interval.count());
  open.ping_timeout_ms = static_cast<uint64_t>(server_.options_.ping_timeout.count());
  open.max_payload = server_.options_.max_payload;
  // Section 1.3: "upgrades" is empty over WebSocket.
  session.SendText(EncodeOpenPacket(open));
}

void EngineIoSocket::AttachProbe(uint64_t link, net::WebSocketSession& session,
                                 bool supports_binary) {
  probe_link_ = link;
  probe_ = &session;
  ApplyPayloadLimit();
  probe_binary_ = supports_binary;
  probed_ = false;
  upgrade_deadline_ = std::chrono::steady_clock::now() + server_.options_.upgrade_timeout;
  if (!upgrade_timer_) {
    upgrade_timer_ = std::make_unique<net::Timer>(server_.loop_, [this] { OnUpgradeTimer(); });
  }
  upgrade_timer_->StartPeriodic(server_.options_.upgrade_noop_interval);
  SetState(State::kUpgrading);
}

void EngineIoSocket::OnWebSocketText(uint64_t link, std::string_view text) {
  auto packet = DecodeEngineIoText(text);
  // A probe is attached only while upgrading, or closing with the client
  // moving to it (CloseWith).
  if (link != 0 && link == probe_link_) {
    if (packet) {
      OnProbeMessage(*packet);
    } else {
      AbortUpgrade();
    }
    return;
  }
  if (link == 0 || link != ws_link_ || state_ != State::kWebSocket) {
    return;
  }
  if (!packet) {
    // Section 1.4: an undecodable frame ends the session.
    TK_LOG_DEBUG("engine.io session: bad WebSocket frame: {}", EngineIoErrorText(packet.error()));
    ++server_.stats_.parse_errors;
    CloseWith(EngineIoCloseReason::kParseError);
    return;
  }
  OnPacket(*packet);
}

void EngineIoSocket::OnWebSocketBinary(uint64_t link, base::ByteView data) {
  if (link != 0 && link == probe_link_) {
    // Section 1.7: only "2probe" and "5" are acceptable on the probe.
    AbortUpgrade();
    return;
  }
  if (link != 0 && link == ws_link_ && state_ == State::kWebSocket) {
    OnPacket(DecodeEngineIoBinary(data));
  }
}

void EngineIoSocket::OnProbeMessage(const EngineIoPacket& packet) {
  if (!packet.binary && packet.type == EngineIoPacketType::kPing && packet.data == "probe") {
    probe_->SendText(EncodeEngineIoText(EngineIoPacket::Text(EngineIoPacketType::kPong, "probe")));
    probed_ = true;
    SendUpgradeNoop();
    return;
  }
  if (!packet.binary && packet.type == EngineIoPacketType::kUpgrade) {
    if (state_ == State::kClosing) {
      // Closed while the client moved here (CloseWith): now on the probe,
      // it gets what was queued, then the close.
      for (const EngineIoPacket& queued : queue_) {
        WriteWebSocket(*probe_, probe_binary_, queued);
      }
      Finish();
      return;
    }
    CompleteUpgrade();
    return;
  }
  AbortUpgrade();
}

void EngineIoSocket::CompleteUpgrade() {
  StopUpgradeTimer();
  // A GET still held gets a noop so that the client's polling ends; the
  // queue (empty whenever a GET is held) moves to the WebSocket.
  AnswerPoll(std::array{Noop()});
  poll_.reset();
  ws_link_ = probe_link_;
  ws_ = probe_;
  ws_binary_ = probe_binary_;
  probe_link_ = 0;
  probe_ = nullptr;
  probed_ = false;
  ++server_.stats_.upgrades;
  SetState(State::kWebSocket);
  std::vector<EngineIoPacket> queued = std::move(queue_);
  ClearQueue();
  for (const EngineIoPacket& packet : queued) {
    WriteWebSocket(*ws_, ws_binary_, packet);
  }
}

void EngineIoSocket::AbortUpgrade() {
  StopUpgradeTimer();
  DropProbe();
  ++server_.stats_.failed_upgrades;
  if (state_ == State::kUpgrading) {
    SetState(State::kPolling);
  }
}

void EngineIoSocket::StopUpgradeTimer() {
  if (upgrade_timer_) {
    upgrade_timer_->Stop();
  }
}

void EngineIoSocket::OnUpgradeTimer() {
  if (state_ != State::kUpgrading) {
    StopUpgradeTimer();
    return;
  }
  if (std::chrono::steady_clock::now() >= upgrade_deadline_) {
    AbortUpgrade();
    return;
  }
  SendUpgradeNoop();
}

void EngineIoSocket::OnWebSocketClosed(uint64_t link, const net::WebSocketCloseInfo& info) {
  if (link == 0) {
    return;
  }
  if (link == probe_link_) {
    probe_ = nullptr;
    probe_link_ = 0;
    if (state_ == State::kUpgrading) {
      StopUpgradeTimer();
      probed_ = false;
      ++server_.stats_.failed_upgrades;
      SetState(State::kPolling);
    }
    return;
  }
  if (link == ws_link_) {
    ws_ = nullptr;
    ws_link_ = 0;
    if (state_ == State::kWebSocket) {
      CloseWith(info.by_peer ? EngineIoCloseReason::kTransportClose
                             : EngineIoCloseReason::kTransportError);
    }
  }
}

}  // namespace turnkey::signal
