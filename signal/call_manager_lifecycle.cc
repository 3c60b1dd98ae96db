// CallManager: the state transition, answering and ending calls, timers,
// shutdown and the helpers the event handlers share.
#include <algorithm>
#include <cassert>
#include <utility>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "signal/call_manager.h"

namespace turnkey::signal {
namespace {

// Tries before giving up on the injected generator (a test's fake may repeat).
constexpr int kIdAttempts = 16;

// Removes `id` from `key`'s list in `map`, and the list once empty.
template <typename Map, typename Key>
void EraseEndedId(Map& map, const Key& key, const std::string* id) {
  auto it = map.find(key);
  if (it != map.end() && it->second.Remove(id)) {
    map.erase(it);
  }
}

std::string_view TypeName(metrics::CallType type) {
  return metrics::kCallTypeValues[static_cast<size_t>(type)];
}

}  // namespace

// ---- Acks and lookups --------------------------------------------------------------

Json CallManager::Ok(std::string_view call_id) {
  // Room for what the callers add.
  Json ack = JsonObject(5);
  ack["ok"] = true;
  ack["callId"] = call_id;
  return ack;
}

Json CallManager::Fail(uint64_t socket, std::string_view error,
                       std::optional<std::string_view> call_id) {
  Json told = JsonObject(2);
  told["error"] = error;
  told["callId"] = call_id ? Json(*call_id) : Json(nullptr);
  emitter_.Emit(socket, "callError", std::move(told));
  Json ack = JsonObject(3);
  ack["ok"] = false;
  ack["error"] = error;
  if (call_id) {
    ack["callId"] = *call_id;
  }
  return ack;
}

std::expected<CallManager::Target, Json> CallManager::Resolve(uint64_t socket,
                                                              const Json& payload) {
  std::optional<std::string_view> call_id = PayloadCallId(payload);
  if (!call_id) {
    return std::unexpected(Fail(socket, kErrCallIdRequired, std::nullopt));
  }
  const std::string* user = presence_.UserOf(socket);
  if (user == nullptr) {
    return std::unexpected(Fail(socket, kErrNotAuthorized, call_id));
  }
  Call* call = FindLive(*call_id);
  if (call == nullptr) {
    auto ended = tombstones_.find(*call_id);
    if (ended == tombstones_.end()) {
      return std::unexpected(Fail(socket, kErrCallNotFound, call_id));
    }
    const bool participant = *user == ended->second.caller_id || *user == ended->second.callee_id;
    return std::unexpected(
        Fail(socket, participant ? kErrCallAlreadyProcessed : kErrNotAuthorized, call_id));
  }
  if (*user != call->info.caller_id && *user != call->info.callee_id) {
    return std::unexpected(Fail(socket, kErrNotAuthorized, call_id));
  }
  const CallSide side = *user == call->info.caller_id ? CallSide::kCaller : CallSide::kCallee;
  if (Side& mine = SideOf(*call, side); mine.announce_reconnect && mine.socket == socket) {
    // A resumed side's first event says it is back (OnSocketResumed).
    TellReconnected(*call, side);
  }
  return Target{call, user, side};
}

CallManager::Call* CallManager::FindLive(std::string_view call_id) {
  auto it = calls_.find(call_id);
  return it == calls_.end() ? nullptr : &it->second;
}

CallManager::Call* CallManager::CallOfUser(std::string_view user_id) {
  auto it = user_calls_.find(user_id);
  return it == user_calls_.end() ? nullptr : FindLive(it->second);
}

std::string CallManager::NewCallId() {
  for (int i = 0; i < kIdAttempts; ++i) {
    std::string id = new_call_id_();
    if (!id.empty() && !calls_.contains(id) && !tombstones_.contains(id)) {
      return id;
    }
  }
  return base::TimeOrderedId(base::SystemClock::Instance().UnixMillis());
}

// ---- State ---------------------------------------------------------------------------

void CallManager::Transition(Call& call, CallState next) {
  [[maybe_unused]] const bool legal =
      (call.state == CallState::kRinging && next != CallState::kRinging) ||
      (call.state == CallState::kActive && next == CallState::kEnded);
  assert(legal);
  call.state = next;
}

Json CallManager::AcceptRinging(Call& call, base::MonoTime now, uint64_t socket, bool glare) {
  Transition(call, CallState::kActive);
  call.answered_at = now;
  CancelTimer(call.ring_timer);
  SideOf(call, CallSide::kCallee).socket = socket;
  recorder_.CallAnswered(call.info, now);

  Json confirm = JsonObject(3);
  confirm["callId"] = call.info.id;
  confirm["callerId"] = call.info.caller_id;
  confirm["callType"] = TypeName(call.info.type);
  emitter_.Emit(socket, "callAcceptedConfirm", std::move(confirm));
  Json accepted = JsonObject(2);
  accepted["callId"] = call.info.id;
  accepted["receiverId"] = call.info.callee_id;
  EmitToSide(call, CallSide::kCaller, "callAccepted", std::move(accepted));
  Json elsewhere = JsonObject(1);
  elsewhere["callId"] = call.info.id;
  EmitToCalleeDevices(call, "callAnsweredElsewhere", std::move(elsewhere), socket);
  // What the caller sent while it rang follows the confirm, in order.
  DeliverHeld(call, CallSide::kCallee);

  Json ack = Ok(call.info.id);
  ack["callerId"] = call.info.caller_id;
  ack["callType"] = TypeName(call.info.type);
  if (glare) {
    ack["glare"] = true;
  }
  return ack;
}

Json CallManager::RejectRinging(Call& call, base::MonoTime now, uint64_t socket,
                                std::string_view confirm_event) {
  const std::string call_id = call.info.id;
  const std::string callee = call.info.callee_id;
  Json confirm = JsonObject(1);
  confirm["callId"] = call_id;
  emitter_.Emit(socket, confirm_event, std::move(confirm));
  Json rejected = JsonObject(3);
  rejected["callId"] = call_id;
  rejected["receiverId"] = callee;
  rejected["reason"] = kReasonRejected;
  EmitToSide(call, CallSide::kCaller, "callRejected", std::move(rejected));
  EmitToCalleeDevices(call, "callEnded", CallEndedJson(call.info.id, callee, kReasonRejected),
                      socket);
  Finish(call, now, metrics::CallStatus::kRejected, kReasonRejected, callee);
  return Ok(call_id);
}

void CallManager::Finish(Call& call, base::MonoTime now, metrics::CallStatus status,
                         std::string_view reason, std::string_view ended_by,
                         std::optional<base::MonoTime> ended_at) {
  Transition(call, CallState::kEnded);
  CancelTimer(call.ring_timer);
  for (Side& side : call.sides) {
    CancelTimer(side.grace);
  }
  CallEndRecord record{.call = call.info,
                       .status = status,
                       .reason = std::string(reason),
                       .ended_by = std::string(ended_by),
                       .answered_at = call.answered_at,
                       .ended_at = ended_at.value_or(now)};
  if (call.answered_at) {
    record.duration_seconds = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::max(record.ended_at, *call.answered_at) - *call.answered_at)
                                  .count();
  }
  TK_LOG_DEBUG("calls: call {} ({}, {} -> {}) ended: {}, reason {}, by {}, {} s answered",
               record.call.id, TypeName(record.call.type), record.call.caller_id,
               record.call.callee_id, metrics::kCallStatusValues[static_cast<size_t>(status)],
               record.reason, ended_by.empty() ? "the server" : ended_by, record.duration_seconds);
  recorder_.CallEnded(record);
  metrics_.CallEnded(record.call.type, status);
  for (const std::string* user : {&record.call.caller_id, &record.call.callee_id}) {
    auto it = user_calls_.find(*user);
    if (it != user_calls_.end() && it->second == record.call.id) {
      user_calls_.erase(it);
    }
  }
  const bool rang_unanswered = !call.answered_at && (status == metrics::CallStatus::kMissed ||
                                                     status == metrics::CallStatus::kCancelled ||
                                                     status == metrics::CallStatus::kRejected);
  // A side's socket hears of the end again if it is resumed soon after.
  std::array<uint64_t, 2> sockets{};
  for (size_t i = 0; i < call.sides.size(); ++i) {
    sockets[i] = call.sides[i].socket.value_or(call.sides[i].lost_socket);
  }
  auto [stone, added] = tombstones_.emplace(
      record.call.id,
      Tombstone{.caller_id = record.call.caller_id,
                .callee_id = record.call.callee_id,
                .ended_by = record.ended_by,
                .reason = std::string(reason),
                .answered = call.answered_at.has_value(),
                .rang_unanswered = rang_unanswered,
                .ice_reports = {call.sides[0].ice_reports, call.sides[1].ice_reports},
                .sockets = sockets,
                .ended_at = now});
  if (added) {
    if (rang_unanswered) {
      rang_and_ended_[record.call.callee_id].Add(&stone->first);
    }
    for (uint64_t socket : sockets) {
      if (socket != 0) {
        ended_by_socket_[socket].Add(&stone->first);
      }
    }
  }
  tombstone_expiry_.emplace_back(now + options_.ended_call_retention, record.call.id);
  calls_.erase(record.call.id);
  while (tombstones_.size() > options_.max_remembered_ended_calls && !tombstone_expiry_.empty()) {
    ForgetOldestEndedCall();
  }
}

// ---- Emitting ----------------------------------------------------------------------

void CallManager::EmitToCalleeDevices(const Call& call, std::string_view event, Json payload,
                                      std::optional<uint64_t> except) {
  // A copy for each device but the last, which gets `payload` itself.
  std::optional<uint64_t> last;
  for (uint64_t socket : presence_.SocketsOf(call.info.callee_id)) {
    if (socket != except) {
      if (last) {
        emitter_.Emit(*last, event, payload);
      }
      last = socket;
    }
  }
  if (last) {
    emitter_.Emit(*last, event, std::move(payload));
  }
}

void CallManager::EmitToSide(Call& call, CallSide side, std::string_view event, Json payload) {
  const std::optional<uint64_t> socket = SideOf(call, side).socket;
  if (socket) {
    emitter_.Emit(*socket, event, std::move(payload));
  }
}

void CallManager::TellEnded(uint64_t socket, const std::string& call_id) {
  const Tombstone& ended = tombstones_.at(call_id);
  emitter_.Emit(socket, "callEnded", CallEndedJson(call_id, ended.ended_by, ended.reason));
}

void CallManager::TellReconnected(Call& call, CallSide side) {
  SideOf(call, side).announce_reconnect = false;
  if (call.state != CallState::kActive) {
    return;
  }
  Json reconnected = JsonObject(2);
  reconnected["callId"] = call.info.id;
  reconnected["userId"] = UserOfSide(call, side);
  Side& peer = SideOf(call, Other(side));
  if (peer.socket) {
    emitter_.Emit(*peer.socket, "peerReconnected", std::move(reconnected));
  } else if (peer.held.size() < options_.max_held_messages) {
    // The peer is away too: it hears of it when it is back.
    peer.held.push_back(HeldMessage{"peerReconnected", std::move(reconnected)});
  }
}

void CallManager::DeliverHeld(Call& call, CallSide side) {
  Side& to = SideOf(call, side);
  if (!to.socket) {
    return;
  }
  std::vector<HeldMessage> held = std::exchange(to.held, {});
  to.held_bytes = 0;
  for (HeldMessage& message : held) {
    emitter_.Emit(*to.socket, message.event, std::move(message.payload));
  }
}

Json CallManager::CallEndedJson(std::string_view call_id, std::string_view ended_by,
                                std::string_view reason) {
  Json ended = JsonObject(3);
  ended["callId"] = call_id;
  ended["endedBy"] = ended_by.empty() ? Json(nullptr) : Json(ended_by);
  ended["reason"] = reason;
  return ended;
}

// ---- Time ----------------------------------------------------------------------------

CallManager::TimerMap::iterator CallManager::AddTimer(base::MonoTime deadline, TimerKind kind,
                                                      const std::string& call_id) {
  return timers_.emplace(deadline, TimerEntry{kind, call_id});
}

void CallManager::CancelTimer(std::optional<TimerMap::iterator>& timer) {
  if (timer) {
    timers_.erase(*timer);
    timer.reset();
  }
}

std::optional<base::MonoTime> CallManager::NextDeadline() const {
  std::optional<base::MonoTime> next;
  if (!timers_.empty()) {
    next = timers_.begin()->first;
  }
  if (!tombstone_expiry_.empty()) {
    const base::MonoTime forget = tombstone_expiry_.front().first;
    next = next ? std::min(*next, forget) : forget;
  }
  return next;
}

void CallManager::OnTimer(base::MonoTime now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto due = timers_.begin();
    const TimerEntry entry = std::move(due->second);
    timers_.erase(due);
    Call* call = FindLive(entry.call_id);
    if (call == nullptr) {
      continue;  // not expected: Finish cancels a call's timers
    }
    switch (entry.kind) {
      case TimerKind::kRing:
        call->ring_timer.reset();
        RingTimedOut(*call, now);
        break;
      case TimerKind::kCallerGrace:
        SideOf(*call, CallSide::kCaller).grace.reset();
        GraceExpired(*call, CallSide::kCaller, now);
        break;
      case TimerKind::kCalleeGrace:
        SideOf(*call, CallSide::kCallee).grace.reset();
        GraceExpired(*call, CallSide::kCallee, now);
        break;
    }
  }
  ForgetEndedCalls(now);
}

void CallManager::RingTimedOut(Call& call, base::MonoTime now) {
  Json timeout = JsonObject(2);
  timeout["callId"] = call.info.id;
  timeout["receiverId"] = call.info.callee_id;
  EmitToSide(call, CallSide::kCaller, "callTimeout", std::move(timeout));
  EmitToCalleeDevices(call, "callEnded", CallEndedJson(call.info.id, "", kReasonTimeout),
                      std::nullopt);
  Finish(call, now, metrics::CallStatus::kMissed, kReasonTimeout, "");
}

void CallManager::GraceExpired(Call& call, CallSide side, base::MonoTime now) {
  const std::string lost = UserOfSide(call, side);
  EmitToSide(call, Other(side), "callEnded",
             CallEndedJson(call.info.id, lost, kReasonConnectionLost));
  // The call ended when the connection was found gone, not a grace later.
  Finish(call, now, metrics::CallStatus::kConnectionLost, kReasonConnectionLost, lost,
         SideOf(call, side).lost_at);
}

void CallManager::ForgetEndedCalls(base::MonoTime now) {
  while (!tombstone_expiry_.empty() && tombstone_expiry_.front().first <= now) {
    ForgetOldestEndedCall();
  }
}

bool CallManager::EndedIds::Remove(const std::string* id) {
  if (first_ < ids_.size() && ids_[first_] == id) {
    ++first_;  // the usual case: the oldest
  } else if (auto it = std::find(begin(), end(), id); it != end()) {
    ids_.erase(it);
  }
  if (first_ == ids_.size()) {
    return true;
  }
  if (first_ >= 16 && first_ * 2 >= ids_.size()) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(first_));
    first_ = 0;
  }
  return false;
}

void CallManager::ForgetOldestEndedCall() {
  const std::string& id = tombstone_expiry_.front().second;
  auto ended = tombstones_.find(id);
  if (ended != tombstones_.end()) {
    if (ended->second.rang_unanswered) {
      EraseEndedId(rang_and_ended_, ended->second.callee_id, &ended->first);
    }
    for (uint64_t socket : ended->second.sockets) {
      if (socket != 0) {
        EraseEndedId(ended_by_socket_, socket, &ended->first);
      }
    }
    tombstones_.erase(ended);
  }
  tombstone_expiry_.pop_front();
}

// ---- Shutdown ------------------------------------------------------------------------

void CallManager::EndAll(base::MonoTime now, std::string_view reason) {
  std::vector<std::string> ids;
  ids.reserve(calls_.size());
  for (const auto& [id, call] : calls_) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) {
    Call* call = FindLive(id);
    if (call == nullptr) {
      continue;
    }
    const Json ended = CallEndedJson(call->info.id, "", reason);
    EmitToSide(*call, CallSide::kCaller, "callEnded", ended);
    const bool ringing = call->state == CallState::kRinging;
    if (ringing) {
      EmitToCalleeDevices(*call, "callEnded", ended, std::nullopt);
    } else {
      EmitToSide(*call, CallSide::kCallee, "callEnded", ended);
    }
    // connection_lost (a cluster's coordinator stepping down: its calls
    // cannot go on) is a failure, as when a participant does not come back.
    metrics::CallStatus status =
        ringing ? metrics::CallStatus::kMissed : metrics::CallStatus::kCompleted;
    if (reason == kReasonConnectionLost) {
      status = metrics::CallStatus::kConnectionLost;
    }
    Finish(*call, now, status, reason, "");
  }
}

// ---- Introspection -------------------------------------------------------------------

std::optional<CallManager::CallView> CallManager::FindCall(std::string_view call_id) const {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    return std::nullopt;
  }
  const Call& call = it->second;
  const Side& caller = call.sides[static_cast<size_t>(CallSide::kCaller)];
  const Side& callee = call.sides[static_cast<size_t>(CallSide::kCallee)];
  return CallView{.info = call.info,
                  .state = call.state,
                  .caller_socket = caller.socket,
                  .callee_socket = callee.socket,
                  .caller_in_grace = caller.grace.has_value(),
                  .callee_in_grace = callee.grace.has_value()};
}

std::optional<std::string> CallManager::CurrentCallOf(std::string_view user_id) const {
  auto it = user_calls_.find(user_id);
  if (it == user_calls_.end()) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace turnkey::signal
