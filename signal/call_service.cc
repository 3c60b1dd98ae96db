// CallService: set-up, reload, timers and shutdown. A socket's CONNECT,
// join and leave are in call_service_sockets.cc, its call events and ICE
// servers in call_service_events.cc, the REST routes in
// call_service_routes.cc and the cluster in call_service_cluster.cc.
#include "signal/call_service.h"

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <tuple>
#include <type_traits>
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

// How long a lost socket stays resumable: the calls' reconnect grace, after
// which its side of a call is gone anyway.
std::chrono::milliseconds RecoveryWindow(const CallServiceOptions& options) {
  if (!options.connection_recovery) {
    return std::chrono::milliseconds::zero();
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(options.calls.reconnect_grace);
}

}  // namespace

UserInfo InfoOf(const sql::User& user) {
  return UserInfo{.id = user.id, .handle = user.handle, .display_name = user.display_name};
}

UserInfo InfoOf(sql::UserSummary user) {
  return UserInfo{.id = std::move(user.id),
                  .handle = std::move(user.handle),
                  .display_name = std::move(user.display_name)};
}

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
  service_.api().set_history_barrier(
      [this](std::chrono::milliseconds max_wait) { return HistoryBarrier(max_wait); });
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
        FollowWallClock();
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
      if (flushed && raw->cluster_ != nullptr && raw->cluster_->connected() &&
          !raw->unheard_.empty()) {
        flushed = false;  // call ends not heard yet by another node: sent again every second
      }
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

void CallService::FollowWallClock() {
  if (recorder_ == nullptr) {  // after the stop
    return;
  }
  if (unfinished_cutoff_) {
    // A new coordinator's sweep ends the calls created before its cutoff:
    // calls stamped on a timeline that stepped back below it would be
    // taken for them. The step is followed once the sweep is done.
    return;
  }
  const base::Duration moved = recorder_->FollowWallClock();
  if (moved <= base::Duration::zero() || ice_due_.empty()) {
    return;
  }
  std::multimap<base::MonoTime, uint64_t> earlier;
  for (const auto& [due, number] : ice_due_) {
    auto it = sockets_.find(number);
    if (it != sockets_.end()) {
      it->second.ice_due = earlier.emplace(due - moved, number);
    }
  }
  ice_due_ = std::move(earlier);
  ice_timer_->Start(
      std::max<base::Duration>(ice_due_.begin()->first - Now(), base::Duration::zero()));
}

void CallService::ExportClosedConnections() {
  if (sio_ == nullptr) {
    return;
  }
  // The label values follow EngineIoCloseReason's order.
  using metrics::ConnectionClose;
  static_assert(static_cast<int>(EngineIoCloseReason::kForcedClose) ==
                    static_cast<int>(ConnectionClose::kForcedClose) &&
                static_cast<int>(EngineIoCloseReason::kServerShutdown) ==
                    static_cast<int>(ConnectionClose::kServerShutdown) &&
                static_cast<int>(EngineIoCloseReason::kTransportClose) ==
                    static_cast<int>(ConnectionClose::kTransportClose) &&
                static_cast<int>(EngineIoCloseReason::kTransportError) ==
                    static_cast<int>(ConnectionClose::kTransportError) &&
                static_cast<int>(EngineIoCloseReason::kPingTimeout) ==
                    static_cast<int>(ConnectionClose::kPingTimeout) &&
                static_cast<int>(EngineIoCloseReason::kParseError) ==
                    static_cast<int>(ConnectionClose::kParseError) &&
                static_cast<size_t>(ConnectionClose::kParseError) + 1 ==
                    static_cast<size_t>(ConnectionClose::kCount));
  const auto& closed = sio_->engine().stats().closed;
  static_assert(std::tuple_size_v<std::remove_cvref_t<decltype(closed)>> ==
                static_cast<size_t>(ConnectionClose::kCount));
  const metrics::SignalMetrics& metrics = service_.metrics();
  for (size_t i = 0; i < closed.size(); ++i) {
    if (closed[i] > closed_exported_[i]) {
      metrics.closed_connections[static_cast<ConnectionClose>(i)].Add(
          service_.loop_shard(), closed[i] - closed_exported_[i]);
      closed_exported_[i] = closed[i];
    }
  }
}

void CallService::RefreshGauges() {
  FollowWallClock();
  const metrics::SignalMetrics& metrics = service_.metrics();
  size_t polling = 0;
  size_t websocket = 0;
  if (sio_ != nullptr) {
    polling = sio_->engine().session_count(EngineIoTransport::kPolling);
    websocket = sio_->engine().session_count(EngineIoTransport::kWebSocket);
  }
  metrics.connections[metrics::SignalTransport::kPolling].Set(static_cast<double>(polling));
  metrics.connections[metrics::SignalTransport::kWebSocket].Set(static_cast<double>(websocket));
  ExportClosedConnections();
  // sockets_ and users_ change with the Socket.IO connect and disconnect
  // (presence only once the call manager has been told).
  metrics.sockets.Set(static_cast<double>(sockets_.size()));
  metrics.users.Set(static_cast<double>(users_.size()));
  const bool coordinator = cluster_ != nullptr && cluster_->is_coordinator();
  metrics.cluster_coordinator.Set(coordinator ? 1.0 : 0.0);
  metrics.cluster_nodes.Set(coordinator ? static_cast<double>(cluster_->nodes()) : 0.0);
  if (recorder_ != nullptr) {
    metrics.history_waiting[metrics::HistoryWaitPlace::kMemory].Set(
        static_cast<double>(recorder_->waiting_in_memory()));
    metrics.history_waiting[metrics::HistoryWaitPlace::kFile].Set(
        static_cast<double>(recorder_->waiting_in_file()));
  }
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
  if (!unheard_.empty()) {
    TK_LOG_WARN(
        "cluster: {} call ends for clients of other nodes given up at the stop: no node heard "
        "them (Redis away, or the node not subscribed); those clients are not told",
        unheard_.size());
    unheard_.clear();
  }
  FailPending();
  remote_.clear();
  remote_index_.clear();
  ExportClosedConnections();  // the stop's closes (server_shutdown)
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
