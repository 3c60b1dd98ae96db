// Stateful libFuzzer target for CallManager (signal/call_manager.h): the
// input is a program of operations that hostile or unlucky clients can cause
// (sockets of four users connecting, dropping and being resumed, call events
// with structured or arbitrary JSON payloads, the REST stand-in devices, a
// two-step initiateCall with something in between, draining, EndAll, option
// reloads) with a fake clock moved in small and large steps and the timers
// run as the signaling loop runs them. The fake sinks check the promises of
// call_manager.h and call_sinks.h as they are called and trap when one is
// broken; at the end every socket drops and time runs out, after which no
// call may be left live and no ended call remembered.
//
// Set TURNKEY_CALLS_FUZZ_STATS=1 to print, at exit, how often the deep
// paths were reached (run it over a corpus with -runs=0), and
// TURNKEY_CALLS_FUZZ_TRACE=1 to print what one input does.
//
// Build: -DTURNKEY_FUZZ=ON with clang (tests/fuzz/CMakeLists.txt).
// Run:   ./calls_fuzz -max_total_time=60 <scratch dir> tests/fuzz/corpus/calls_fuzz
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "signal/call_manager.h"
#include "tests/fuzz/fuzz_reader.h"

namespace turnkey::signal {
namespace {

// TURNKEY_CALLS_FUZZ_TRACE=1: print each operation and emit, and the line
// of a broken invariant (to read a crash input).
bool trace = false;

void Check(bool ok, std::source_location where = std::source_location::current()) {
  if (!ok) {
    if (trace) {
      std::fprintf(stderr, "calls_fuzz: invariant broken at line %u\n",
                   static_cast<unsigned>(where.line()));
    }
    __builtin_trap();
  }
}

template <typename... Args>
void Trace(const char* format, Args... args) {
  if (trace) {
    std::fprintf(stderr, format, args...);
  }
}

// ---- Coverage statistics (TURNKEY_CALLS_FUZZ_STATS) ----------------------------------

enum Stat : size_t {
  kStatInputs,
  kStatCreated,
  kStatRinging,
  kStatAccepted,
  kStatGlare,
  kStatAnsweredElsewhere,
  kStatRejected,
  kStatBusy,
  kStatUnavailable,
  kStatCancelled,
  kStatCompleted,
  kStatIceFailed,
  kStatRingTimeout,
  kStatConnectionLost,
  kStatEndAll,
  kStatOfferRelayed,
  kStatAnswerRelayed,
  kStatCandidateRelayed,
  kStatIceReported,
  kStatPeerReconnected,
  kStatRejoinedElsewhere,
  kStatTellEndedAgain,
  kStatRateLimited,
  kStatRejoinMoved,
  kStatAdoptedInGrace,
  kStatResumeTookBack,
  kStatCount,
};
constexpr std::array<const char*, kStatCount> kStatNames = {
    "inputs",
    "calls created",
    "calls rung",
    "accepted",
    "glare merged",
    "answered elsewhere",
    "rejected",
    "busy",
    "unavailable",
    "cancelled",
    "completed",
    "ice_failed",
    "ring timeouts",
    "connection_lost",
    "ended by EndAll",
    "offers relayed",
    "answers relayed",
    "candidates relayed",
    "ICE reports recorded",
    "peerReconnected",
    "rejoined_elsewhere",
    "callEnded told again",
    "rate limited",
    "moved by rejoinCall",
    "adopted in grace",
    "resume took side back",
};

std::array<uint64_t, kStatCount> stats{};
// Inputs in which each path was reached at least once.
std::array<uint64_t, kStatCount> inputs_with{};
bool stats_on = false;
// Off while a run drains (every socket drops at its end): what is counted is
// what the program itself reached.
bool counting = true;

void Count(Stat stat) {
  if (counting) {
    ++stats[stat];
  }
}

void PrintStats() {
  std::fprintf(stderr, "calls_fuzz coverage (events / inputs reaching it):\n");
  for (size_t i = 0; i < kStatCount; ++i) {
    std::fprintf(stderr, "  %-22s %10llu %8llu\n", kStatNames[i],
                 static_cast<unsigned long long>(stats[i]),
                 static_cast<unsigned long long>(inputs_with[i]));
  }
}

// ---- The cast ---------------------------------------------------------------------------

constexpr size_t kUsers = 4;
constexpr std::array<std::string_view, kUsers> kUserIds = {"u-ann", "u-ben", "u-cat", "u-dan"};
constexpr std::array<std::string_view, kUsers> kHandles = {"ann", "Ben", "cat", "dan"};
// Registered, never connected: calls to them end `unavailable`.
constexpr std::string_view kOfflineId = "u-eve";

bool IsUser(std::string_view id) {
  return id == kOfflineId || std::find(kUserIds.begin(), kUserIds.end(), id) != kUserIds.end();
}

// The error strings of call.h: the only ones callError and acks may carry.
constexpr std::array<std::string_view, 18> kErrors = {
    kErrReceiverIdRequired, kErrReceiverNotFound,     kErrCallIdRequired,  kErrCallNotFound,
    kErrNotAuthorized,      kErrCallAlreadyProcessed, kErrUserBusy,        kErrRateLimited,
    kErrUserNotAvailable,   kErrCannotCallYourself,   kErrInvalidCallType, kErrAlreadyInCall,
    kErrShuttingDown,       kErrOfferRequired,        kErrAnswerRequired,  kErrCandidateRequired,
    kErrInvalidIceState,    kErrCallNotActive,
};
constexpr std::array<std::string_view, 11> kReasons = {
    kReasonHangup,         kReasonRejected,          kReasonBusy,           kReasonCancelled,
    kReasonTimeout,        kReasonUnavailable,       kReasonConnectionLost, kReasonIceFailed,
    kReasonServerShutdown, kReasonRejoinedElsewhere, "fuzz_reason",
};
// Every event CallManager emits.
constexpr std::array<std::string_view, 16> kEmitted = {
    "callInitiated",         "incomingCall",        "userNotAvailable",
    "callRejected",          "callAcceptedConfirm", "callAccepted",
    "callAnsweredElsewhere", "callRejectedConfirm", "callEnded",
    "callEndedConfirm",      "receiveOffer",        "receiveAnswer",
    "receiveIceCandidate",   "peerReconnected",     "callError",
    "callTimeout",
};
constexpr std::array<std::string_view, 11> kEvents = {
    "initiateCall",     "acceptCall", "rejectCall", "endCall",       "sendOffer", "sendAnswer",
    "sendIceCandidate", "reportIce",  "rejoinCall", "getIceServers", "leaveRoom",
};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& set, std::string_view value) {
  return std::find(set.begin(), set.end(), value) != set.end();
}

// ---- The input ------------------------------------------------------------------------------

using Reader = fuzz::FuzzReader;

// ---- The world the manager sees, and the fake sinks that check it ------------------------

struct CallModel {
  std::string caller;
  std::string callee;
  bool answered = false;
  bool ended = false;
  std::array<int, 2> ice_reports{};  // per CallSide
};

struct World {
  // Sockets ever registered: id -> user, and whether registered now.
  std::map<uint64_t, std::string> socket_user;
  std::set<uint64_t> connected;
  uint64_t next_socket = 1;

  std::map<std::string, CallModel> calls;  // every created call
  std::vector<std::string> call_ids;       // in creation order, for payloads
  int max_ice_reports = 0;                 // the largest cap ever in force
  // Relayed messages the harness numbered, and the last number delivered
  // per call and sender.
  uint64_t relay_seq = 0;
  std::map<std::string, uint64_t> last_seq;
  // Sockets ringing for a call (told incomingCall and nothing since that
  // stops the ringing); the sockets of the live calls' sides after the last
  // operation; which socket was told a call left ringing or ended, during the
  // current operation.
  std::map<uint64_t, std::set<std::string>> ringing;
  std::set<std::pair<uint64_t, std::string>> sides;
  std::set<std::pair<uint64_t, std::string>> told;

  // The socket whose event is being handled (0: none), and what the event
  // emitted.
  uint64_t requester = 0;
  std::vector<std::pair<uint64_t, Json>> call_errors;
  size_t emits = 0;

  bool InLive(std::string_view user) const {
    for (const auto& [id, call] : calls) {
      if (!call.ended && (call.caller == user || call.callee == user)) {
        return true;
      }
    }
    return false;
  }
};

class CheckingEmitter final : public CallEmitter {
 public:
  explicit CheckingEmitter(World& world) : world_(world) {}
  void Emit(uint64_t socket, std::string_view event, Json payload) override {
    ++world_.emits;
    Trace("    -> %llu %.*s %s\n", static_cast<unsigned long long>(socket),
          static_cast<int>(event.size()), event.data(), payload.dump().c_str());
    Check(OneOf(kEmitted, event));
    Check(payload.is_object());
    if (event == "callError") {
      // Errors answer the requesting socket, registered or not.
      Check(socket == world_.requester);
      Check(payload.size() == 2 && payload.contains("callId"));
      auto error = payload.find("error");
      Check(error != payload.end() && error->is_string() &&
            OneOf(kErrors, error->get_ref<const std::string&>()));
      world_.call_errors.emplace_back(socket, std::move(payload));
      return;
    }
    // Nothing else goes to a socket that is not registered: the manager
    // learns of every socket from OnSocketConnected and forgets it on
    // disconnect.
    Check(world_.connected.contains(socket));
    const std::string& user = world_.socket_user[socket];
    // Everything else is about a created call and goes to a participant.
    auto id = payload.find("callId");
    Check(id != payload.end() && id->is_string());
    auto call = world_.calls.find(id->get_ref<const std::string&>());
    Check(call != world_.calls.end());
    Check(user == call->second.caller || user == call->second.callee);
    // Once recorded as ended, a call is only told again as ended.
    Check(!call->second.ended || event == "callEnded");
    // Confirms (and callInitiated) answer the socket that asked.
    Check(!(event.ends_with("Confirm") || event == "callInitiated") || socket == world_.requester);
    const std::string& call_id = id->get_ref<const std::string&>();
    if (event == "incomingCall") {
      world_.ringing[socket].insert(call_id);
    } else if (event == "callAcceptedConfirm" || event == "callAnsweredElsewhere" ||
               event == "callEnded" || event.ends_with("EndedConfirm") ||
               event == "callRejectedConfirm") {
      world_.ringing[socket].erase(call_id);
    }
    if (event == "callEnded" || event == "callEndedConfirm" || event == "callRejectedConfirm" ||
        event == "callTimeout" || event == "callRejected") {
      world_.told.emplace(socket, call_id);
    }
    if (event == "callEnded") {
      auto reason = payload.find("reason");
      Check(reason != payload.end() && reason->is_string() &&
            OneOf(kReasons, reason->get_ref<const std::string&>()));
      auto by = payload.find("endedBy");
      Check(by != payload.end() &&
            (by->is_null() ||
             (by->is_string() && (*by == call->second.caller || *by == call->second.callee))));
    } else if (event == "incomingCall" || event == "callAnsweredElsewhere") {
      Check(user == call->second.callee);
    } else if (event == "callInitiated" || event == "callAccepted" || event == "callTimeout" ||
               event == "userNotAvailable" || event == "callRejected") {
      Check(user == call->second.caller);
    } else if (event.starts_with("receive")) {
      Check(call->second.answered || user == call->second.callee);
      auto from = payload.find("from");
      Check(from != payload.end() && from->is_string() && *from != user);
      // What one side sends reaches the other in order, once, held or not.
      for (const char* field : {"offer", "answer", "candidate"}) {
        auto value = payload.find(field);
        if (value != payload.end() && value->is_object() && value->contains("seq")) {
          uint64_t& last = world_.last_seq[id->get<std::string>() + "/" + from->get<std::string>()];
          const uint64_t seq = value->value("seq", uint64_t{0});
          Check(seq > last);
          last = seq;
        }
      }
      Count(event == "receiveOffer"    ? kStatOfferRelayed
            : event == "receiveAnswer" ? kStatAnswerRelayed
                                       : kStatCandidateRelayed);
    }
    {
      if (event == "callAnsweredElsewhere") {
        Count(kStatAnsweredElsewhere);
      } else if (event == "peerReconnected") {
        Count(kStatPeerReconnected);
      } else if (event == "callEnded" && payload.value("reason", "") == kReasonRejoinedElsewhere) {
        Count(kStatRejoinedElsewhere);
      } else if (event == "callEnded" && call->second.ended) {
        Count(kStatTellEndedAgain);
      }
    }
  }

 private:
  World& world_;
};

// call_sinks.h: CallCreated once, at most one CallAnswered, exactly one
// CallEnded; ICE reports only for answered calls (also shortly after their
// end, call_manager.h), at most max_ice_reports_per_side per side.
class CheckingRecorder final : public CallRecorder {
 public:
  explicit CheckingRecorder(World& world) : world_(world) {}
  void CallCreated(const CallInfo& info) override {
    Trace("    created %s %s -> %s\n", info.id.c_str(), info.caller_id.c_str(),
          info.callee_id.c_str());
    Check(!info.id.empty() && !world_.calls.contains(info.id));
    Check(IsUser(info.caller_id) && IsUser(info.callee_id) && info.caller_id != info.callee_id);
    // The caller is free; the callee may be busy (the call then ends at once).
    Check(!world_.InLive(info.caller_id));
    world_.calls[info.id] = CallModel{.caller = info.caller_id, .callee = info.callee_id};
    world_.call_ids.push_back(info.id);
    Count(kStatCreated);
  }
  void CallAnswered(const CallInfo& info, base::MonoTime /*answered_at*/) override {
    CallModel& call = Find(info.id);
    Check(!call.answered && !call.ended);
    call.answered = true;
    Count(kStatAccepted);
  }
  void CallEnded(const CallEndRecord& end) override {
    Trace("    ended %s %s\n", end.call.id.c_str(), end.reason.c_str());
    CallModel& call = Find(end.call.id);
    Check(!call.ended);
    Check(end.answered_at.has_value() == call.answered);
    Check(end.duration_seconds >= 0);
    Check(end.ended_by.empty() || end.ended_by == call.caller || end.ended_by == call.callee);
    Check(OneOf(kReasons, end.reason));
    call.ended = true;
    // Only an answered call completes or fails ICE; connection_lost may end
    // either kind; every other end is of a call never answered.
    using metrics::CallStatus;
    if (end.status != CallStatus::kConnectionLost) {
      Check(call.answered ==
            (end.status == CallStatus::kCompleted || end.status == CallStatus::kIceFailed));
    }
    Count(StatOf(end));
  }
  static Stat StatOf(const CallEndRecord& end) {
    using metrics::CallStatus;
    switch (end.status) {
      case CallStatus::kCompleted:
        return kStatCompleted;
      case CallStatus::kIceFailed:
        return kStatIceFailed;
      case CallStatus::kConnectionLost:
        return kStatConnectionLost;
      case CallStatus::kMissed:
        return end.reason == kReasonTimeout ? kStatRingTimeout : kStatEndAll;
      case CallStatus::kRejected:
        return kStatRejected;
      case CallStatus::kBusy:
        return kStatBusy;
      case CallStatus::kCancelled:
        return kStatCancelled;
      case CallStatus::kUnavailable:
        return kStatUnavailable;
      default:
        Check(false);
        return kStatCompleted;
    }
  }
  void IceReported(const IceReportRecord& report) override {
    CallModel& call = Find(report.call_id);
    Check(call.answered);
    const std::string& user = report.side == CallSide::kCaller ? call.caller : call.callee;
    Check(report.user_id == user);
    int& reports = call.ice_reports[static_cast<size_t>(report.side)];
    ++reports;
    Check(reports <= world_.max_ice_reports);
    Check(!report.rtt_ms || (*report.rtt_ms >= 0 && *report.rtt_ms <= 600000));
    Count(kStatIceReported);
  }

 private:
  CallModel& Find(const std::string& id) {
    auto it = world_.calls.find(id);
    Check(it != world_.calls.end());
    return it->second;
  }
  World& world_;
};

class CountingMetrics final : public CallMetricsSink {
 public:
  void CallEnded(metrics::CallType, metrics::CallStatus) override { ++ended; }
  void CallSetup(base::Duration setup, base::Duration since_answer) override {
    Check(setup >= since_answer && since_answer >= base::Duration::zero());
    ++setups;
  }
  void IceReport(metrics::IceResult, metrics::CandidateType, metrics::CandidateType,
                 std::optional<int64_t>) override {
    ++ice;
  }
  size_t ended = 0;
  size_t setups = 0;
  size_t ice = 0;
};

class Directory final : public UserDirectory {
 public:
  std::optional<UserInfo> FindById(std::string_view id) override {
    for (size_t i = 0; i < kUsers; ++i) {
      if (kUserIds[i] == id) {
        return UserInfo{std::string(id), std::string(kHandles[i]), "User " + std::to_string(i)};
      }
    }
    if (id == kOfflineId) {
      return UserInfo{std::string(id), "eve", ""};
    }
    return std::nullopt;
  }
  std::optional<UserInfo> FindByHandle(std::string_view handle) override {
    auto lower = [](std::string_view s) {
      std::string out(s);
      for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
          c = static_cast<char>(c - 'A' + 'a');
        }
      }
      return out;
    };
    for (size_t i = 0; i < kUsers; ++i) {
      if (lower(kHandles[i]) == lower(handle)) {
        return FindById(kUserIds[i]);
      }
    }
    return lower(handle) == "eve" ? FindById(kOfflineId) : std::nullopt;
  }
};

// ---- Options ---------------------------------------------------------------------------------

CallManagerOptions PickOptions(Reader& in) {
  CallManagerOptions options;
  const uint8_t bits = in.U8();
  if (bits & 1) {
    options.ring_timeout = std::chrono::seconds(1 + in.Pick(40));
    options.reconnect_grace = std::chrono::seconds(1 + in.Pick(20));
    options.ended_call_retention = std::chrono::seconds(1 + in.Pick(90));
  }
  if (bits & 2) {
    options.max_held_messages = in.Pick(4);
    // Read nothing more (the corpus stays as it was): small enough that
    // the byte cap refuses some of the harness's payloads before the count.
    options.max_held_bytes = options.max_held_messages * 40;
    options.max_ice_reports_per_side = static_cast<int>(in.Pick(4));
  }
  if (bits & 4) {
    // Rate limits off, so long programs keep calling.
    options.initiate_socket_rate = 0;
    options.initiate_user_rate = 0;
  } else if (bits & 8) {
    options.initiate_socket_burst = 1 + in.Pick(3);
    options.initiate_user_burst = 1 + in.Pick(3);
  }
  if (bits & 16) {
    options.max_remembered_ended_calls = in.Pick(4);
  }
  return options;
}

// ---- One run ------------------------------------------------------------------------------

class Run {
 public:
  explicit Run(Reader& in)
      : in_(in), emitter_(world_), recorder_(world_), options_(PickOptions(in)), id_mode_(in.U8()) {
    manager_.emplace(options_, emitter_, recorder_, metrics_, [this] {
      // Sometimes a generator that fails now and then (NewCallId retries).
      // Never one that repeats: an id forgotten after ended_call_retention
      // would be taken again, which only a broken generator causes.
      if ((id_mode_ & 1) && ++id_draws_ % 3 == 0) {
        return std::string();
      }
      return "c" + std::to_string(++ids_);
    });
    Track(options_);
  }

  void Go() {
    for (int steps = 0; !in_.empty() && steps < 400; ++steps) {
      Step();
      CheckState();
    }
    Drain();
  }

 private:
  CallManager& m() { return *manager_; }

  void Track(const CallManagerOptions& options) {
    longest_ = std::max({longest_, options.ring_timeout, options.reconnect_grace});
    longest_retention_ = std::max(longest_retention_, options.ended_call_retention);
    world_.max_ice_reports = std::max(world_.max_ice_reports, options.max_ice_reports_per_side);
  }

  std::optional<uint64_t> PickConnected() {
    if (world_.connected.empty()) {
      return std::nullopt;
    }
    auto it = world_.connected.begin();
    std::advance(it, in_.Pick(world_.connected.size()));
    return *it;
  }
  // Any socket ever seen, or one never registered.
  uint64_t PickAnySocket() {
    const size_t n = world_.socket_user.size();
    const size_t i = in_.Pick(n + 1);
    if (i == n) {
      return 999;
    }
    auto it = world_.socket_user.begin();
    std::advance(it, i);
    return it->first;
  }

  uint64_t Connect(size_t user) {
    const uint64_t socket = world_.next_socket++;
    world_.socket_user[socket] = std::string(kUserIds[user]);
    world_.connected.insert(socket);
    Trace("connect %llu %s\n", static_cast<unsigned long long>(socket), kUserIds[user].data());
    Check(m().OnSocketConnected(now_, socket, kUserIds[user]));
    return socket;
  }
  void Disconnect(uint64_t socket) {
    world_.connected.erase(socket);
    world_.ringing.erase(socket);
    Trace("disconnect %llu\n", static_cast<unsigned long long>(socket));
    m().OnSocketDisconnected(now_, socket);
  }

  void Advance(base::Duration step) {
    now_ += step;
    Trace("advance %lld ms\n",
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(step).count()));
    m().OnTimer(now_);
  }

  void Step() {
    const uint8_t op = in_.U8();
    switch (op % 16) {
      case 0:
      case 1:
        if (world_.connected.size() < 12) {
          Connect(in_.Pick(kUsers));
        }
        break;
      case 2:
        if (auto socket = PickConnected()) {
          Disconnect(*socket);
        }
        break;
      case 3: {
        // Connection-state recovery of a socket seen gone: registered again
        // under its number, then resumed.
        const uint64_t socket = PickAnySocket();
        if (!world_.socket_user.contains(socket) || world_.connected.contains(socket)) {
          break;
        }
        world_.connected.insert(socket);
        Trace("resume lost %llu\n", static_cast<unsigned long long>(socket));
        Check(m().OnSocketConnected(now_, socket, world_.socket_user[socket]));
        std::optional<base::MonoTime> away_since;
        if (in_.U8() & 1) {
          away_since = now_ - std::chrono::seconds(in_.Pick(120));
        }
        const std::optional<SideSocket> before = SideOfUser(world_.socket_user[socket]);
        m().OnSocketResumed(now_, socket, /*was_connected=*/false, away_since);
        const std::optional<SideSocket> after = SideOfUser(world_.socket_user[socket]);
        if (before && after && before->socket != after->socket) {
          // Only the socket the side lost takes it back.
          Check(!before->socket && before->in_grace && after->socket == socket);
          Count(kStatResumeTookBack);
        }
        break;
      }
      case 4:
        if (auto socket = PickConnected()) {
          Trace("resume replaced %llu\n", static_cast<unsigned long long>(*socket));
          m().OnSocketResumed(now_, *socket, /*was_connected=*/true);
        }
        break;
      case 5:
      case 6:
      case 7:
      case 8:
      case 9:
        SendEvent();
        break;
      case 10:
        Advance(std::chrono::milliseconds(in_.U8()) * 50);
        break;
      case 11: {
        const CallManagerOptions& o = m().options();
        const base::Duration steps[] = {o.ring_timeout, o.reconnect_grace, o.ended_call_retention,
                                        std::chrono::seconds(1)};
        Advance(steps[in_.Pick(4)]);
        break;
      }
      case 12:
        if (std::optional<base::MonoTime> next = m().NextDeadline(); next && *next > now_) {
          Advance(*next - now_);
        } else {
          m().OnTimer(now_);
        }
        break;
      case 13:
        RestAction();
        break;
      case 14:
        TwoStepInitiate();
        break;
      case 15:
        Rare();
        break;
    }
  }

  void Rare() {
    switch (in_.Pick(3)) {
      case 0:
        m().SetDraining(!m().draining());
        break;
      case 1: {
        const std::string_view reasons[] = {kReasonServerShutdown, kReasonConnectionLost,
                                            "fuzz_reason"};
        m().EndAll(now_, reasons[in_.Pick(3)]);
        CheckNoneLive();
        break;
      }
      case 2: {
        CallManagerOptions options = PickOptions(in_);
        Track(options);
        m().SetOptions(options);
        break;
      }
    }
  }

  Json PickUserId() {
    const size_t i = in_.Pick(kUsers + 4);
    if (i < kUsers) {
      return std::string(kUserIds[i]);
    }
    switch (i - kUsers) {
      case 0:
        return std::string(kOfflineId);
      case 1:
        return "nobody";
      case 2:
        return std::string(200, 'x');
      default:
        return 7;
    }
  }
  Json PickCallId() {
    const size_t i = in_.U8();
    if (!world_.call_ids.empty() && i < 224) {
      // The newest calls most often.
      const size_t back = i % std::min<size_t>(world_.call_ids.size(), 8);
      return world_.call_ids[world_.call_ids.size() - 1 - back];
    }
    switch (i % 4) {
      case 0:
        return "";
      case 1:
        return "c999";
      case 2:
        return nullptr;
      default:
        return Json::array({"c1"});
    }
  }
  Json PickValue() {
    switch (in_.Pick(6)) {
      case 0:
        return Json::object({{"type", "offer"}, {"sdp", "v=0"}, {"seq", ++world_.relay_seq}});
      case 1:
        return "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host";
      case 2:
        return nullptr;
      case 3:
        return Json::object();
      case 4:
        return RawJson();
      default:
        return 0;
    }
  }
  // Arbitrary JSON from the input; null when it does not parse.
  Json RawJson() {
    const std::string_view text = in_.TakeText(in_.Pick(48));
    Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    return json.is_discarded() ? Json() : json;
  }

  Json Payload(std::string_view event) {
    const uint8_t mode = in_.U8();
    if (mode % 8 == 0) {
      return RawJson();
    }
    Json payload = Json::object();
    const uint8_t fields = in_.U8();
    if (event == "initiateCall") {
      if (!(fields & 1)) {
        payload["receiverId"] = PickUserId();
      }
      if (fields & 2) {
        const std::string_view handles[] = {"ann", "@BEN", "cat", "@", "eve", "zed"};
        payload["receiverHandle"] = handles[in_.Pick(6)];
      }
      if (!(fields & 4)) {
        const Json types[] = {"audio", "video", "Video", 1};
        payload["callType"] = types[in_.Pick(4)];
      }
    } else if (!(fields & 1)) {
      payload["callId"] = PickCallId();
    }
    if (event == "sendOffer" || (fields & 8)) {
      payload["offer"] = PickValue();
    }
    if (event == "sendAnswer" || (fields & 16)) {
      payload["answer"] = PickValue();
    }
    if (event == "sendIceCandidate" || (fields & 32)) {
      payload["candidate"] = PickValue();
    }
    if (event == "reportIce" || (fields & 64)) {
      const Json states[] = {"connected", "failed", "checking", nullptr};
      payload["state"] = states[in_.Pick(4)];
      const Json types[] = {"host", "srflx", "relay", "prflx", "bogus", 3};
      payload["localCandidateType"] = types[in_.Pick(6)];
      payload["remoteCandidateType"] = types[in_.Pick(6)];
      const Json protocols[] = {"udp", "tcp", "tls", "sctp"};
      payload["relayProtocol"] = protocols[in_.Pick(4)];
      const Json rtts[] = {42, 12.6, -1, 600001, 1e300, "5", nullptr, 600000};
      payload["rttMs"] = rtts[in_.Pick(8)];
    }
    if (fields & 128) {
      payload["extra"] = RawJson();
    }
    return payload;
  }

  // The ack of one client event, and what it emitted, against the contract.
  void CheckAck(uint64_t socket, const Json& ack, bool registered) {
    world_.requester = 0;
    Check(ack.is_object());
    auto ok = ack.find("ok");
    Check(ok != ack.end() && ok->is_boolean());
    if (ok->get<bool>()) {
      Check(world_.call_errors.empty());
      auto id = ack.find("callId");
      Check(id != ack.end() && id->is_string() &&
            world_.calls.contains(id->get_ref<const std::string&>()));
      return;
    }
    // A failed event: exactly one callError, to the requesting socket (if
    // it is registered: nothing is emitted to a stranger), saying the same.
    auto error = ack.find("error");
    Check(error != ack.end() && error->is_string() &&
          OneOf(kErrors, error->get_ref<const std::string&>()));
    if (*error == kErrRateLimited) {
      Count(kStatRateLimited);
    }
    if (!registered) {
      Check(*error == kErrNotAuthorized || *error == kErrCallIdRequired);
    }
    Check(world_.call_errors.size() == 1);
    const auto& [to, told] = world_.call_errors.front();
    Check(to == socket);
    Check(told["error"] == *error);
    auto id = ack.find("callId");
    Check(id == ack.end() ? told["callId"].is_null() : told["callId"] == *id);
  }

  void SendEvent() {
    const uint64_t socket = (in_.U8() & 7) == 0 ? PickAnySocket() : PickConnected().value_or(1);
    const std::string_view event = kEvents[in_.Pick(kEvents.size())];
    const Json payload = Payload(event);
    const bool registered = world_.connected.contains(socket);
    world_.call_errors.clear();
    world_.requester = socket;
    world_.emits = 0;
    Trace("%llu sends %.*s %s\n", static_cast<unsigned long long>(socket),
          static_cast<int>(event.size()), event.data(), payload.dump().c_str());
    const std::string user = registered ? world_.socket_user[socket] : std::string();
    const std::optional<SideSocket> before = SideOfUser(user);
    std::optional<Json> ack = m().OnEvent(now_, socket, event, payload, directory_);
    Trace("  ack %s\n", ack ? ack->dump().c_str() : "none");
    const std::optional<SideSocket> after = SideOfUser(user);
    if (before && after && before->call_id == after->call_id && before->socket != after->socket &&
        before->socket) {
      // A side whose socket is alive moves only by rejoinCall.
      Check(event == "rejoinCall");
      Count(kStatRejoinMoved);
    } else if (before && after && before->call_id == after->call_id && !before->socket &&
               after->socket && before->in_grace) {
      Check(after->socket == socket);
      Count(event == "rejoinCall" ? kStatRejoinMoved : kStatAdoptedInGrace);
    }
    if (event == "getIceServers" || event == "leaveRoom") {
      world_.requester = 0;
      Check(!ack && world_.emits == 0);
      return;
    }
    Check(ack.has_value());
    if (ack) {
      CheckAck(socket, *ack, registered);
      if (event == "initiateCall" && ack->value("glare", false)) {
        Count(kStatGlare);
      }
      if (event == "initiateCall" && ack->value("ok", false) && !ack->contains("glare")) {
        Count(kStatRinging);
      }
    }
  }

  // POST /api/calls/end|reject: a stand-in device for the one request
  // (CallService::RunRestAction); accept runs from the user's newest socket.
  void RestAction() {
    const size_t user = in_.Pick(kUsers);
    const uint8_t what = in_.U8();
    Json payload = Json::object({{"callId", PickCallId()}});
    if (what % 3 == 2) {
      std::optional<uint64_t> newest;
      for (uint64_t s : world_.connected) {
        if (world_.socket_user[s] == kUserIds[user]) {
          newest = s;
        }
      }
      if (newest) {
        world_.call_errors.clear();
        world_.requester = *newest;
        CheckAck(*newest, m().OnAcceptCall(now_, *newest, payload), true);
      }
      return;
    }
    const uint64_t stand_in = Connect(user);
    world_.call_errors.clear();
    world_.requester = stand_in;
    Json ack = what % 3 == 0 ? m().OnEndCall(now_, stand_in, payload)
                             : m().OnRejectCall(now_, stand_in, payload);
    CheckAck(stand_in, ack, true);
    Disconnect(stand_in);
  }

  // BeginInitiateCall, something else meanwhile (the lookups run on a work
  // queue), FinishInitiateCall.
  void TwoStepInitiate() {
    std::optional<uint64_t> socket = PickConnected();
    if (!socket) {
      return;
    }
    const Json payload = Payload("initiateCall");
    world_.call_errors.clear();
    world_.requester = *socket;
    std::expected<InitiateRequest, Json> request = m().BeginInitiateCall(now_, *socket, payload);
    if (!request) {
      CheckAck(*socket, request.error(), true);
      return;
    }
    Check(world_.call_errors.empty());
    world_.requester = 0;
    const std::string caller = world_.socket_user[*socket];
    const uint8_t meanwhile = in_.U8();
    if (meanwhile % 4 == 1 && depth_ < 4) {
      ++depth_;
      Step();
      --depth_;
      CheckState();
    } else if (meanwhile % 4 == 2) {
      Disconnect(*socket);
    }
    std::optional<UserInfo> receiver = request->receiver_id.empty()
                                           ? directory_.FindByHandle(request->receiver_handle)
                                           : directory_.FindById(request->receiver_id);
    UserInfo caller_info = directory_.FindById(caller).value_or(UserInfo{.id = caller});
    world_.call_errors.clear();
    world_.requester = *socket;
    Json ack = m().FinishInitiateCall(now_, *socket, *request, receiver, caller_info);
    CheckAck(*socket, ack, world_.connected.contains(*socket));
  }

  // The socket of `user`'s side of their live call.
  struct SideSocket {
    std::string call_id;
    std::optional<uint64_t> socket;
    bool in_grace = false;
  };
  std::optional<SideSocket> SideOfUser(const std::string& user) {
    if (user.empty()) {
      return std::nullopt;
    }
    std::optional<std::string> id = m().CurrentCallOf(user);
    if (!id) {
      return std::nullopt;
    }
    std::optional<CallManager::CallView> view = m().FindCall(*id);
    Check(view.has_value());
    const bool caller = view->info.caller_id == user;
    return SideSocket{*id, caller ? view->caller_socket : view->callee_socket,
                      caller ? view->caller_in_grace : view->callee_in_grace};
  }

  // The manager's view agrees with what the sinks were told, and no user is
  // in two live calls.
  void CheckState() {
    // Nobody is left ringing for a call that was answered or ended, and a
    // side's socket that is still connected hears of its call's end.
    for (const auto& [socket, ids] : world_.ringing) {
      for (const std::string& id : ids) {
        const CallModel& call = world_.calls.at(id);
        Check(!call.answered && !call.ended);
      }
    }
    for (const auto& [socket, id] : world_.sides) {
      if (world_.calls.at(id).ended && world_.connected.contains(socket)) {
        Check(world_.told.contains({socket, id}));
      }
    }
    world_.sides.clear();
    world_.told.clear();
    size_t live = 0;
    std::map<std::string, std::string> user_call;
    for (const auto& [id, call] : world_.calls) {
      if (call.ended) {
        Check(!m().FindCall(id).has_value());
        continue;
      }
      ++live;
      for (const std::string* user : {&call.caller, &call.callee}) {
        Check(user_call.emplace(*user, id).second);
      }
      std::optional<CallManager::CallView> view = m().FindCall(id);
      Check(view.has_value());
      if (view) {
        Check((view->state == CallState::kActive) == call.answered);
        Check(view->state != CallState::kEnded);
        // A side's socket is a registered socket of that side's user.
        for (auto [socket, user] : {std::pair{view->caller_socket, &call.caller},
                                    std::pair{view->callee_socket, &call.callee}}) {
          if (socket) {
            world_.sides.emplace(*socket, id);
            Check(world_.connected.contains(*socket) && world_.socket_user[*socket] == *user);
          }
        }
        Check(!view->caller_in_grace || !view->caller_socket);
        Check(!view->callee_in_grace || !view->callee_socket);
      }
    }
    Check(m().call_count() == live);
    for (size_t i = 0; i < kUsers; ++i) {
      auto it = user_call.find(std::string(kUserIds[i]));
      Check(m().CurrentCallOf(kUserIds[i]) ==
            (it == user_call.end() ? std::nullopt : std::optional<std::string>(it->second)));
    }
    Check(metrics_.ended == Ended());
    // Call setup once per answered call at most; a side's first ICE report
    // only in the ICE metrics.
    size_t answered = 0;
    size_t sides_reported = 0;
    for (const auto& [id, call] : world_.calls) {
      answered += call.answered ? 1 : 0;
      sides_reported += (call.ice_reports[0] > 0 ? 1 : 0) + (call.ice_reports[1] > 0 ? 1 : 0);
    }
    Check(metrics_.setups <= answered);
    Check(metrics_.ice == sides_reported);
    Check(m().presence().socket_count() == world_.connected.size());
  }

  size_t Ended() const {
    return static_cast<size_t>(std::count_if(world_.calls.begin(), world_.calls.end(),
                                             [](const auto& c) { return c.second.ended; }));
  }
  void CheckNoneLive() {
    Check(m().call_count() == 0);
    Check(Ended() == world_.calls.size());
  }

  // Every socket drops and time runs out: every call has ended, exactly
  // once, and then every ended call is forgotten.
  void Drain() {
    counting = false;
    while (!world_.connected.empty()) {
      Disconnect(*world_.connected.begin());
      CheckState();
    }
    Advance(longest_ + std::chrono::seconds(1));
    CheckNoneLive();
    Advance(longest_retention_ + std::chrono::seconds(1));
    Check(m().remembered_ended_calls() == 0);
    Check(!m().NextDeadline().has_value());
    CheckState();
  }

  Reader& in_;
  World world_;
  CheckingEmitter emitter_;
  CheckingRecorder recorder_;
  CountingMetrics metrics_;
  Directory directory_;
  CallManagerOptions options_;
  uint8_t id_mode_;
  int ids_ = 0;
  int id_draws_ = 0;  // calls of the id generator
  int depth_ = 0;     // TwoStepInitiate within TwoStepInitiate
  base::Duration longest_{};
  base::Duration longest_retention_{};
  base::MonoTime now_ = base::MonoTime{} + std::chrono::hours(1);
  std::optional<CallManager> manager_;
};

}  // namespace
}  // namespace turnkey::signal

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  using namespace turnkey::signal;
  if (const char* env = std::getenv("TURNKEY_CALLS_FUZZ_STATS"); env != nullptr && *env == '1') {
    stats_on = true;
    std::atexit(PrintStats);
  }
  if (const char* env = std::getenv("TURNKEY_CALLS_FUZZ_TRACE"); env != nullptr && *env == '1') {
    trace = true;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turnkey::signal;
  const std::array<uint64_t, kStatCount> before = stats;
  Reader in(data, size);
  counting = true;
  Run(in).Go();
  stats[kStatInputs]++;
  for (size_t i = 0; i < kStatCount; ++i) {
    if (stats[i] != before[i]) {
      ++inputs_with[i];
    }
  }
  return 0;
}
