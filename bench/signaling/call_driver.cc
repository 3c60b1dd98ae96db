#include "bench/signaling/call_driver.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "bench/signaling/json_scan.h"

namespace turnkey::bench {
namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
// The driver's copy of a bucket refills a little slower and wants a little
// more than one token: the server takes its tokens when the event arrives,
// later than the driver sends it, and jitter must not make it refuse.
constexpr double kRateMargin = 0.97;
constexpr double kTokenMargin = 0.05;
// A call started more than this after its scheduled time is late.
constexpr int64_t kLateNs = 1'000'000;
// After a refused initiateCall ("Rate limited"), the pair waits this long.
constexpr int64_t kRetryPauseNs = 2 * kNsPerSecond;
constexpr int64_t kTimeoutScanNs = 100'000'000;

std::string ErrorOf(std::string_view packet) {
  auto error = JsonStringField(packet, "error");
  return error ? std::string(*error) : std::string("no ok:true and no error");
}

}  // namespace

int64_t CallDriver::Bucket::ReadyAt(int64_t now_ns, double rate, double burst, double need) const {
  if (rate <= 0) {
    return now_ns;
  }
  need = std::min(need, burst);
  double have =
      tokens < 0
          ? burst
          : std::min(burst, tokens + static_cast<double>(now_ns - last_ns) * rate / kNsPerSecond);
  if (have >= need) {
    return now_ns;
  }
  return now_ns + static_cast<int64_t>(std::ceil((need - have) / rate * kNsPerSecond));
}

void CallDriver::Bucket::Take(int64_t now_ns, double rate, double burst, double count) {
  if (rate <= 0) {
    return;
  }
  tokens =
      tokens < 0
          ? burst
          : std::min(burst, tokens + static_cast<double>(now_ns - last_ns) * rate / kNsPerSecond);
  last_ns = now_ns;
  tokens -= count;
}

CallDriver::CallDriver(CallDriverOptions options, std::vector<std::string> user_ids)
    : options_(std::move(options)) {
  users_.resize(user_ids.size());
  user_pair_.assign(user_ids.size(), -1);
  for (size_t i = 0; i < user_ids.size(); ++i) {
    users_[i].id = std::move(user_ids[i]);
  }
  for (size_t i = 0; i + 1 < users_.size(); i += 2) {
    Pair pair;
    pair.users[0] = i;
    pair.users[1] = i + 1;
    user_pair_[i] = user_pair_[i + 1] = static_cast<int64_t>(pairs_.size());
    pairs_.push_back(std::move(pair));
  }
}

void CallDriver::AddSocket(size_t user, SioClient& client) {
  if (user >= users_.size()) {
    return;
  }
  User& u = users_[user];
  u.sockets.push_back(&client);
  u.socket_initiate.emplace_back();
  u.socket_events.emplace_back();
}

int64_t CallDriver::DirectionReadyAt(const Pair& pair, int caller_index, int64_t now_ns) const {
  const ServerLimits& l = options_.limits;
  const User& caller = users_[pair.users[caller_index]];
  const User& callee = users_[pair.users[1 - caller_index]];
  const size_t sc = caller.next_socket % caller.sockets.size();
  const size_t se = callee.next_socket % callee.sockets.size();
  const double one = 1 + kTokenMargin;
  int64_t at = now_ns;
  at = std::max(at, caller.initiate.ReadyAt(now_ns, l.initiate_user_rate * kRateMargin,
                                            l.initiate_user_burst, one));
  at = std::max(at, caller.socket_initiate[sc].ReadyAt(now_ns, l.initiate_socket_rate * kRateMargin,
                                                       l.initiate_socket_burst, one));
  // initiateCall and endCall from the caller's socket, acceptCall from the
  // callee's.
  at = std::max(at, caller.socket_events[sc].ReadyAt(now_ns, l.event_rate * kRateMargin,
                                                     l.event_burst, 2 + kTokenMargin));
  at = std::max(
      at, callee.socket_events[se].ReadyAt(now_ns, l.event_rate * kRateMargin, l.event_burst, one));
  return at;
}

void CallDriver::Queue(size_t p, int64_t now_ns, int64_t not_before_ns) {
  Pair& pair = pairs_[p];
  const int preferred = pair.next_caller;
  const int64_t a = DirectionReadyAt(pair, preferred, now_ns);
  const int64_t b = DirectionReadyAt(pair, 1 - preferred, now_ns);
  pair.next_caller = b < a ? 1 - preferred : preferred;
  pair.state = PairState::kIdle;
  ready_.emplace(std::max(std::min(a, b), not_before_ns), p);
}

void CallDriver::StartCall(size_t p, int64_t now_ns, RunPhase phase) {
  const ServerLimits& l = options_.limits;
  Pair& pair = pairs_[p];
  const int ci = pair.next_caller;
  pair.caller = pair.users[ci];
  pair.callee = pair.users[1 - ci];
  pair.next_caller = 1 - ci;
  User& caller = users_[pair.caller];
  User& callee = users_[pair.callee];
  const size_t sc = caller.next_socket++ % caller.sockets.size();
  const size_t se = callee.next_socket++ % callee.sockets.size();
  caller.initiate.Take(now_ns, l.initiate_user_rate * kRateMargin, l.initiate_user_burst, 1);
  caller.socket_initiate[sc].Take(now_ns, l.initiate_socket_rate * kRateMargin,
                                  l.initiate_socket_burst, 1);
  caller.socket_events[sc].Take(now_ns, l.event_rate * kRateMargin, l.event_burst, 2);
  callee.socket_events[se].Take(now_ns, l.event_rate * kRateMargin, l.event_burst, 1);
  pair.caller_socket = caller.sockets[sc];
  pair.callee_socket = callee.sockets[se];
  pair.call_id.clear();
  pair.accept_ack = pair.end_ack = 0;
  pair.accepted = pair.end_acked = pair.callee_ended = false;
  pair.state = PairState::kInCall;
  pair.emit_ns = pair.progress_ns = now_ns;
  ++in_flight_;
  if (phase == RunPhase::kMeasure) {
    ++stats_.started;
  }
  // User ids are opaque but plain (UUIDs, hex): nothing to escape.
  payload_.assign(R"({"receiverId":")");
  payload_.append(callee.id);
  payload_.append(R"(","callType":")");
  payload_.append(options_.call_type);
  payload_.append(R"("})");
  pair.initiate_ack = pair.caller_socket->NextAckId();
  pair.caller_socket->Emit("initiateCall", payload_, pair.initiate_ack);
}

void CallDriver::FailCall(size_t p, int64_t now_ns, std::string_view why, bool retire) {
  Pair& pair = pairs_[p];
  ++stats_.errors[std::string(why)];
  if (pair.state == PairState::kInCall) {
    --in_flight_;
  }
  if (retire && !pair.call_id.empty() && pair.caller_socket != nullptr &&
      pair.caller_socket->ready()) {
    // Leave nothing ringing on the server; the answer is not awaited.
    payload_.assign(R"({"callId":")");
    payload_.append(pair.call_id);
    payload_.append(R"("})");
    pair.caller_socket->Emit("endCall", payload_, 0);
  }
  pair.last_call_id = std::move(pair.call_id);
  pair.call_id.clear();
  if (retire) {
    pair.state = PairState::kRetired;
  } else {
    Queue(p, now_ns, now_ns + kRetryPauseNs);
  }
}

void CallDriver::MaybeComplete(size_t p, int64_t now_ns, RunPhase phase) {
  Pair& pair = pairs_[p];
  if (!pair.end_acked || !pair.callee_ended) {
    return;
  }
  --in_flight_;
  ++stats_.completed_total;
  if (phase == RunPhase::kMeasure) {
    ++stats_.completed;
  }
  pair.last_call_id = std::move(pair.call_id);
  pair.call_id.clear();
  Queue(p, now_ns, now_ns);
}

CallDriver::Pair* CallDriver::InCallPair(const SioClient& client) {
  const uint64_t user = client.tag();
  if (user >= user_pair_.size() || user_pair_[user] < 0) {
    return nullptr;
  }
  Pair& pair = pairs_[static_cast<size_t>(user_pair_[user])];
  return pair.state == PairState::kInCall ? &pair : nullptr;
}

bool CallDriver::MatchCallId(Pair& pair, std::string_view packet) {
  auto id = JsonStringField(packet, "callId");
  if (!id) {
    ++stats_.errors["packet without a callId"];
    return false;
  }
  if (*id == pair.last_call_id) {
    ++stats_.stray;
    return false;
  }
  if (pair.call_id.empty()) {
    pair.call_id.assign(*id);
    return true;
  }
  if (*id != pair.call_id) {
    ++stats_.errors["callId of another call"];
    return false;
  }
  return true;
}

void CallDriver::OnEvent(int64_t now_ns, SioClient& client, std::string_view event,
                         std::string_view packet, RunPhase phase) {
  Pair* pair = InCallPair(client);
  if (pair == nullptr) {
    if (event == "incomingCall" || event == "callAccepted" || event == "callEnded") {
      ++stats_.stray;
    }
    return;
  }
  const size_t p = static_cast<size_t>(pair - pairs_.data());
  const uint64_t user = client.tag();
  if (event == "incomingCall") {
    if (user != pair->callee || &client != pair->callee_socket || pair->accept_ack != 0 ||
        !MatchCallId(*pair, packet)) {
      return;  // the callee's other devices ring too; one answers
    }
    pair->progress_ns = now_ns;
    payload_.assign(R"({"callId":")");
    payload_.append(pair->call_id);
    payload_.append(R"("})");
    pair->accept_ack = client.NextAckId();
    client.Emit("acceptCall", payload_, pair->accept_ack);
  } else if (event == "callAccepted") {
    if (user != pair->caller || &client != pair->caller_socket || pair->accepted ||
        !MatchCallId(*pair, packet)) {
      return;
    }
    pair->accepted = true;
    pair->progress_ns = now_ns;
    if (phase == RunPhase::kMeasure) {
      stats_.setup_ns.Record(now_ns - pair->emit_ns);
    }
    payload_.assign(R"({"callId":")");
    payload_.append(pair->call_id);
    payload_.append(R"("})");
    pair->end_ack = client.NextAckId();
    client.Emit("endCall", payload_, pair->end_ack);
  } else if (event == "callEnded") {
    if (user != pair->callee || &client != pair->callee_socket || !MatchCallId(*pair, packet)) {
      return;
    }
    pair->callee_ended = true;
    MaybeComplete(p, now_ns, phase);
  } else if (event == "callRejected" || event == "userNotAvailable" || event == "callTimeout") {
    if (MatchCallId(*pair, packet)) {
      FailCall(p, now_ns, event, /*retire=*/true);
    }
  }
}

void CallDriver::OnAck(int64_t now_ns, SioClient& client, uint64_t ack_id, std::string_view packet,
                       RunPhase phase) {
  Pair* pair = InCallPair(client);
  if (pair == nullptr) {
    ++stats_.stray;
    return;
  }
  const size_t p = static_cast<size_t>(pair - pairs_.data());
  const bool ok = JsonTrueField(packet, "ok");
  if (&client == pair->caller_socket && ack_id == pair->initiate_ack) {
    if (!ok) {
      const std::string error = ErrorOf(packet);
      FailCall(p, now_ns, "initiateCall: " + error, /*retire=*/error != "Rate limited");
      return;
    }
    pair->progress_ns = now_ns;
    MatchCallId(*pair, packet);
  } else if (&client == pair->callee_socket && ack_id == pair->accept_ack) {
    if (!ok) {
      FailCall(p, now_ns, "acceptCall: " + ErrorOf(packet), /*retire=*/true);
    }
  } else if (&client == pair->caller_socket && ack_id == pair->end_ack) {
    if (!ok) {
      FailCall(p, now_ns, "endCall: " + ErrorOf(packet), /*retire=*/true);
      return;
    }
    pair->end_acked = true;
    MaybeComplete(p, now_ns, phase);
  }
}

void CallDriver::OnClosed(int64_t now_ns, SioClient& client) {
  const uint64_t user = client.tag();
  if (user >= user_pair_.size() || user_pair_[user] < 0) {
    return;
  }
  const size_t p = static_cast<size_t>(user_pair_[user]);
  Pair& pair = pairs_[p];
  if (pair.state == PairState::kInCall) {
    FailCall(p, now_ns, "socket closed during a call", /*retire=*/true);
  }
  pair.state = PairState::kRetired;
}

void CallDriver::Tick(int64_t now_ns, RunPhase phase) {
  if (phase == RunPhase::kConnect || phase == RunPhase::kStop) {
    return;
  }
  if (!begun_) {
    begun_ = true;
    for (size_t p = 0; p < pairs_.size(); ++p) {
      const Pair& pair = pairs_[p];
      if (!users_[pair.users[0]].sockets.empty() && !users_[pair.users[1]].sockets.empty()) {
        Queue(p, now_ns, now_ns);
      }
    }
  }
  if (now_ns - last_timeout_scan_ns_ >= kTimeoutScanNs) {
    last_timeout_scan_ns_ = now_ns;
    for (size_t p = 0; p < pairs_.size(); ++p) {
      if (pairs_[p].state == PairState::kInCall &&
          now_ns - pairs_[p].progress_ns > options_.call_timeout_ns) {
        ++stats_.timeouts;
        FailCall(p, now_ns, "no answer within the call timeout", /*retire=*/true);
      }
    }
  }
  if (phase == RunPhase::kDrain) {
    return;
  }
  auto pop_idle = [this, now_ns]() -> std::optional<size_t> {
    while (!ready_.empty() && ready_.top().first <= now_ns) {
      const size_t p = ready_.top().second;
      ready_.pop();
      if (pairs_[p].state == PairState::kIdle) {
        return p;
      }
    }
    return std::nullopt;
  };
  if (options_.rate > 0) {
    if (!scheduling_) {
      scheduling_ = true;
      schedule_start_ns_ = now_ns;
      scheduled_ = 0;
    }
    const double elapsed = static_cast<double>(now_ns - schedule_start_ns_);
    const uint64_t due = static_cast<uint64_t>(elapsed * options_.rate / kNsPerSecond) + 1;
    while (scheduled_ < due) {
      std::optional<size_t> p = pop_idle();
      if (!p) {
        // Every pair in a call, or the idle ones held back by the limits:
        // the next start will be late.
        waiting_ = ready_.empty() ? Wait::kBusy : Wait::kLimits;
        break;
      }
      const int64_t due_ns =
          schedule_start_ns_ +
          static_cast<int64_t>(static_cast<double>(scheduled_) * kNsPerSecond / options_.rate);
      if (now_ns - due_ns <= kLateNs) {
        waiting_ = Wait::kNone;
      } else if (phase == RunPhase::kMeasure) {
        ++stats_.late;
        ++(waiting_ == Wait::kLimits ? stats_.late_limits
           : waiting_ == Wait::kBusy ? stats_.late_busy
                                     : stats_.late_self);
      }
      ++scheduled_;
      StartCall(*p, now_ns, phase);
    }
  } else {
    const size_t cap = options_.window == 0 ? pairs_.size() : options_.window;
    while (in_flight_ < cap) {
      std::optional<size_t> p = pop_idle();
      if (!p) {
        break;
      }
      StartCall(*p, now_ns, phase);
    }
    if (phase == RunPhase::kMeasure) {
      if (limited_ && last_tick_ns_ != 0) {
        stats_.limited_ns += now_ns - last_tick_ns_;
      }
      limited_ = in_flight_ < cap && !ready_.empty();
      last_tick_ns_ = now_ns;
    }
  }
}

int64_t CallDriver::NextWakeNs(int64_t now_ns, RunPhase phase) const {
  int64_t wake = now_ns + kTimeoutScanNs;
  if (phase != RunPhase::kWarmup && phase != RunPhase::kMeasure) {
    return wake;
  }
  if (ready_.empty()) {
    return wake;
  }
  int64_t next = ready_.top().first;
  if (options_.rate > 0) {
    const int64_t due_ns =
        schedule_start_ns_ +
        static_cast<int64_t>(static_cast<double>(scheduled_) * kNsPerSecond / options_.rate);
    next = std::max(next, due_ns);
  } else if (in_flight_ >= (options_.window == 0 ? pairs_.size() : options_.window)) {
    return wake;
  }
  return std::min(wake, std::max(next, now_ns));
}

}  // namespace turnkey::bench
