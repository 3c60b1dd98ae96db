// CallService: a socket's CONNECT (the access token, the device, Socket.IO
// connection-state recovery), joining and leaving.
#include <algorithm>
#include <utility>

#include "base/log.h"
#include "signal/api_error.h"
#include "signal/call_payload.h"
#include "signal/call_service.h"
#include "sql/store.h"

namespace turnkey::signal {
namespace {

// Longest auth.deviceId kept.
constexpr size_t kMaxDeviceIdBytes = 128;

std::string TokenOf(const Json& auth) {
  if (!auth.is_object()) {
    return "";
  }
  auto it = auth.find("token");
  if (it == auth.end() || !it->is_string()) {
    return "";
  }
  std::string token = it->get<std::string>();
  constexpr std::string_view kBearer = "Bearer ";
  if (token.starts_with(kBearer)) {
    token.erase(0, kBearer.size());
  }
  return token;
}

// The string `key` of the CONNECT payload if at most `max_bytes` long, else
// "" (Dart clients send "offset":null, say).
std::string AuthStringOf(const Json& auth, std::string_view key, size_t max_bytes) {
  if (!auth.is_object()) {
    return "";
  }
  auto it = auth.find(key);
  if (it == auth.end() || !it->is_string()) {
    return "";
  }
  std::string value = it->get<std::string>();
  return value.size() <= max_bytes ? value : "";
}

SocketIoAuthResult Refuse(std::string message, std::string_view code) {
  Json data = Json::object();
  data["code"] = code;
  return SocketIoAuthResult::Reject(std::move(message), std::move(data));
}

}  // namespace

void CallService::Authorize(const Json& auth, std::function<void(SocketIoAuthResult)> done) {
  // A token that is there but not a string (a number, an object) is not a
  // token at all; absent, null or "" is none.
  if (auth.is_object()) {
    if (auto given = auth.find("token");
        given != auth.end() && !given->is_null() && !given->is_string()) {
      done(Refuse("The access token is invalid", api_code::kTokenInvalid));
      return;
    }
  }
  std::string token = TokenOf(auth);
  if (token.empty()) {
    done(Refuse("Authentication required", kCodeTokenMissing));
    return;
  }
  auto verified = service_.VerifyAccessToken(token);
  if (!verified) {
    done(Refuse(verified.error().message, verified.error().code));
    return;
  }
  auto lookup = [&store = service_.store(), &metrics = service_.metrics(),
                 &shard = service_.registry().shared_shard(),
                 user_id = verified->user_id]() -> base::Result<UserInfo> {
    const auto start = std::chrono::steady_clock::now();
    base::Result<sql::UserSummary> user = store.GetUserSummaryById(user_id);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics.db_query_seconds.Observe(shard, took.count());
    if (!user) {
      return std::unexpected(user.error());
    }
    return InfoOf(std::move(*user));
  };
  auto finish = [weak = weak_from_this(), token,
                 device = AuthStringOf(auth, "deviceId", kMaxDeviceIdBytes),
                 pid = AuthStringOf(auth, "pid", kSocketIoMaxPidBytes),
                 done](base::Result<UserInfo> user) mutable {
    std::shared_ptr<CallService> self = weak.lock();
    if (self == nullptr || self->stopped_) {
      done(Refuse("Server is shutting down", "SERVICE_UNAVAILABLE"));
      return;
    }
    self->FinishAuthorize(token, device, pid, std::move(user), done);
  };
  if (!service_.work_queue().TryPost(loop_, std::move(lookup), std::move(finish),
                                     net::JobKind::kRead)) {
    finish(base::Unavailable("work queue full"));
  }
}

void CallService::FinishAuthorize(const std::string& token, const std::string& device_id,
                                  const std::string& pid, base::Result<UserInfo> user,
                                  const std::function<void(SocketIoAuthResult)>& done) {
  // Checked again: a logout may have happened while the store answered.
  auto verified = service_.VerifyAccessToken(token);
  if (!verified) {
    done(Refuse(verified.error().message, verified.error().code));
    return;
  }
  const std::string& user_id = verified->user_id;
  // Connection-state recovery: a CONNECT that names a socket of the same
  // user takes it over with its number (its presence, its side of a call).
  // The socket is taken over within this call (Join answers at once for a
  // resume), so what is found here still holds there. A cluster node that
  // forwards resumes only a socket it still holds: the coordinator, which
  // knows the node's sockets by number, never saw that one go. One it lost
  // was dropped there with its number, so it comes back as a new socket.
  std::optional<SocketIoResumable> resume;
  if (!pid.empty() && sio_ != nullptr) {
    resume = sio_->FindResumable("/", pid);
    if (resume && (resume->data.user_id != user_id ||
                   std::any_cast<uint64_t>(&resume->data.context) == nullptr ||
                   (!resume->live && Forwarding()))) {
      resume.reset();
    }
  }
  // This node's sockets only (a cluster's coordinator also knows the
  // others'): the limit is per node. A live socket taken over is replaced,
  // not added to.
  const auto here = [this](uint64_t socket) { return sockets_.contains(socket); };
  if (options_.sockets_per_user > 0 && manager_ != nullptr && !(resume && resume->live) &&
      static_cast<size_t>(std::ranges::count_if(manager_->presence().SocketsOf(user_id), here)) >=
          options_.sockets_per_user) {
    done(Refuse("Too many connections for this account", kCodeTooManyConnections));
    return;
  }
  UserInfo info;
  if (user) {
    info = std::move(*user);
    users_.Refresh(info);
  } else if (user.error().code == base::ErrorCode::kNotFound) {
    done(Refuse("User not found", "TOKEN_INVALID"));
    return;
  } else {
    // The token is valid; calls still work with what is known of the user.
    TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                      "signal: cannot load user {} for a socket ({}); accepting it", user_id,
                      user.error().message);
    info = users_.FindById(user_id).value_or(UserInfo{.id = user_id});
  }
  SocketIoSocketData data;
  data.user_id = user_id;
  data.device_id = device_id;
  data.session = SessionDigest(verified->session);
  const uint64_t number = resume ? std::any_cast<uint64_t>(resume->data.context) : next_number_++;
  data.context = number;
  if (!Forwarding()) {
    Join(number, std::move(info), std::move(data), done,
         resume ? std::move(resume->sid) : std::string());
    return;
  }
  if (resume) {
    // The coordinator holds this number already; it is told of the resume
    // (peerReconnected with the side's next event) but need not answer.
    if (Join(number, std::move(info), std::move(data), done, std::move(resume->sid))) {
      Json told = Json::object();
      told["t"] = "rsm";
      told["s"] = number;
      cluster_->SendToCoordinator(std::move(told));
    }
    return;
  }
  // The coordinator learns of the socket before its client does (the
  // CONNECT answer), so a call to this user made right afterwards from
  // another node rings it. Without the coordinator's answer (Server busy:
  // no link, no answer in time, a handover) the socket joins anyway and is
  // told again once it has: the "conn" may have been lost with a Redis
  // connection after the sync that followed its return, which could not
  // list a socket still joining, and no other sync would come.
  Json told = Json::object();
  told["t"] = "conn";
  told["s"] = number;
  told["u"] = user_id;
  told["d"] = data.session;
  Forward(told, [weak = weak_from_this(), number, info = std::move(info), data = std::move(data),
                 done, told](Json ack) mutable {
    std::shared_ptr<CallService> self = weak.lock();
    if (self == nullptr || self->stopped_) {
      done(Refuse("Server is shutting down", "SERVICE_UNAVAILABLE"));
      return;
    }
    auto ok = ack.find("ok");  // {ok: true} from the coordinator, else {ok: false, error}
    const bool known = ok != ack.end() && *ok == true;
    if (self->Join(number, std::move(info), std::move(data), done) && !known) {
      // No request id: not answered. If this cannot be sent either, the
      // link is down and its return brings a sync, which lists the socket.
      self->cluster_->SendToCoordinator(std::move(told));
    }
  });
}

bool CallService::Join(uint64_t number, UserInfo info, SocketIoSocketData data,
                       const std::function<void(SocketIoAuthResult)>& done,
                       std::string resume_sid) {
  const bool resuming = !resume_sid.empty();
  joining_ = Joining{number, std::move(info)};
  SocketIoAuthResult accepted = SocketIoAuthResult::Accept(std::move(data));
  accepted.resume_sid = std::move(resume_sid);
  done(std::move(accepted));
  // Still set only when the socket did not join (its connection went).
  const bool joined = !joining_;
  if (!joined && Forwarding() && !resuming) {
    // The coordinator was told of it. (A resume's number is the socket it
    // would have taken over, which is still there.)
    Json told = Json::object();
    told["t"] = "disc";
    told["s"] = number;
    cluster_->SendToCoordinator(std::move(told));
  }
  joining_.reset();
  return joined;
}

std::optional<uint64_t> CallService::NumberOf(const SocketIoSocket& socket) {
  const auto* number = std::any_cast<uint64_t>(&socket.data().context);
  if (number == nullptr) {
    return std::nullopt;
  }
  return *number;
}

void CallService::OnConnection(SocketIoSocket& socket) {
  std::optional<uint64_t> number = NumberOf(socket);
  if (!number || !joining_ || joining_->number != *number || manager_ == nullptr) {
    socket.Disconnect(true);
    return;
  }
  UserInfo user = std::move(joining_->user);
  joining_.reset();
  // A resumed socket keeps its number. Still in the table, it replaced a
  // live socket (taken over without a disconnect): the manager never lost
  // it. Otherwise it comes back from the lost ones.
  auto existing = sockets_.find(*number);
  const bool replaced = existing != sockets_.end();
  // Only a resume reuses a number, and taking over a live socket cannot fail
  // once FindResumable found it (FinishAuthorize).
  assert(!replaced || socket.recovered());
  if (replaced) {
    existing->second.socket = socket.weak_from_this();
  } else {
    sockets_[*number] = SocketEntry{socket.weak_from_this(), users_.Acquire(user), std::nullopt};
  }
  connected_sockets_ = sockets_.size();
  // Gauges first: the client may act on iceServers (and read /metrics) the
  // moment it leaves, which is now that sends are not deferred. iceServers
  // before a ringing call's incomingCall, as docs/api.md promises "right
  // after connect": an app may build its RTCPeerConnection on incomingCall.
  RefreshGauges();
  SendIceServers(*number);
  {
    ManagerScope scope(*this);
    if (!replaced) {
      manager_->OnSocketConnected(Now(), *number, user.id);
    }
    if (socket.recovered()) {
      service_.metrics()
          .resumed_sockets[replaced ? metrics::SocketResume::kReplaced
                                    : metrics::SocketResume::kLost]
          .Inc(service_.loop_shard());
      manager_->OnSocketResumed(Now(), *number, replaced);
    }
  }
}

void CallService::OnDisconnect(SocketIoSocket& socket) {
  std::optional<uint64_t> number = NumberOf(socket);
  if (!number) {
    return;
  }
  auto it = sockets_.find(*number);
  if (it == sockets_.end()) {
    return;
  }
  if (it->second.ice_due) {
    ice_due_.erase(*it->second.ice_due);
  }
  users_.Release(it->second.user_id);
  sockets_.erase(it);
  connected_sockets_ = sockets_.size();
  LoseSocket(*number);
  if (Forwarding()) {
    Json told = Json::object();
    told["t"] = "disc";
    told["s"] = *number;
    cluster_->SendToCoordinator(std::move(told));
  }
  RefreshGauges();
}

void CallService::LoseSocket(uint64_t number) {
  if (manager_ == nullptr) {
    return;
  }
  // CallManager must not be re-entered (call_sinks.h): a socket that closed
  // because an emit failed is reported once the manager returned.
  lost_sockets_.push_back(number);
  if (manager_depth_ == 0) {
    ManagerScope scope(*this);
  }
}

}  // namespace turnkey::signal
