// CallManager: presence and the client events. Timers, endings and the
// shared helpers are in call_manager_lifecycle.cc.
#include "signal/call_manager.h"

#include <utility>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"

namespace turnkey::signal {
namespace {

// Takes a token from `key`'s bucket (made full on first use); a rate of 0 is
// no limit and makes no bucket.
template <typename Buckets, typename Key>
bool TakeToken(Buckets& buckets, const Key& key, double rate, double burst, base::MonoTime now) {
  if (rate <= 0) {
    return true;
  }
  auto it = buckets.find(key);
  if (it == buckets.end()) {
    it = buckets.emplace(typename Buckets::key_type(key), TokenBucket(burst, now)).first;
  }
  return it->second.TryTake(now, rate, burst);
}

// Ids are at most this long (sql/store.h kMaxIdBytes), handles shorter; a
// longer receiver cannot exist, so it is not looked up.
constexpr size_t kMaxLookupBytes = 128;

// Roughly the bytes of `value` as JSON text: strings and keys with their
// quotes, 8 for a number, 4 for a literal, 1 per separator. Its depth is
// bounded by the Socket.IO decoder (base/json_depth.h).
size_t JsonSize(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return value.get_ref<const std::string&>().size() + 2;
    case Json::value_t::object: {
      size_t size = 2;
      for (const auto& [key, member] : value.items()) {
        size += key.size() + 4 + JsonSize(member);
      }
      return size;
    }
    case Json::value_t::array: {
      size_t size = 2;
      for (const Json& element : value) {
        size += 1 + JsonSize(element);
      }
      return size;
    }
    case Json::value_t::binary:
      return value.get_binary().size();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return 8;
    default:
      return 4;
  }
}

}  // namespace

CallManager::CallManager(CallManagerOptions options, CallEmitter& emitter, CallRecorder& recorder,
                         CallMetricsSink& metrics, IdGenerator new_call_id)
    : options_(options),
      emitter_(emitter),
      recorder_(recorder),
      metrics_(metrics),
      new_call_id_(std::move(new_call_id)) {
  if (!new_call_id_) {
    // Time-ordered: the history tables' primary keys then grow at their
    // right edge (one page per group commit, not one per call).
    new_call_id_ = [] { return base::TimeOrderedId(base::SystemClock::Instance().UnixMillis()); };
  }
}

// ---- Presence ------------------------------------------------------------------

bool CallManager::OnSocketConnected(base::MonoTime /*now*/, uint64_t socket,
                                    std::string_view user_id) {
  if (socket == 0 || !presence_.Add(socket, user_id)) {
    return false;
  }
  if (const Call* call = CallOfUser(user_id); call != nullptr) {
    TellCallState(*call, socket, user_id);
  }
  if (auto ended = rang_and_ended_.find(user_id); ended != rang_and_ended_.end()) {
    for (const std::string* id : ended->second) {
      TellEnded(socket, *id);
    }
  }
  return true;
}

void CallManager::ForgetUserBucket(const std::string& user, base::MonoTime now) {
  // Only once it has refilled: a user who reconnects must not get a fresh
  // burst (a loop of reconnects would ring an offline user, and fill their
  // missed calls, at any rate). The buckets of users gone with tokens spent
  // are swept when the map has doubled since the last sweep.
  const double rate = options_.initiate_user_rate;
  const double burst = options_.initiate_user_burst;
  if (auto it = user_buckets_.find(user);
      it != user_buckets_.end() && it->second.FullAt(now, rate, burst)) {
    user_buckets_.erase(it);
  }
  if (user_buckets_.size() >= std::max<size_t>(1024, 2 * user_buckets_swept_)) {
    std::erase_if(user_buckets_, [&](const auto& entry) {
      return !presence_.IsOnline(entry.first) && entry.second.FullAt(now, rate, burst);
    });
    user_buckets_swept_ = user_buckets_.size();
  }
}

void CallManager::OnSocketDisconnected(base::MonoTime now, uint64_t socket) {
  std::optional<std::string> user = presence_.Remove(socket);
  if (!user) {
    return;
  }
  socket_buckets_.erase(socket);
  if (!presence_.IsOnline(*user)) {
    ForgetUserBucket(*user, now);
  }
  Call* call = CallOfUser(*user);
  if (call == nullptr) {
    return;
  }
  Side& caller = SideOf(*call, CallSide::kCaller);
  if (call->state == CallState::kRinging) {
    // The caller can no longer hear an answer: the call is cancelled. A
    // callee device dropping only stops ringing there.
    if (caller.socket == socket) {
      caller.socket.reset();
      caller.lost_socket = socket;  // a resume of it hears of the cancel
      EmitToCalleeDevices(*call, "callEnded",
                          CallEndedJson(call->info.id, call->info.caller_id, kReasonCancelled),
                          std::nullopt);
      Finish(*call, now, metrics::CallStatus::kCancelled, kReasonCancelled, call->info.caller_id);
    }
    return;
  }
  for (CallSide side : {CallSide::kCaller, CallSide::kCallee}) {
    Side& s = SideOf(*call, side);
    if (s.socket == socket) {
      s.socket.reset();
      s.lost_at = now;
      s.lost_socket = socket;
      s.grace =
          AddTimer(now + options_.reconnect_grace,
                   side == CallSide::kCaller ? TimerKind::kCallerGrace : TimerKind::kCalleeGrace,
                   call->info.id);
    }
  }
}

void CallManager::OnSocketResumed(base::MonoTime now, uint64_t socket, bool was_connected,
                                  std::optional<base::MonoTime> away_since) {
  const std::string* user = presence_.UserOf(socket);
  if (user == nullptr) {
    return;
  }
  // Ends the old connection may have swallowed, or that came while the
  // socket was away. (OnSocketConnected told a socket that was away the
  // unanswered ones.)
  if (auto ended = ended_by_socket_.find(socket); ended != ended_by_socket_.end()) {
    for (const std::string* id : ended->second) {
      const base::MonoTime ended_at = tombstones_.at(*id).ended_at;
      if (ended_at + options_.reconnect_grace >= now || (away_since && ended_at >= *away_since)) {
        TellEnded(socket, *id);
      }
    }
  }
  if (auto ended = rang_and_ended_.find(*user); was_connected && ended != rang_and_ended_.end()) {
    for (const std::string* id : ended->second) {
      TellEnded(socket, *id);
    }
  }
  Call* call = CallOfUser(*user);
  if (call == nullptr) {
    return;
  }
  if (was_connected) {
    // Told by OnSocketConnected otherwise. The old connection may have
    // swallowed a ring (or its answer elsewhere), and a device cannot ask for
    // a call whose id it never got.
    TellCallState(*call, socket, *user);
  }
  if (call->state != CallState::kActive) {
    return;
  }
  const CallSide side = *user == call->info.caller_id ? CallSide::kCaller : CallSide::kCallee;
  Side& mine = SideOf(*call, side);
  if (was_connected && mine.socket == socket) {
    mine.announce_reconnect = true;
  } else if (!was_connected && !mine.socket && mine.grace && mine.lost_socket == socket) {
    mine.socket = socket;
    CancelTimer(mine.grace);
    mine.announce_reconnect = true;
    DeliverHeld(*call, side);
  }
}

void CallManager::TellCallState(const Call& call, uint64_t socket, std::string_view user_id) {
  if (call.info.callee_id != user_id) {
    return;
  }
  if (call.state == CallState::kRinging) {
    Json incoming = JsonObject(4);
    incoming["callId"] = call.info.id;
    incoming["callerId"] = call.info.caller_id;
    incoming["callType"] = metrics::kCallTypeValues[static_cast<size_t>(call.info.type)];
    incoming["caller"] = UserInfoJson(call.caller);
    emitter_.Emit(socket, "incomingCall", std::move(incoming));
    return;
  }
  const Side& callee = SideOf(call, CallSide::kCallee);
  if (call.state == CallState::kActive && callee.socket && callee.socket != socket &&
      !callee.grace) {
    Json elsewhere = JsonObject(1);
    elsewhere["callId"] = call.info.id;
    emitter_.Emit(socket, "callAnsweredElsewhere", std::move(elsewhere));
  }
}

// ---- Events --------------------------------------------------------------------

std::optional<Json> CallManager::OnEvent(base::MonoTime now, uint64_t socket,
                                         std::string_view event, const Json& payload,
                                         UserDirectory& directory) {
  if (event == "initiateCall") {
    return OnInitiateCall(now, socket, payload, directory);
  }
  using Handler = Json (CallManager::*)(base::MonoTime, uint64_t, const Json&);
  static constexpr std::pair<std::string_view, Handler> kHandlers[] = {
      {"acceptCall", &CallManager::OnAcceptCall},
      {"rejectCall", &CallManager::OnRejectCall},
      {"endCall", &CallManager::OnEndCall},
      {"sendOffer", &CallManager::OnSendOffer},
      {"sendAnswer", &CallManager::OnSendAnswer},
      {"sendIceCandidate", &CallManager::OnSendIceCandidate},
      {"reportIce", &CallManager::OnReportIce},
      {"rejoinCall", &CallManager::OnRejoinCall},
  };
  for (const auto& [name, handler] : kHandlers) {
    if (name == event) {
      return (this->*handler)(now, socket, payload);
    }
  }
  return std::nullopt;
}

Json CallManager::OnInitiateCall(base::MonoTime now, uint64_t socket, const Json& payload,
                                 UserDirectory& directory) {
  std::expected<InitiateRequest, Json> request = BeginInitiateCall(now, socket, payload);
  if (!request) {
    return std::move(request.error());
  }
  const std::string* user = presence_.UserOf(socket);
  std::optional<UserInfo> receiver;
  if (!request->receiver_id.empty()) {
    if (request->receiver_id.size() <= kMaxLookupBytes) {
      receiver = directory.FindById(request->receiver_id);
    }
  } else if (request->receiver_handle.size() <= kMaxLookupBytes) {
    receiver = directory.FindByHandle(request->receiver_handle);
  }
  // An account that vanished meanwhile still has an id to show.
  UserInfo caller = directory.FindById(*user).value_or(UserInfo{.id = *user});
  return FinishInitiateCall(now, socket, *request, receiver, caller);
}

std::expected<InitiateRequest, Json> CallManager::BeginInitiateCall(base::MonoTime now,
                                                                    uint64_t socket,
                                                                    const Json& payload) {
  const std::string* user = presence_.UserOf(socket);
  if (user == nullptr) {
    return std::unexpected(Fail(socket, kErrNotAuthorized, std::nullopt));
  }
  if (draining_) {
    return std::unexpected(Fail(socket, kErrShuttingDown, std::nullopt));
  }
  // A payload that names no receiver is refused first and costs nothing (it
  // never reaches a lookup; the socket's event bucket bounds a flood of
  // them). Every attempt that names one costs a token, found or not, so a
  // flood never reaches the user lookups.
  std::expected<InitiateRequest, std::string_view> request = ParseInitiateCall(payload);
  if (!request) {
    return std::unexpected(Fail(socket, request.error(), std::nullopt));
  }
  if (!TakeToken(socket_buckets_, socket, options_.initiate_socket_rate,
                 options_.initiate_socket_burst, now) ||
      !TakeToken(user_buckets_, *user, options_.initiate_user_rate, options_.initiate_user_burst,
                 now)) {
    return std::unexpected(Fail(socket, kErrRateLimited, std::nullopt));
  }
  return std::move(*request);
}

Json CallManager::FinishInitiateCall(base::MonoTime now, uint64_t socket,
                                     const InitiateRequest& request,
                                     const std::optional<UserInfo>& receiver,
                                     const UserInfo& caller) {
  const std::string* user = presence_.UserOf(socket);
  if (user == nullptr || *user != caller.id) {
    return Fail(socket, kErrNotAuthorized, std::nullopt);
  }
  if (draining_) {
    return Fail(socket, kErrShuttingDown, std::nullopt);
  }
  if (!receiver) {
    return Fail(socket, kErrReceiverNotFound, std::nullopt);
  }
  if (receiver->id == caller.id) {
    return Fail(socket, kErrCannotCallYourself, std::nullopt);
  }
  if (Call* mine = CallOfUser(caller.id); mine != nullptr) {
    if (mine->state == CallState::kRinging && mine->info.callee_id == caller.id &&
        mine->info.caller_id == receiver->id) {
      return AcceptRinging(*mine, now, socket, /*glare=*/true);
    }
    return Fail(socket, kErrAlreadyInCall, mine->info.id);
  }
  const bool online = presence_.IsOnline(receiver->id);
  const bool busy = CallOfUser(receiver->id) != nullptr;

  Call fresh;
  fresh.info = CallInfo{.id = NewCallId(),
                        .caller_id = caller.id,
                        .callee_id = receiver->id,
                        .type = request.type,
                        .created_at = now};
  fresh.caller = caller;
  SideOf(fresh, CallSide::kCaller).socket = socket;
  const std::string call_id = fresh.info.id;
  Call& call = calls_.emplace(call_id, std::move(fresh)).first->second;
  recorder_.CallCreated(call.info);

  Json told = JsonObject(3);
  told["callId"] = call_id;
  told["receiverId"] = receiver->id;
  // Busy first: a callee in a call whose socket dropped (the reconnect
  // grace) is still in that call, not away.
  if (busy) {
    told["reason"] = kReasonBusy;
    emitter_.Emit(socket, "callRejected", std::move(told));
    Finish(call, now, metrics::CallStatus::kBusy, kReasonBusy, "");
    return Fail(socket, kErrUserBusy, call_id);
  }
  if (!online) {
    emitter_.Emit(socket, "userNotAvailable", std::move(told));
    Finish(call, now, metrics::CallStatus::kUnavailable, kReasonUnavailable, "");
    return Fail(socket, kErrUserNotAvailable, call_id);
  }

  user_calls_[call.info.caller_id] = call_id;
  user_calls_[call.info.callee_id] = call_id;
  call.ring_timer = AddTimer(now + options_.ring_timeout, TimerKind::kRing, call_id);
  const std::string_view type = metrics::kCallTypeValues[static_cast<size_t>(request.type)];
  told["callType"] = type;
  emitter_.Emit(socket, "callInitiated", std::move(told));
  Json incoming = JsonObject(4);
  incoming["callId"] = call_id;
  incoming["callerId"] = caller.id;
  incoming["callType"] = type;
  incoming["caller"] = UserInfoJson(caller);
  EmitToCalleeDevices(call, "incomingCall", std::move(incoming), std::nullopt);

  Json ack = Ok(call_id);
  ack["receiverId"] = receiver->id;
  ack["callType"] = type;
  return ack;
}

Json CallManager::OnAcceptCall(base::MonoTime now, uint64_t socket, const Json& payload) {
  std::expected<Target, Json> target = Resolve(socket, payload);
  if (!target) {
    return std::move(target.error());
  }
  Call& call = *target->call;
  if (target->side != CallSide::kCallee) {
    return Fail(socket, kErrNotAuthorized, call.info.id);
  }
  if (call.state != CallState::kRinging) {
    return Fail(socket, kErrCallAlreadyProcessed, call.info.id);
  }
  return AcceptRinging(call, now, socket, /*glare=*/false);
}

Json CallManager::OnRejectCall(base::MonoTime now, uint64_t socket, const Json& payload) {
  std::expected<Target, Json> target = Resolve(socket, payload);
  if (!target) {
    return std::move(target.error());
  }
  Call& call = *target->call;
  if (target->side != CallSide::kCallee) {
    return Fail(socket, kErrNotAuthorized, call.info.id);
  }
  if (call.state != CallState::kRinging) {
    return Fail(socket, kErrCallAlreadyProcessed, call.info.id);
  }
  return RejectRinging(call, now, socket, "callRejectedConfirm");
}

Json CallManager::OnEndCall(base::MonoTime now, uint64_t socket, const Json& payload) {
  std::expected<Target, Json> target = Resolve(socket, payload);
  if (!target) {
    return std::move(target.error());
  }
  Call& call = *target->call;
  if (call.state == CallState::kRinging && target->side == CallSide::kCallee) {
    return RejectRinging(call, now, socket, "callEndedConfirm");
  }
  const std::string call_id = call.info.id;
  const std::string ended_by = *target->user;
  const bool ringing = call.state == CallState::kRinging;
  const std::string_view reason = ringing ? kReasonCancelled : kReasonHangup;
  Json confirm = JsonObject(1);
  confirm["callId"] = call_id;
  emitter_.Emit(socket, "callEndedConfirm", std::move(confirm));
  const Json ended = CallEndedJson(call.info.id, ended_by, reason);
  for (CallSide side : {CallSide::kCaller, CallSide::kCallee}) {
    const std::optional<uint64_t> to = SideOf(call, side).socket;
    if (to && *to != socket) {
      emitter_.Emit(*to, "callEnded", ended);
    }
  }
  if (ringing) {
    EmitToCalleeDevices(call, "callEnded", ended, socket);
    Finish(call, now, metrics::CallStatus::kCancelled, reason, ended_by);
  } else if (MediaFailed(call)) {
    // Answered, but the media never connected, or it stopped and a side
    // gave up on it: what the user hung up on.
    Finish(call, now, metrics::CallStatus::kIceFailed, kReasonIceFailed, ended_by);
  } else {
    Finish(call, now, metrics::CallStatus::kCompleted, reason, ended_by);
  }
  return Ok(call_id);
}

Json CallManager::OnSendOffer(base::MonoTime /*now*/, uint64_t socket, const Json& payload) {
  return Relay(socket, payload, "offer", "receiveOffer", kErrOfferRequired);
}

Json CallManager::OnSendAnswer(base::MonoTime /*now*/, uint64_t socket, const Json& payload) {
  return Relay(socket, payload, "answer", "receiveAnswer", kErrAnswerRequired);
}

Json CallManager::OnSendIceCandidate(base::MonoTime /*now*/, uint64_t socket, const Json& payload) {
  return Relay(socket, payload, "candidate", "receiveIceCandidate", kErrCandidateRequired);
}

Json CallManager::Relay(uint64_t socket, const Json& payload, std::string_view field,
                        std::string_view out_event, std::string_view missing_error) {
  std::expected<Target, Json> target = Resolve(socket, payload);
  if (!target) {
    return std::move(target.error());
  }
  Call& call = *target->call;
  if (SideOf(call, target->side).socket != socket &&
      !AdoptInGrace(call, target->side, socket, *target->user)) {
    return Fail(socket, kErrNotAuthorized, call.info.id);
  }
  auto value = payload.find(field);
  if (value == payload.end() || value->is_null()) {
    return Fail(socket, missing_error, call.info.id);
  }
  Side& to = SideOf(call, Other(target->side));
  const size_t bytes = to.socket ? 0 : JsonSize(*value);
  if (!to.socket && (to.held.size() >= options_.max_held_messages ||
                     bytes > options_.max_held_bytes - to.held_bytes)) {
    return Fail(socket, kErrRateLimited, call.info.id);
  }
  Json message = JsonObject(3);
  message["callId"] = call.info.id;
  message["from"] = *target->user;
  message[std::string(field)] = *value;
  if (to.socket) {
    emitter_.Emit(*to.socket, out_event, std::move(message));
  } else {
    to.held.push_back(HeldMessage{out_event, std::move(message)});
    to.held_bytes += bytes;
  }
  return Ok(call.info.id);
}

Json CallManager::OnReportIce(base::MonoTime now, uint64_t socket, const Json& payload) {
  if (std::optional<Json> late = LateIceReport(now, socket, payload)) {
    return std::move(*late);
  }
  std::expected<Target, Json> target = Resolve(socket, payload);
  if (!target) {
    return std::move(target.error());
  }
  Call& call = *target->call;
  if (call.state != CallState::kActive) {
    // Either participant (any device of the callee rings) is told the call
    // has not started yet; others were refused by Resolve.
    return Fail(socket, kErrCallNotActive, call.info.id);
  }
  Side& side = SideOf(call, target->side);
  if (side.socket != socket && !AdoptInGrace(call, target->side, socket, *target->user)) {
    return Fail(socket, kErrNotAuthorized, call.info.id);
  }
  std::expected<IceReportFields, std::string_view> fields = ParseIceReport(payload);
  if (!fields) {
    return Fail(socket, fields.error(), call.info.id);
  }
  if (side.ice_reports >= options_.max_ice_reports_per_side) {
    return Fail(socket, kErrRateLimited, call.info.id);
  }
  const bool connected = fields->result == metrics::IceResult::kConnected;
  if (connected) {
    side.media_lost = false;
  } else if (side.latest_ice == metrics::IceResult::kConnected) {
    side.media_lost = true;
  }
  side.latest_ice = fields->result;
  TakeIceReport(now, call.info.id, *target->user, target->side, side.ice_reports,
                std::move(*fields));
  if (connected && !call.setup_counted && call.answered_at) {
    call.setup_counted = true;
    // Issue 6: call setup is initiate to ICE connected (ringing included).
    metrics_.CallSetup(now - call.info.created_at, now - *call.answered_at);
  }
  return Ok(call.info.id);
}

std::optional<Json> CallManager::LateIceReport(base::MonoTime now, uint64_t socket,
                                               const Json& payload) {
  std::optional<std::string_view> call_id = PayloadCallId(payload);
  if (!call_id || FindLive(*call_id) != nullptr) {
    return std::nullopt;
  }
  auto ended = tombstones_.find(*call_id);
  const std::string* user = presence_.UserOf(socket);
  if (ended == tombstones_.end() || !ended->second.answered || user == nullptr) {
    return std::nullopt;
  }
  Tombstone& call = ended->second;
  CallSide side = CallSide::kCaller;
  if (*user == call.callee_id) {
    side = CallSide::kCallee;
  } else if (*user != call.caller_id) {
    return std::nullopt;
  }
  // As during the call, the side's report comes from the socket that took
  // part; another device of the user (one that rang, or came later) is
  // refused while that socket is still connected. Once it is gone, the
  // app that reconnects reports from its new socket.
  const uint64_t took_part = call.sockets[static_cast<size_t>(side)];
  if (took_part != 0 && took_part != socket && presence_.UserOf(took_part) != nullptr) {
    return Fail(socket, kErrNotAuthorized, call_id);
  }
  std::expected<IceReportFields, std::string_view> fields = ParseIceReport(payload);
  if (!fields) {
    return Fail(socket, fields.error(), call_id);
  }
  int& reports = call.ice_reports[static_cast<size_t>(side)];
  if (reports >= options_.max_ice_reports_per_side) {
    return Fail(socket, kErrRateLimited, call_id);
  }
  TakeIceReport(now, *call_id, *user, side, reports, std::move(*fields));
  return Ok(*call_id);
}

void CallManager::TakeIceReport(base::MonoTime now, std::string_view call_id,
                                const std::string& user, CallSide side, int& reports,
                                IceReportFields fields) {
  ++reports;
  const bool failed = fields.result == metrics::IceResult::kFailed;
  TK_LOG_DEBUG(
      "calls: call {}: the {} reported ICE {}{} (local {}, remote {}, relay {}, rtt {})", call_id,
      side == CallSide::kCaller ? "caller" : "callee",
      metrics::kIceResultValues[static_cast<size_t>(fields.result)],
      failed
          ? fmt::format(": {}", metrics::kIceFailureCauseValues[static_cast<size_t>(fields.cause)])
          : std::string(),
      metrics::kCandidateTypeValues[static_cast<size_t>(fields.local_candidate_type)],
      metrics::kCandidateTypeValues[static_cast<size_t>(fields.remote_candidate_type)],
      fields.relay_protocol.empty() ? "-" : fields.relay_protocol,
      fields.rtt_ms ? fmt::format("{} ms", *fields.rtt_ms) : "-");
  if (reports == 1) {
    // A leg's outcome in the metrics is its first report: later ones (an
    // ICE restart, a retrying app) reach the history only, so the ratios
    // stay ratios of call legs.
    metrics_.IceReport(fields.result, fields.local_candidate_type, fields.remote_candidate_type,
                       fields.rtt_ms);
    if (failed) {
      metrics_.IceFailure(fields.cause);
    }
  }
  recorder_.IceReported(IceReportRecord{.call_id = std::string(call_id),
                                        .user_id = user,
                                        .side = side,
                                        .result = fields.result,
                                        .local_candidate_type = fields.local_candidate_type,
                                        .remote_candidate_type = fields.remote_candidate_type,
                                        .relay_protocol = std::move(fields.relay_protocol),
                                        .rtt_ms = fields.rtt_ms,
                                        .cause = fields.cause,
                                        .reported_at = now});
}

Json CallManager::OnRejoinCall(base::MonoTime /*now*/, uint64_t socket, const Json& payload) {
  std::expected<Target, Json> target = Resolve(socket, payload);
  if (!target) {
    return std::move(target.error());
  }
  Call& call = *target->call;
  const CallSide side = target->side;
  Side& mine = SideOf(call, side);
  const bool moves =
      (call.state == CallState::kActive || side == CallSide::kCaller) && mine.socket != socket;
  if (moves) {
    MoveSide(call, side, socket, *target->user);
  }
  Json ack = Ok(call.info.id);
  ack["state"] = CallStateName(call.state);
  ack["role"] = CallSideName(side);
  ack["peerId"] = UserOfSide(call, Other(side));
  ack["callType"] = metrics::kCallTypeValues[static_cast<size_t>(call.info.type)];
  return ack;
}

void CallManager::MoveSide(Call& call, CallSide side, uint64_t socket, const std::string& user) {
  Side& mine = SideOf(call, side);
  const std::optional<uint64_t> old = mine.socket;
  mine.socket = socket;
  CancelTimer(mine.grace);
  if (old) {
    emitter_.Emit(*old, "callEnded", CallEndedJson(call.info.id, user, kReasonRejoinedElsewhere));
  }
  TellReconnected(call, side);
  DeliverHeld(call, side);
}

bool CallManager::MediaFailed(const Call& call) {
  bool lost = false;
  bool connected = false;
  bool failed = false;
  for (const Side& side : call.sides) {
    lost = lost || side.media_lost;
    connected = connected || side.latest_ice == metrics::IceResult::kConnected;
    failed = failed || side.latest_ice == metrics::IceResult::kFailed;
  }
  return lost || (failed && !connected);
}

bool CallManager::AdoptInGrace(Call& call, CallSide side, uint64_t socket,
                               const std::string& user) {
  if (call.state != CallState::kActive || SideOf(call, side).socket) {
    return false;
  }
  MoveSide(call, side, socket, user);
  return true;
}

}  // namespace turnkey::signal
