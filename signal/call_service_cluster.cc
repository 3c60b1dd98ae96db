// CallService as one node of a cluster (DESIGN.md section 9).
//
// One node, the coordinator (ClusterLink), keeps the call state of all of
// them in its CallManager. Every node keeps its own sockets. A node that is
// not the coordinator tells it each socket that joins (before the client's
// CONNECT is answered: "conn", acked; told again unasked once joined if it
// was not) or leaves ("disc"), and all of them at once ("sync") whenever it
// learns the coordinator anew; it forwards each
// call event ("ev") and REST call action ("rest") with a request id, and
// answers the client with the ack that comes back ("ack", the answer in
// "p"), or "Server busy" when none comes within node_timeout (at least 2 s),
// its subscription was re-made meanwhile (the answer would have been lost)
// or the ack has no "p": what a node that is not the coordinator (any more,
// or not yet: a handover) answers to a request ("conn", "ev", "rest",
// "bar"). Each of these "Server busy" answers a socket's call event with
// callError too, as every refusal does. The coordinator knows another
// node's socket by a number of its own (remote_), and an emit to it is
// published to that node ("emit"). A sign-out or ended
// logins are told to every node ("signout", "logins"). A node that resumed a
// socket it still held (Socket.IO connection-state recovery: the client
// moved to a new connection) says so ("rsm"): the number stays the same.
// While its link is not ready (Redis away) the coordinator refuses call
// events and REST call actions "Server busy", as the other nodes do then:
// what it did could not be told to their sockets.
//
// When the coordinator changes, the call state it held is gone: a node that
// steps down ends its calls (callEnded reason connection_lost) and drops the
// other nodes' sockets (a call's end that no node heard, Redis being away,
// is sent again until it is: SendUntilHeard); the new one ends in the
// database the calls created before it took over (EndUnfinishedCalls), once
// its own history writes so far are in. A node the coordinator has not
// heard from for node_timeout loses its sockets, whose active calls get the
// reconnect grace like any dropped socket: a client that reconnects to
// another node and sends rejoinCall keeps its call. A stopping node waits
// until Redis has taken its last messages (EndCallsAndClose).
#include <algorithm>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"
#include "signal/call_payload.h"
#include "signal/call_service.h"
#include "sql/store.h"

namespace turnkey::signal {
namespace {

constexpr std::chrono::milliseconds kMinForwardWait{2000};
constexpr std::chrono::milliseconds kPendingSweep{250};
// How often a new coordinator tries again to end its predecessor's calls.
constexpr std::chrono::seconds kUnfinishedRetry{5};
// How often a call's end no node heard is sent again.
constexpr std::chrono::seconds kUnheardRetry{1};
// At most this many such ends are held (the oldest go first).
constexpr size_t kMaxUnheard = 10000;

// A uint64 field, or 0.
uint64_t NumberField(const Json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

int64_t IntField(const Json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// A bool field, or false.
bool BoolField(const Json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_boolean() && it->get<bool>();
}

std::string StringField(const Json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

base::Status CallService::SetUpCluster() {
  ClusterLink::Handlers handlers;
  // The link lives in this object and is destroyed first in Shutdown(), so
  // `this` outlives every call of these handlers.
  handlers.message = [this](const std::string& from, Json message) {
    OnClusterMessage(from, std::move(message));
  };
  handlers.role = [this](bool coordinator) { OnClusterRole(coordinator); };
  handlers.coordinator = [this](const std::string& node) { OnClusterCoordinator(node); };
  // Answers published while the subscription was down are lost: say so now
  // rather than after the wait.
  handlers.resubscribed = [this] { FailPending(); };
  handlers.node_gone = [this](const std::string& node) {
    // Gone from here, maybe not from their clients: a node cut off from
    // Redis (or frozen) for a while comes back with them.
    const base::MonoTime now = Now();
    std::erase_if(gone_remote_, [&](const auto& entry) { return GoneTooLong(entry.second, now); });
    for (const auto& [local, socket] : remote_) {
      if (socket.node == node) {
        const std::string* user =
            manager_ != nullptr ? manager_->presence().UserOf(local) : nullptr;
        if (user != nullptr) {
          gone_remote_[{node, socket.number}] = GoneRemote{local, *user, now};
        }
      }
    }
    DropRemoteSockets([&node](const RemoteSocket& socket) { return socket.node == node; });
    RefreshGauges();
  };
  cluster_ = ClusterLink::Create(loop_, service_.clock(), *options_.cluster, std::move(handlers));
  pending_timer_ = std::make_unique<net::Timer>(loop_, [this] { OnPendingTimer(); });
  unfinished_timer_ = std::make_unique<net::Timer>(loop_, [this] { EndLastCoordinatorsCalls(); });
  unheard_timer_ = std::make_unique<net::Timer>(loop_, [this] { OnUnheardTimer(); });
  service_.api().set_ready_check([this]() -> std::string {
    return cluster_ != nullptr ? cluster_->NotReadyReason() : std::string();
  });
  return base::Ok();
}

// ---- Every node ---------------------------------------------------------------------

void CallService::OnClusterMessage(const std::string& from, Json message) {
  if (manager_ == nullptr || sio_ == nullptr) {
    return;
  }
  CheckLease();
  const std::string type = StringField(message, "t");
  if (type == "signout" || type == "logins") {
    // Applied like a local one (tokens refused, sockets closed), through
    // ApiContext, whose hooks call back here without announcing it again.
    applying_remote_ = true;
    if (type == "signout") {
      const std::string user = StringField(message, "u");
      if (!user.empty()) {
        AccessToken current{.user_id = user,
                            .token_id = StringField(message, "j"),
                            .expires_at = IntField(message, "x"),
                            .session = ""};
        service_.api().EndUserSessions(user, current, IntField(message, "st"),
                                       StringField(message, "why"));
      }
    } else if (auto logins = message.find("l"); logins != message.end() && logins->is_array()) {
      std::vector<sql::EndedLogin> ended;
      for (const Json& login : *logins) {
        if (login.is_array() && login.size() == 3 && login[0].is_string() && login[1].is_string() &&
            login[2].is_number_integer()) {
          ended.push_back(sql::EndedLogin{.family_id = login[1].get<std::string>(),
                                          .user_id = login[0].get<std::string>(),
                                          .ended_at_ms = login[2].get<int64_t>()});
        }
      }
      service_.api().LoginsEnded(ended);
    }
    applying_remote_ = false;
    return;
  }
  if (type == "usr") {
    // A profile changed through another node.
    UserInfo info{.id = StringField(message, "u"),
                  .handle = StringField(message, "h"),
                  .display_name = StringField(message, "dn")};
    if (!info.id.empty()) {
      users_.Refresh(info);
    }
    return;
  }
  if (type == "emit") {
    // To a socket of this node (an old coordinator's last words reach the
    // new one too).
    auto payload = message.find("p");
    EmitLocal(NumberField(message, "s"), StringField(message, "e"),
              payload != message.end() ? std::move(*payload) : Json());
    return;
  }
  if (cluster_->is_coordinator()) {
    if (type == "conn") {
      // Answered before the manager hears of the socket: the node lets the
      // socket join on this answer, and what the manager emits to it at
      // once (a ringing call's incomingCall, a recent callEnded) must come
      // after it, or the node drops it for a socket it does not know yet.
      // One connection publishes both, so they arrive in this order.
      // A "conn" told again after a refusal has no request id.
      if (const uint64_t request = NumberField(message, "r"); request != 0) {
        Json ok = Json::object();
        ok["ok"] = true;
        ReplyTo(from, request)(std::move(ok));
      }
      RemoteSocketNumber(from, NumberField(message, "s"), StringField(message, "u"),
                         NumberField(message, "d"));
    } else if (type == "rsm") {
      if (auto it = remote_index_.find({from, NumberField(message, "s")});
          it != remote_index_.end()) {
        ManagerScope scope(*this);
        manager_->OnSocketResumed(Now(), it->second, /*was_connected=*/true);
      }
    } else if (type == "disc") {
      if (auto it = remote_index_.find({from, NumberField(message, "s")});
          it != remote_index_.end()) {
        DropRemoteSocket(it->second);
      }
    } else if (type == "sync") {
      std::set<uint64_t> listed;
      if (auto sockets = message.find("s"); sockets != message.end() && sockets->is_array()) {
        for (const Json& entry : *sockets) {
          if (!entry.is_object()) {
            continue;
          }
          const uint64_t number = NumberField(entry, "s");
          listed.insert(number);
          RemoteSocketNumber(from, number, StringField(entry, "u"), NumberField(entry, "d"));
        }
      }
      DropRemoteSockets([&](const RemoteSocket& socket) {
        return socket.node == from && !listed.contains(socket.number);
      });
      std::erase_if(gone_remote_, [&](const auto& entry) {
        return entry.first.first == from && !listed.contains(entry.first.second);
      });
    } else if (type == "ev") {
      ServeForwardedEvent(from, message);
    } else if (type == "rest") {
      ServeForwardedRest(from, message);
    } else if (type == "bar") {
      ServeHistoryBarrier(from, message);
    }
    RefreshGauges();
    return;
  }
  if (type == "conn" || type == "ev" || type == "rest" || type == "bar") {
    // Sent here by a node that still (or already) takes this one for the
    // coordinator: no need to make it wait for nothing. An ack without
    // payload: the sender answers it Server busy as its own refusal, with
    // callError for a socket's event (a node of the previous version takes
    // it for the busy ack alone).
    Json told = Json::object();
    told["t"] = "ack";
    told["r"] = NumberField(message, "r");
    cluster_->SendTo(from, std::move(told));
    return;
  }
  if (type == "ack") {
    auto it = pending_.find(NumberField(message, "r"));
    if (it == pending_.end()) {
      return;  // answered already ("Server busy" after the wait)
    }
    Pending pending = std::move(it->second);
    pending_.erase(it);
    auto payload = message.find("p");
    if (payload == message.end() || !payload->is_object()) {
      // Refused by a node that is not the coordinator (a handover).
      AnswerBusy(pending.socket, pending.answer, pending.call_id);
      return;
    }
    pending.answer(std::move(*payload));
  }
}

void CallService::OnClusterRole(bool coordinator) {
  if (manager_ == nullptr) {
    return;
  }
  if (coordinator) {
    // What was sent to the old coordinator will not be answered.
    FailPending();
    // The calls the old coordinator kept are gone with it; their rows
    // would stay ringing or active. Not the ones made from now on.
    // On the history writer's timeline, which stamps the new calls (held
    // still until the sweep is done: FollowWallClock).
    unfinished_cutoff_.reset();
    FollowWallClock();
    unfinished_cutoff_ = recorder_->UnixMs(Now());
    EndLastCoordinatorsCalls();
  } else {
    unfinished_cutoff_.reset();
    unfinished_timer_->Stop();
    // The calls kept here cannot go on elsewhere: end them while their
    // sockets can still be told, then forget the other nodes' sockets. A
    // node woken from a freeze ends them when its lease ran out, not now:
    // the freeze is no call time.
    const size_t live = manager_->call_count();
    {
      ManagerScope scope(*this);
      manager_->EndAll(std::min(Now(), cluster_->lease_end()), kReasonConnectionLost);
    }
    if (live > 0) {
      TK_LOG_WARN("cluster: ended {} calls on losing the coordinator role", live);
    }
    DropRemoteSockets([](const RemoteSocket&) { return true; });
  }
  gone_remote_.clear();  // the calls they could come back to are gone
  RefreshGauges();
}

void CallService::SendUntilHeard(Unheard unheard) {
  if (cluster_ == nullptr) {
    return;
  }
  // Kept here until Redis answers: the message itself goes to the link.
  auto kept = std::make_shared<Unheard>(unheard);
  auto heard = [weak = weak_from_this(), kept](bool heard) {
    std::shared_ptr<CallService> self = weak.lock();
    if (!heard && self != nullptr) {
      self->HoldUnheard(std::move(*kept));
    }
  };
  if (!cluster_->SendTo(unheard.node, std::move(unheard.message), std::move(heard))) {
    HoldUnheard(std::move(*kept));
  }
}

void CallService::HoldUnheard(Unheard unheard) {
  if (cluster_ == nullptr || unheard_timer_ == nullptr) {
    return;  // shutting down
  }
  TK_LOG_WARN_EVERY(
      std::chrono::seconds(10),
      "cluster: {} for a socket of node {} not heard there ({}); sent again every "
      "{} s",
      StringField(unheard.message, "e"), unheard.node,
      cluster_->NotReadyReason().empty() ? "no subscriber" : cluster_->NotReadyReason(),
      kUnheardRetry.count());
  if (unheard_.size() >= kMaxUnheard) {
    unheard_.pop_front();
    TK_LOG_WARN_EVERY(std::chrono::seconds(60),
                      "cluster: more than {} call ends wait to be heard by other nodes; the "
                      "oldest given up",
                      kMaxUnheard);
  }
  unheard_.push_back(std::move(unheard));
  if (!unheard_timer_->IsRunning()) {
    unheard_timer_->StartPeriodic(kUnheardRetry);
  }
}

void CallService::OnUnheardTimer() {
  std::deque<Unheard> due;
  due.swap(unheard_);
  const base::MonoTime now = Now();
  size_t expired = 0;
  for (Unheard& unheard : due) {
    if (now >= unheard.until) {
      ++expired;
    } else {
      SendUntilHeard(std::move(unheard));  // held again when not heard
    }
  }
  if (expired > 0) {
    TK_LOG_WARN(
        "cluster: {} call ends given up: no node heard them within {} s", expired,
        std::chrono::duration_cast<std::chrono::seconds>(options_.calls.ended_call_retention)
            .count());
  }
  if (unheard_.empty()) {
    unheard_timer_->Stop();
  }
}

void CallService::EndLastCoordinatorsCalls() {
  if (!unfinished_cutoff_) {
    return;
  }
  // After this node's own history writes so far: a coordinator that stepped
  // down and took the lease back has just ended its calls (connection_lost),
  // and an ended row is never rewritten. The barrier blocks: on a worker (a
  // read one: the writes it waits for need the write worker).
  auto written = [weak = weak_from_this(), cutoff = *unfinished_cutoff_](bool /*all*/) {
    std::shared_ptr<CallService> self = weak.lock();
    if (self != nullptr && self->unfinished_cutoff_ == cutoff) {
      self->SweepLastCoordinatorsCalls();
    }
  };
  if (!service_.work_queue().TryPost(loop_, recorder_->WriteBarrier(), std::move(written),
                                     net::JobKind::kRead)) {
    RetryLastCoordinatorsCalls("work queue full");
  }
}

void CallService::SweepLastCoordinatorsCalls() {
  // Tried again until it is done while this node coordinates: with the
  // database away at a handover, the rows would otherwise stay ringing or
  // active until the next one (weeks in a stable cluster).
  auto job = [&store = service_.store(), cutoff = *unfinished_cutoff_] {
    return store.EndUnfinishedCalls(cutoff);
  };
  auto done = [weak = weak_from_this(), cutoff = *unfinished_cutoff_](base::Result<int> ended) {
    std::shared_ptr<CallService> self = weak.lock();
    if (self == nullptr || self->unfinished_cutoff_ != cutoff) {
      return;  // gone, or the role changed meanwhile
    }
    if (!ended) {
      self->RetryLastCoordinatorsCalls(ended.error().message);
      return;
    }
    self->unfinished_cutoff_.reset();
    LogUnfinishedCallsEnded(ended, "of the last coordinator");
  };
  if (!service_.work_queue().TryPost(loop_, std::move(job), std::move(done),
                                     net::JobKind::kWrite)) {
    RetryLastCoordinatorsCalls("work queue full");
  }
}

void CallService::RetryLastCoordinatorsCalls(std::string_view why) {
  TK_LOG_WARN_EVERY(std::chrono::seconds(60),
                    "cluster: the unfinished calls of the last coordinator were not ended ({}); "
                    "trying again every {} s",
                    why, kUnfinishedRetry.count());
  unfinished_timer_->Start(kUnfinishedRetry);
}

void CallService::OnClusterCoordinator(const std::string& node) {
  FailPending();
  if (!node.empty()) {
    SyncToCoordinator();
  }
  RefreshGauges();
}

bool CallService::CoordinatorCutOff() {
  if (cluster_ == nullptr || !cluster_->is_coordinator() || cluster_->ready()) {
    return false;
  }
  TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                    "cluster: the coordinator cannot reach the other nodes ({}); a call event "
                    "answered Server busy",
                    cluster_->NotReadyReason());
  return true;
}

// ---- A node that is not the coordinator ---------------------------------------------

void CallService::Forward(Json request, Answer answer) {
  const uint64_t id = next_request_++;
  request["r"] = id;
  const bool event = StringField(request, "t") == "ev";
  const uint64_t socket = event ? NumberField(request, "s") : 0;
  std::optional<std::string> call_id;
  if (auto payload = request.find("p"); event && payload != request.end()) {
    if (auto id = PayloadCallId(*payload)) {
      call_id = std::string(*id);
    }
  }
  if (!cluster_->SendToCoordinator(std::move(request))) {
    TK_LOG_WARN_EVERY(
        std::chrono::seconds(10),
        "cluster: a call event could not be forwarded ({}); answered Server busy",
        cluster_->NotReadyReason().empty() ? "no coordinator" : cluster_->NotReadyReason());
    AnswerBusy(socket, answer, call_id);
    return;
  }
  pending_.emplace(id,
                   Pending{Now() + ForwardWait(), std::move(answer), socket, std::move(call_id)});
  if (pending_.size() == 1) {
    pending_timer_->StartPeriodic(kPendingSweep);
  }
}

std::chrono::milliseconds CallService::ForwardWait() const {
  return std::max<std::chrono::milliseconds>(options_.cluster->node_timeout, kMinForwardWait);
}

void CallService::AnswerBusy(uint64_t socket, Answer& answer,
                             std::optional<std::string_view> call_id) {
  if (socket != 0) {
    FailEvent(socket, kErrServerBusy, answer, call_id);  // a socket gone meanwhile is not told
  } else {
    answer(CallErrorAck(kErrServerBusy));
  }
}

void CallService::OnPendingTimer() {
  const base::MonoTime now = Now();
  while (!pending_.empty() && pending_.begin()->second.deadline <= now) {
    Pending pending = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                      "cluster: no answer from coordinator {} in time; answered Server busy",
                      cluster_ != nullptr ? cluster_->coordinator() : std::string());
    AnswerBusy(pending.socket, pending.answer, pending.call_id);
  }
  if (pending_.empty() && pending_timer_ != nullptr) {
    pending_timer_->Stop();
  }
}

void CallService::FailPending() {
  std::map<uint64_t, Pending> failed;
  failed.swap(pending_);
  for (auto& [id, pending] : failed) {
    AnswerBusy(pending.socket, pending.answer, pending.call_id);
  }
  if (pending_timer_ != nullptr) {
    pending_timer_->Stop();
  }
}

void CallService::SyncToCoordinator() {
  Json sockets = Json::array();
  for (const auto& [number, entry] : sockets_) {
    std::shared_ptr<SocketIoSocket> socket = entry.socket.lock();
    if (socket == nullptr) {
      continue;
    }
    Json item = Json::object();
    item["s"] = number;
    item["u"] = entry.user_id;
    item["d"] = socket->data().session;
    sockets.push_back(std::move(item));
  }
  Json told = Json::object();
  told["t"] = "sync";
  told["s"] = std::move(sockets);
  cluster_->SendToCoordinator(std::move(told));
}

// ---- The coordinator ----------------------------------------------------------------

uint64_t CallService::RemoteSocketNumber(const std::string& node, uint64_t number,
                                         const std::string& user, uint64_t session) {
  if (auto it = remote_index_.find({node, number}); it != remote_index_.end()) {
    return it->second;
  }
  if (number == 0 || user.empty()) {
    return 0;
  }
  // A socket of a node that was gone for a while, listed again: the same
  // socket (its number on its node), so it is resumed under its old number.
  std::optional<uint64_t> back;
  base::MonoTime gone_at;
  if (auto gone = gone_remote_.find({node, number}); gone != gone_remote_.end()) {
    if (gone->second.user == user && !GoneTooLong(gone->second, Now()) &&
        !remote_.contains(gone->second.local) && !sockets_.contains(gone->second.local)) {
      back = gone->second.local;
      gone_at = gone->second.gone_at;
    }
    gone_remote_.erase(gone);
  }
  const uint64_t local = back.value_or(next_number_++);
  remote_.emplace(local, RemoteSocket{node, number, session});
  remote_index_.emplace(std::pair{node, number}, local);
  ManagerScope scope(*this);
  manager_->OnSocketConnected(Now(), local, user);
  if (back) {
    TK_LOG_INFO("cluster: socket {} of node {} is back; resumed", number, node);
    manager_->OnSocketResumed(Now(), local, /*was_connected=*/false, gone_at);
  }
  return local;
}

bool CallService::GoneTooLong(const GoneRemote& gone, base::MonoTime now) const {
  // As long as the calls it could hear of are remembered.
  return now - gone.gone_at > options_.calls.ended_call_retention;
}

void CallService::DropRemoteSockets(const std::function<bool(const RemoteSocket&)>& which) {
  std::vector<uint64_t> dropped;
  for (const auto& [local, socket] : remote_) {
    if (which(socket)) {
      dropped.push_back(local);
    }
  }
  for (uint64_t local : dropped) {
    DropRemoteSocket(local);
  }
}

void CallService::DropRemoteSocket(uint64_t local) {
  auto it = remote_.find(local);
  if (it == remote_.end()) {
    return;
  }
  remote_index_.erase({it->second.node, it->second.number});
  remote_.erase(it);
  LoseSocket(local);
}

CallService::Answer CallService::ReplyTo(const std::string& node, uint64_t request) {
  return [this, node, request](Json ack) {
    if (cluster_ == nullptr) {
      return;
    }
    Json told = Json::object();
    told["t"] = "ack";
    told["r"] = request;
    told["p"] = std::move(ack);
    cluster_->SendTo(node, std::move(told));
  };
}

void CallService::ServeForwardedEvent(const std::string& from, const Json& message) {
  Answer reply = ReplyTo(from, NumberField(message, "r"));
  // The socket's "conn" may have gone to a coordinator before this one.
  const uint64_t number = RemoteSocketNumber(from, NumberField(message, "s"),
                                             StringField(message, "u"), NumberField(message, "d"));
  const std::string event = StringField(message, "e");
  if (number == 0 || std::find(std::begin(kCallEventNames), std::end(kCallEventNames), event) ==
                         std::end(kCallEventNames)) {
    reply(CallErrorAck(number == 0 ? kErrNotAuthorized : kErrUnknownEvent));
    return;
  }
  auto payload = message.find("p");
  RunCallEvent(number, event, payload != message.end() ? *payload : Json(), std::move(reply));
}

std::function<bool()> CallService::HistoryBarrier(std::chrono::milliseconds max_wait) {
  if (!Forwarding()) {
    return recorder_->WriteBarrier(max_wait);
  }
  // The coordinator writes every call's history: ask it to wait for what it
  // has queued ("bar"), so a history read here right after a call ended
  // sees it. The read's worker waits for the answer, at most node_timeout
  // (Forward answers Server busy by then).
  auto answered = std::make_shared<std::promise<bool>>();
  std::shared_future<bool> done = answered->get_future().share();
  Json request = Json::object();
  request["t"] = "bar";
  request["m"] = max_wait.count();  // how long the coordinator may wait
  // Forward answers once (the ack, or Server busy); the loop thread only.
  // "w": false when the coordinator's writes still wait for the database (a
  // coordinator of the previous version does not say: its ok is taken as
  // written). Server busy: not known to be written.
  Forward(std::move(request), [answered](Json answer) mutable {
    if (answered != nullptr) {
      answered->set_value(BoolField(answer, answer.contains("w") ? "w" : "ok"));
      answered.reset();
    }
  });
  return [done, wait = std::min(ForwardWait(), max_wait)] {
    return done.wait_for(wait) == std::future_status::ready && done.get();
  };
}

void CallService::ServeHistoryBarrier(const std::string& from, const Json& message) {
  Answer reply = ReplyTo(from, NumberField(message, "r"));
  // The asking node's wait ("m", ms; none from a node of the previous
  // version: the recorder's default).
  const uint64_t asked = NumberField(message, "m");
  std::function<bool()> barrier =
      asked > 0
          ? recorder_->WriteBarrier(std::chrono::milliseconds(std::min<uint64_t>(asked, 60'000)))
          : recorder_->WriteBarrier();
  // The barrier blocks: on a worker, and the answer from the loop.
  auto done = [reply = std::move(reply)](bool written) mutable {
    Json ok = Json::object();
    ok["ok"] = true;
    ok["w"] = written;
    reply(std::move(ok));
  };
  if (!service_.work_queue().TryPost(loop_, std::move(barrier), std::move(done),
                                     net::JobKind::kRead)) {
    done(false);  // not moved from when refused; the read goes ahead
  }
}

void CallService::ServeForwardedRest(const std::string& from, const Json& message) {
  Answer reply = ReplyTo(from, NumberField(message, "r"));
  const std::string event = StringField(message, "e");
  const std::string user = StringField(message, "u");
  if (user.empty() || (event != "initiateCall" && event != "acceptCall" && event != "rejectCall" &&
                       event != "endCall")) {
    reply(CallErrorAck(kErrUnknownEvent));
    return;
  }
  auto payload = message.find("p");
  RunRestAction(event, user, NumberField(message, "d"),
                payload != message.end() ? *payload : Json(), std::move(reply));
}

}  // namespace turnkey::signal
