// CallService: set-up, sockets, call events, timers and shutdown. The REST
// routes are in call_service_routes.cc.
#include "signal/call_service.h"

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>

#include "base/log.h"
#include "signal/call_payload.h"
#include "sql/store.h"

namespace turnkey::signal {
namespace {

// How often EndCallsAndClose looks whether the sessions are gone.
constexpr std::chrono::milliseconds kCloseWatch{10};
// Between ending the calls and closing the sessions when polling clients are
// connected: socket.io-client drops the events that arrive in the same
// polling response as the close, so callEnded must be fetched first.
constexpr std::chrono::milliseconds kEndedFetchTime{500};

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

// How long a lost socket stays resumable: the calls' reconnect grace, after
// which its side of a call is gone anyway.
std::chrono::milliseconds RecoveryWindow(const CallServiceOptions& options) {
  if (!options.connection_recovery) {
    return std::chrono::milliseconds::zero();
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(options.calls.reconnect_grace);
}

SocketIoAuthResult Refuse(std::string message, std::string_view code) {
  Json data = Json::object();
  data["code"] = code;
  return SocketIoAuthResult::Reject(std::move(message), std::move(data));
}

UserInfo InfoOf(const sql::User& user) {
  return UserInfo{.id = user.id, .handle = user.handle, .display_name = user.display_name};
}

UserInfo InfoOf(sql::UserSummary user) {
  return UserInfo{.id = std::move(user.id),
                  .handle = std::move(user.handle),
                  .display_name = std::move(user.display_name)};
}

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

Json CallErrorAck(std::string_view error, std::optional<std::string_view> call_id) {
  Json ack = Json::object();
  ack["ok"] = false;
  ack["error"] = error;
  if (call_id) {
    ack["callId"] = *call_id;
  }
  return ack;
}

// Sockets are matched within one user's only, so a collision of two of a
// user's logins, as likely as a random 64-bit match, would at worst close one
// more of that user's sockets at a sign-out, or have a REST call act as the
// other login's device.
uint64_t CallService::SessionDigest(std::string_view login) {
  if (login.empty()) {
    return 0;
  }
  const uint64_t digest = std::hash<std::string_view>{}(login);
  return digest == 0 ? 1 : digest;
}

CallService::ManagerScope::~ManagerScope() {
  if (--service_.manager_depth_ == 0) {
    service_.AfterManager();
  }
}

CallService::CallService(SignalService& service, CallServiceOptions options)
    : service_(service), loop_(service.loop()), options_(std::move(options)) {}

CallService::~CallService() { Shutdown(); }

base::Result<std::shared_ptr<CallService>> CallService::Create(SignalService& service,
                                                               CallServiceOptions options) {
  if (!(options.ice_refresh_at > 0 && options.ice_refresh_at < 1)) {
    return base::InvalidArgument("calls: ice_refresh_at must be in (0, 1)");
  }
  if (options.gauge_interval.count() <= 0) {
    return base::InvalidArgument("calls: gauge_interval must be > 0");
  }
  options.socketio.rate_limit.error_event = "callError";
  options.socketio.rate_limit.error_id_field = "callId";
  if (options.socketio.clock == nullptr) {
    options.socketio.clock = &service.clock();
  }
  options.socketio.recovery_window = RecoveryWindow(options);
  auto self = std::make_shared<CallService>(service, std::move(options));
  if (auto set = self->SetUp(); !set) {
    self->Shutdown();
    return std::unexpected(set.error());
  }
  return self;
}

CallService::IceSource CallService::IceSourceOf(const SignalSettings& settings) {
  return IceSource{settings.ice_urls, settings.turn_secret, settings.ice_ttl};
}

base::Status CallService::SetUp() {
  ice_source_ = IceSourceOf(service_.settings());
  auto sio = SocketIoServer::Create(loop_, options_.socketio);
  if (!sio) {
    return std::unexpected(sio.error());
  }
  sio_ = std::move(*sio);
  recorder_ = std::make_unique<CallStoreRecorder>(
      loop_, service_.work_queue(), service_.store(), service_.clock(), service_.metrics(),
      service_.registry().shared_shard(), options_.recorder);
  recorder_stats_ = recorder_->shared_stats();
  service_.api().set_history_barrier([this] { return HistoryBarrier(); });
  service_.api().set_profile_read_hook([this](const sql::User& user, bool changed) {
    const UserInfo info = InfoOf(user);
    users_.Refresh(info);
    if (changed && cluster_ != nullptr) {
      // Another node may hold this user too (a caller's name on incomingCall
      // comes from the coordinator's copy): a change made here is told.
      Json told = Json::object();
      told["t"] = "usr";
      told["u"] = info.id;
      told["h"] = info.handle;
      told["dn"] = info.display_name;
      cluster_->Broadcast(std::move(told));
    }
  });
  metrics_sink_ =
      std::make_unique<SignalMetricsCallSink>(service_.metrics(), service_.loop_shard());
  CallStoreRecorder* recorder = recorder_.get();
  manager_ = std::make_unique<CallManager>(
      options_.calls, *this, *recorder_, *metrics_sink_, [recorder, this] {
        // Time-ordered ids keep new rows at the end of the calls index.
        return sql::GenerateTimeOrderedId(recorder->UnixMs(Now()));
      });
  call_timer_ = std::make_unique<net::Timer>(loop_, [this] { OnCallTimer(); });
  ice_timer_ = std::make_unique<net::Timer>(loop_, [this] { OnIceTimer(); });
  gauge_timer_ = std::make_unique<net::Timer>(loop_, [this] { RefreshGauges(); });

  SocketIoNamespace& root = sio_->Of("/");
  root.set_authorizer(
      [this](const Json& auth, const EngineIoHandshake& /*handshake*/,
             std::function<void(SocketIoAuthResult)> done) { Authorize(auth, std::move(done)); });
  root.OnConnection([this](SocketIoSocket& socket) { OnConnection(socket); });
  root.OnDisconnect(
      [this](SocketIoSocket& socket, std::string_view /*reason*/) { OnDisconnect(socket); });
  for (std::string_view event : kCallEventNames) {
    root.On(std::string(event), [this, event](SocketIoSocket& socket, Json args, SocketIoAck ack) {
      OnCallEvent(socket, event, std::move(args), std::move(ack));
    });
  }
  root.On("getIceServers", [this](SocketIoSocket& socket, Json /*args*/, SocketIoAck ack) {
    OnGetIceServers(socket, std::move(ack));
  });
  root.OnAny([](SocketIoSocket& /*socket*/, std::string_view /*event*/, Json /*args*/,
                SocketIoAck ack) { ack(CallErrorAck(kErrUnknownEvent)); });

  // The hooks and handlers below keep this object alive as long as the
  // service keeps them; Shutdown() (on the loop, after the drain) frees
  // what lives on the loop.
  std::shared_ptr<CallService> self = shared_from_this();
  auto mounted = service_.MountEngineIo("/socket.io/", [self]() -> EngineIoServer* {
    return self->sio_ != nullptr ? &self->sio_->engine() : nullptr;
  });
  if (!mounted) {
    return mounted;
  }
  if (auto routes = AddRoutes(); !routes) {
    return routes;
  }
  service_.SetSignedOutHook(
      [self](const std::string& user_id, const AccessToken& current, int64_t stamp,
             std::string_view reason) { self->OnSignedOut(user_id, current, stamp, reason); });
  service_.SetLoginsEndedHook(
      [self](const std::vector<sql::EndedLogin>& logins) { self->OnLoginsEnded(logins); });
  service_.OnStopping([self] { self->OnStopping(); });
  service_.OnStopped([self] { self->Shutdown(); });
  gauge_timer_->StartPeriodic(options_.gauge_interval);
  if (options_.cluster) {
    return SetUpCluster();
  }
  return base::Ok();
}

// ---- Any thread -------------------------------------------------------------------

void CallService::SetDraining(bool draining) {
  draining_ = draining;
  loop_.RunInLoop([self = shared_from_this(), draining] {
    // A cluster's coordinator keeps the other nodes' calls: only this
    // node's own sockets are refused (RunCallEvent).
    if (self->manager_ != nullptr && self->cluster_ == nullptr) {
      self->manager_->SetDraining(draining);
    }
  });
}

void CallService::Reload(const CallServiceSettings& settings) {
  loop_.RunInLoop([self = shared_from_this(), settings] {
    if (self->manager_ == nullptr) {
      return;
    }
    self->options_.calls.ring_timeout = settings.ring_timeout;
    self->options_.calls.reconnect_grace = settings.reconnect_grace;
    self->manager_->SetOptions(self->options_.calls);
    self->options_.socketio.recovery_window = RecoveryWindow(self->options_);
    self->sio_->SetRecoveryWindow(self->options_.socketio.recovery_window);
    self->options_.socketio.engineio.cors.allowed_origins = settings.allowed_origins;
    self->sio_->engine().SetCorsOptions(self->options_.socketio.engineio.cors);
    // SignalService::Reload posted its settings to this loop first.
    IceSource ice = IceSourceOf(self->service_.settings());
    if (ice != self->ice_source_) {
      self->ice_source_ = std::move(ice);
      std::vector<uint64_t> numbers;
      numbers.reserve(self->sockets_.size());
      for (const auto& [number, entry] : self->sockets_) {
        numbers.push_back(number);
      }
      for (uint64_t number : numbers) {
        self->SendIceServers(number);
      }
    }
  });
}

size_t CallService::EndCallsAndClose(std::chrono::milliseconds max_wait) {
  struct Wait {
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
    size_t left = 0;
  };
  auto wait = std::make_shared<Wait>();
  auto report = [wait](size_t left, bool done) {
    {
      std::lock_guard lock(wait->mutex);
      wait->left = left;
      wait->done = wait->done || done;
    }
    wait->changed.notify_all();
  };
  loop_.Post([self = shared_from_this(), report] {
    if (self->sio_ == nullptr) {
      report(0, true);
      return;
    }
    const size_t ended = self->EndCalls();
    // The timer belongs to this object, so `raw` is alive whenever it fires.
    CallService* raw = self.get();
    auto check = [raw, report] {
      const size_t left = raw->sio_ == nullptr ? 0 : raw->sio_->engine().known_session_count();
      // A cluster node's last messages (callEnded to other nodes' clients,
      // its sockets' ends) are still in the Redis connection's buffer: done
      // once Redis answered a command sent after them.
      bool flushed = !raw->cluster_stop_pending_;
      if (left == 0 && flushed && raw->cluster_ != nullptr) {
        if (!raw->flush_requested_) {
          raw->flush_requested_ = true;
          raw->cluster_->Flush();
        }
        flushed = raw->cluster_->flushed();
      }
      report(left, left == 0 && flushed);
      if (left == 0 && flushed && raw->close_watch_timer_) {
        raw->close_watch_timer_->Stop();
      }
    };
    self->close_watch_timer_ = std::make_unique<net::Timer>(self->loop_, check);
    auto close = [raw, check] {
      if (raw->sio_ != nullptr) {
        raw->sio_->CloseAll();
      }
      raw->close_watch_timer_->StartPeriodic(kCloseWatch);
      check();
    };
    self->close_delay_timer_ = std::make_unique<net::Timer>(self->loop_, close);
    if (ended > 0 && self->sio_->engine().session_count(EngineIoTransport::kPolling) > 0) {
      self->close_delay_timer_->Start(kEndedFetchTime);
    } else {
      close();
    }
  });
  std::unique_lock lock(wait->mutex);
  wait->changed.wait_for(lock, max_wait, [&] { return wait->done; });
  return wait->done ? 0 : wait->left;
}

// ---- Sockets ----------------------------------------------------------------------

void CallService::Authorize(const Json& auth, std::function<void(SocketIoAuthResult)> done) {
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

// ---- Time ---------------------------------------------------------------------------

void CallService::AfterManager() {
  if (manager_ == nullptr) {
    return;
  }
  while (!lost_sockets_.empty()) {
    const uint64_t number = lost_sockets_.back();
    lost_sockets_.pop_back();
    ++manager_depth_;
    manager_->OnSocketDisconnected(Now(), number);
    --manager_depth_;
  }
  active_calls_ = manager_->call_count();
  ArmCallTimer();
}

void CallService::ArmCallTimer() {
  std::optional<base::MonoTime> next = manager_->NextDeadline();
  if (!next) {
    call_timer_->Stop();
    return;
  }
  call_timer_->Start(std::max<base::Duration>(*next - Now(), base::Duration::zero()));
}

void CallService::OnCallTimer() {
  if (manager_ == nullptr) {
    return;
  }
  CheckLease();  // a coordinator frozen past its lease ends its calls instead
  ManagerScope scope(*this);
  manager_->OnTimer(Now());
}

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

void CallService::RefreshGauges() {
  const metrics::SignalMetrics& metrics = service_.metrics();
  size_t polling = 0;
  size_t websocket = 0;
  if (sio_ != nullptr) {
    polling = sio_->engine().session_count(EngineIoTransport::kPolling);
    websocket = sio_->engine().session_count(EngineIoTransport::kWebSocket);
  }
  metrics.connections[metrics::SignalTransport::kPolling].Set(static_cast<double>(polling));
  metrics.connections[metrics::SignalTransport::kWebSocket].Set(static_cast<double>(websocket));
  // sockets_ and users_ change with the Socket.IO connect and disconnect
  // (presence only once the call manager has been told).
  metrics.sockets.Set(static_cast<double>(sockets_.size()));
  metrics.users.Set(static_cast<double>(users_.size()));
  const bool coordinator = cluster_ != nullptr && cluster_->is_coordinator();
  metrics.cluster_coordinator.Set(coordinator ? 1.0 : 0.0);
  metrics.cluster_nodes.Set(coordinator ? static_cast<double>(cluster_->nodes()) : 0.0);
}

// ---- Lifecycle ----------------------------------------------------------------------

// The sockets get DISCONNECT and the Engine.IO connections are left to the
// clients, as the reference's disconnect() does: JavaScript, Dart, Java and
// Python clients close a connection without sockets themselves, while the
// Swift client keeps its manager connected and, had the server closed the
// connection, would reopen it again and again without ever joining. A
// connection left over can do nothing without a new CONNECT and token, and
// must make one within connect_timeout (SocketIoServer::RemoveSocket).
void CallService::OnSignedOut(const std::string& user_id, const AccessToken& current,
                              int64_t signed_out_stamp, std::string_view reason) {
  if (sio_ != nullptr) {
    sio_->DisconnectUser(user_id, /*close_connection=*/false);
  }
  if (cluster_ != nullptr && !applying_remote_) {
    // The other nodes refuse the same tokens and close the user's sockets.
    Json told = Json::object();
    told["t"] = "signout";
    told["u"] = user_id;
    told["j"] = current.token_id;
    told["x"] = current.expires_at;
    told["st"] = signed_out_stamp;
    told["why"] = reason;
    cluster_->Broadcast(std::move(told));
  }
}

void CallService::OnLoginsEnded(const std::vector<sql::EndedLogin>& logins) {
  if (sio_ == nullptr) {
    return;
  }
  Json ended = Json::array();
  for (const sql::EndedLogin& login : logins) {
    sio_->DisconnectUser(login.user_id, /*close_connection=*/false, SessionDigest(login.family_id));
    ended.push_back(Json::array({login.user_id, login.family_id, login.ended_at_ms}));
  }
  if (cluster_ != nullptr && !applying_remote_ && !ended.empty()) {
    Json told = Json::object();
    told["t"] = "logins";
    told["l"] = std::move(ended);
    cluster_->Broadcast(std::move(told));
  }
}

size_t CallService::EndCalls() {
  if (manager_ == nullptr) {
    return 0;
  }
  draining_ = true;
  manager_->SetDraining(true);
  const size_t live = manager_->call_count();
  {
    ManagerScope scope(*this);
    manager_->EndAll(Now(), kReasonServerShutdown);
  }
  if (live > 0) {
    TK_LOG_INFO("signal: ended {} calls for the shutdown", live);
  }
  if (cluster_ != nullptr) {
    // Another node can take over at once; the loop runs on while the
    // sockets close, which sends the release and their "disc". A
    // coordinator first lets the history it has queued reach the database
    // (the calls just ended, and any that ended a moment before).
    if (cluster_->is_coordinator()) {
      StopClusterAfterHistory();
    } else {
      cluster_->Stop();
    }
  }
  return live;
}

void CallService::StopClusterAfterHistory() {
  if (cluster_stop_pending_) {
    return;
  }
  // Usually one group commit (commit_delay); a database that hangs holds
  // the lease no longer than this, then the next coordinator's sweep ends
  // what is still unwritten.
  constexpr std::chrono::seconds kMaxWait{2};
  std::function<bool()> barrier = recorder_->WriteBarrier(kMaxWait);
  cluster_stop_pending_ = true;
  auto done = [weak = weak_from_this()](bool /*written*/) {
    auto self = weak.lock();
    if (self == nullptr || !self->cluster_stop_pending_) {
      return;
    }
    self->cluster_stop_pending_ = false;
    if (self->cluster_ != nullptr) {
      self->cluster_->Stop();
    }
  };
  if (!service_.work_queue().TryPost(loop_, std::move(barrier), std::move(done),
                                     net::JobKind::kRead)) {
    done(false);  // not moved from when refused
  }
}

void CallService::OnStopping() {
  EndCalls();
  if (sio_ != nullptr) {
    sio_->CloseAll();
  }
}

void CallService::Shutdown() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (call_timer_) {
    call_timer_->Stop();
  }
  if (ice_timer_) {
    ice_timer_->Stop();
  }
  if (gauge_timer_) {
    gauge_timer_->Stop();
  }
  close_watch_timer_.reset();
  close_delay_timer_.reset();
  cluster_stop_pending_ = false;
  if (cluster_ != nullptr) {
    cluster_->Stop();
    cluster_.reset();
  }
  pending_timer_.reset();
  unheard_timer_.reset();
  unheard_.clear();
  FailPending();
  remote_.clear();
  remote_index_.clear();
  // The Socket.IO server first: destroying it runs no handler, so nothing
  // reaches the manager afterwards.
  sio_.reset();
  manager_.reset();
  metrics_sink_.reset();
  service_.api().set_history_barrier(nullptr);
  service_.api().set_profile_read_hook(nullptr);
  service_.api().set_ready_check(nullptr);
  recorder_.reset();  // posts what is still pending
  sockets_.clear();
  ice_due_.clear();
  call_timer_.reset();
  ice_timer_.reset();
  gauge_timer_.reset();
  active_calls_ = 0;
  connected_sockets_ = 0;
  RefreshGauges();
}

}  // namespace turnkey::signal
