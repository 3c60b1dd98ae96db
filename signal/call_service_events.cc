// CallService: a socket's call events, what goes back to sockets (here or,
// in a cluster, on another node) and the ICE servers sent to them.
#include <algorithm>
#include <utility>

#include "base/log.h"
#include "signal/call_payload.h"
#include "signal/call_service.h"
#include "sql/store.h"

namespace turnkey::signal {
namespace {

// {iceServers: [...], ttl}, in the RTCIceServer shape.
Json IceServersPayload(const auth::IceServerList& list) {
  Json servers = Json::array();
  for (const auth::IceServer& server : list.servers) {
    Json entry = Json::object();
    entry["urls"] = server.urls;
    if (!server.username.empty()) {
      entry["username"] = server.username;
      entry["credential"] = server.credential;
    }
    servers.push_back(std::move(entry));
  }
  Json payload = Json::object();
  payload["iceServers"] = std::move(servers);
  payload["ttl"] = list.ttl_seconds;
  return payload;
}

// An event after which the receiving socket has no part in that call.
bool IsCallEnd(std::string_view event) {
  return event == "callEnded" || event == "callTimeout" || event == "callRejected" ||
         event == "callAnsweredElsewhere";
}

}  // namespace

void CallService::EmitLocal(uint64_t socket, std::string_view event, Json payload) {
  auto it = sockets_.find(socket);
  if (it == sockets_.end()) {
    return;
  }
  if (std::shared_ptr<SocketIoSocket> target = it->second.socket.lock()) {
    target->Emit(event, std::move(payload));
  }
}

void CallService::Emit(uint64_t socket, std::string_view event, Json payload) {
  if (auto remote = remote_.find(socket); remote != remote_.end() && cluster_ != nullptr) {
    Json told = Json::object();
    told["t"] = "emit";
    told["s"] = remote->second.number;
    told["e"] = event;
    told["p"] = std::move(payload);
    if (IsCallEnd(event)) {
      SendUntilHeard(Unheard{Now() + options_.calls.ended_call_retention, remote->second.node,
                             std::move(told)});
      return;
    }
    if (!cluster_->SendTo(remote->second.node, std::move(told))) {
      // Call events are refused meanwhile (CoordinatorCutOff), but timers
      // (ring timeout, reconnect grace) still end calls.
      TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                        "cluster: {} for a socket of node {} not delivered ({})", event,
                        remote->second.node, cluster_->NotReadyReason());
    }
    return;
  }
  EmitLocal(socket, event, std::move(payload));  // nothing for a gone socket or a REST stand-in
}

void CallService::OnCallEvent(SocketIoSocket& socket, std::string_view event, Json args,
                              SocketIoAck ack) {
  std::optional<uint64_t> number = NumberOf(socket);
  if (!number || manager_ == nullptr) {
    ack(CallErrorAck(kErrNotAuthorized));
    return;
  }
  Json payload = args.is_array() && !args.empty() ? std::move(args[0]) : Json();
  Answer answer = [ack](Json reply) { ack(std::move(reply)); };
  CheckLease();
  if (Forwarding()) {
    if (event == "initiateCall" && draining_) {
      FailEvent(*number, kErrShuttingDown, answer);
      return;
    }
    Json request = Json::object();
    request["t"] = "ev";
    request["s"] = *number;
    request["u"] = socket.data().user_id;
    request["d"] = socket.data().session;
    request["e"] = event;
    request["p"] = std::move(payload);
    Forward(std::move(request), std::move(answer));
    return;
  }
  RunCallEvent(*number, event, std::move(payload), std::move(answer));
}

void CallService::RunCallEvent(uint64_t number, std::string_view event, Json payload,
                               Answer answer) {
  if (CoordinatorCutOff()) {
    FailEvent(number, kErrServerBusy, answer, PayloadCallId(payload));
    return;
  }
  if (event == "initiateCall") {
    // A cluster's coordinator refuses new calls only from its own sockets
    // while it drains; other nodes check theirs before forwarding.
    if (cluster_ != nullptr && draining_ && sockets_.contains(number)) {
      FailEvent(number, kErrShuttingDown, answer);
      return;
    }
    StartInitiate(number, payload, std::move(answer));
    return;
  }
  std::optional<Json> reply;
  {
    ManagerScope scope(*this);
    reply = manager_->OnEvent(Now(), number, event, payload, users_);
  }
  answer(reply ? std::move(*reply) : CallErrorAck(kErrUnknownEvent));
}

void CallService::OnGetIceServers(SocketIoSocket& socket, SocketIoAck ack) {
  auto list = service_.IceServers(socket.data().user_id);
  if (!list) {
    ack(CallErrorAck("ICE servers unavailable"));
    return;
  }
  Json answer = Json::object();
  answer["ok"] = true;
  answer.update(IceServersPayload(*list));
  ack(std::move(answer));
}

void CallService::StartInitiate(uint64_t number, const Json& payload, Answer answer) {
  std::expected<InitiateRequest, Json> request;
  {
    ManagerScope scope(*this);
    request = manager_->BeginInitiateCall(Now(), number, payload);
  }
  if (!request) {
    answer(std::move(request.error()));
    return;
  }
  const std::string* user = manager_->presence().UserOf(number);
  if (user == nullptr) {
    FailEvent(number, kErrNotAuthorized, answer);
    return;
  }
  // A connected caller is in the cache, which PATCH /api/users/me keeps
  // current (the profile hook in SetUp), so incomingCall shows their handle
  // and name as they are now; anyone else is read from the store.
  std::optional<UserInfo> cached = users_.FindById(*user);
  const bool ask_caller = !cached;
  const UserInfo cached_caller = cached ? std::move(*cached) : UserInfo{.id = *user};
  const std::string& id = request->receiver_id;
  const std::string& handle = request->receiver_handle;
  const bool impossible = (!id.empty() && id.size() > sql::kMaxIdBytes) ||
                          (id.empty() && handle.size() > sql::kMaxHandleBytes);
  // A connected receiver is known by id (ids never change); any other
  // receiver, and every handle, is asked of the store.
  std::optional<UserInfo> known_receiver;
  if (!impossible && !id.empty()) {
    known_receiver = users_.FindById(id);
  }
  const bool ask_receiver = !impossible && !known_receiver;
  struct Lookup {
    std::optional<base::Result<sql::User>> caller;
    std::optional<base::Result<sql::User>> receiver;
  };
  auto lookup = [&store = service_.store(), &metrics = service_.metrics(),
                 &shard = service_.registry().shared_shard(), caller_id = *user, id, handle,
                 ask_caller, ask_receiver]() -> Lookup {
    const auto start = std::chrono::steady_clock::now();
    Lookup found;
    if (ask_caller) {
      found.caller = store.GetUserById(caller_id);
    }
    if (ask_receiver) {
      found.receiver = id.empty() ? store.GetUserByHandle(handle) : store.GetUserById(id);
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics.db_query_seconds.Observe(shard, took.count());
    return found;
  };
  auto found = [weak = weak_from_this(), number, request = *request, cached_caller, known_receiver,
                answer = std::move(answer)](Lookup lookup) mutable {
    std::shared_ptr<CallService> self = weak.lock();
    if (self == nullptr || self->manager_ == nullptr) {
      answer(CallErrorAck(kErrShuttingDown));
      return;
    }
    std::optional<UserInfo> receiver = known_receiver;
    if (lookup.receiver) {
      if (!*lookup.receiver && lookup.receiver->error().code != base::ErrorCode::kNotFound) {
        TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                          "signal: initiateCall receiver lookup failed: {}",
                          lookup.receiver->error().message);
        self->FailEvent(number, kErrServerBusy, answer);
        return;
      }
      if (*lookup.receiver) {
        receiver = InfoOf(**lookup.receiver);
      }
    }
    UserInfo caller = cached_caller;
    if (lookup.caller && *lookup.caller) {
      caller = InfoOf(**lookup.caller);
      self->users_.Refresh(caller);
    }
    self->FinishInitiate(number, request, receiver, caller, std::move(answer));
  };
  if (!ask_caller && !ask_receiver) {
    found(Lookup{});  // both connected: no store round trip
    return;
  }
  if (!service_.work_queue().TryPost(loop_, std::move(lookup), std::move(found),
                                     net::JobKind::kRead)) {
    // Not taken, so `found` is still ours: it answers "Server busy", or goes
    // on with what is known when the receiver needs no lookup.
    Lookup offline;
    if (ask_caller) {
      offline.caller = base::Unavailable("work queue full");
    }
    if (ask_receiver) {
      offline.receiver = base::Unavailable("work queue full");
    }
    found(std::move(offline));
  }
}

void CallService::FinishInitiate(uint64_t number, const InitiateRequest& request,
                                 const std::optional<UserInfo>& receiver, const UserInfo& caller,
                                 Answer answer) {
  // The lookup took a while: a coordinator may no longer be one, and must
  // not create a call another node will never hear of.
  CheckLease();
  if (Forwarding()) {
    FailEvent(number, kErrServerBusy, answer);
    return;
  }
  Json ack;
  {
    ManagerScope scope(*this);
    ack = manager_->FinishInitiateCall(Now(), number, request, receiver, caller);
  }
  answer(std::move(ack));
}

void CallService::FailEvent(uint64_t number, std::string_view error, Answer& answer,
                            std::optional<std::string_view> call_id) {
  Json told = Json::object();
  told["error"] = error;
  told["callId"] = call_id ? Json(*call_id) : Json(nullptr);
  Emit(number, "callError", std::move(told));
  answer(CallErrorAck(error, call_id));
}

// ---- ICE servers ---------------------------------------------------------------------

void CallService::SendIceServers(uint64_t number) {
  auto it = sockets_.find(number);
  if (it == sockets_.end()) {
    return;
  }
  std::shared_ptr<SocketIoSocket> socket = it->second.socket.lock();
  if (socket == nullptr) {
    return;
  }
  auto list = service_.IceServers(it->second.user_id);
  if (!list) {
    TK_LOG_WARN("signal: no iceServers for a socket: {}", list.error().message);
    return;
  }
  socket->Emit("iceServers", IceServersPayload(*list));
  if (list->expires_at > 0 && list->ttl_seconds > 0) {
    const auto refresh = std::chrono::duration_cast<base::Duration>(std::chrono::duration<double>(
        static_cast<double>(list->ttl_seconds) * options_.ice_refresh_at));
    ScheduleIce(number, Now() + refresh);
  }
}

void CallService::ScheduleIce(uint64_t number, base::MonoTime due) {
  auto it = sockets_.find(number);
  if (it == sockets_.end()) {
    return;
  }
  if (it->second.ice_due) {
    ice_due_.erase(*it->second.ice_due);
  }
  it->second.ice_due = ice_due_.emplace(due, number);
  const base::MonoTime first = ice_due_.begin()->first;
  ice_timer_->Start(std::max<base::Duration>(first - Now(), base::Duration::zero()));
}

void CallService::OnIceTimer() {
  const base::MonoTime now = Now();
  std::vector<uint64_t> due;
  while (!ice_due_.empty() && ice_due_.begin()->first <= now) {
    const uint64_t number = ice_due_.begin()->second;
    ice_due_.erase(ice_due_.begin());
    if (auto it = sockets_.find(number); it != sockets_.end()) {
      it->second.ice_due.reset();
      due.push_back(number);
    }
  }
  for (uint64_t number : due) {
    SendIceServers(number);
  }
  if (!ice_due_.empty()) {
    ice_timer_->Start(
        std::max<base::Duration>(ice_due_.begin()->first - Now(), base::Duration::zero()));
  }
}

}  // namespace turnkey::signal
