// CallService: the call flow of DESIGN.md section 5 on a SignalService's
// loop. It owns the Socket.IO server (mounted at /socket.io/), the
// CallManager and the call history writer, and adds the REST routes
// POST /api/calls/initiate|accept|reject|end.
//
// Sockets. A CONNECT to "/" must carry auth {token: <access JWT>} (a
// "Bearer " prefix is tolerated); a missing, bad, expired or revoked token
// gets CONNECT_ERROR {message, data: {code}} with TOKEN_MISSING,
// TOKEN_INVALID, TOKEN_EXPIRED or TOKEN_REVOKED (a deleted account:
// TOKEN_INVALID). The user is read from the store on the work queue before
// the socket is accepted (when the database cannot answer, the socket is
// accepted with what is known). auth.deviceId, if a string, is kept as the
// socket's device id. On connect the socket joins presence and gets
// `iceServers {iceServers, ttl}`, again when `ice_refresh_at` of the TURN
// credential's lifetime has passed, and at once when a reload changed the
// URLs, the TURN secret or the TTL; `getIceServers` answers {ok:true,
// iceServers, ttl} in its ack. Every call event goes to the CallManager and
// its ack is always answered ({ok:true,...} or {ok:false, error}); an
// unknown event gets {ok:false, error:"Unknown event"}. Events over the
// per-socket rate limit are refused with "Rate limited" and `callError`.
// Logout and password change disconnect the user's sockets. With
// connection_recovery, a CONNECT whose auth.pid names a socket of the same
// user (lost to the network within reconnect_grace, or still connected)
// resumes it under its number (CallManager::OnSocketResumed).
//
// Lookups for initiateCall, on the work queue (never on the loop): the
// caller is read again, because incomingCall shows their handle and display
// name and those may have changed since the socket connected; a receiverId
// of a connected user is answered from memory (UserCache: ids never change),
// any other receiverId and every receiverHandle (handles can change hands)
// from the store. When the receiver lookup cannot be answered (full queue,
// unreachable database) the ack is "Server busy"; a caller that cannot be
// read is taken from the cache.
//
// REST (Bearer; answers {success, message, data} where data is the ack of
// the same socket event):
//   initiate {receiverId|receiverHandle, callType} and accept {callId} act
//     as the user's most recently connected socket, which becomes the
//     call's device (it gets the events a socket client would get). A user
//     without a connected socket gets 409 NOT_CONNECTED: a call needs a
//     socket for the signaling that follows.
//   reject {callId} and end {callId} act through a stand-in that is not a
//     socket, so every device of the user is told (callEnded) like the
//     other party; they work without any socket connected.
//   Errors: 400 VALIDATION_ERROR (field receiverId, callType or callId),
//   404 NOT_FOUND (Receiver not found, Call not found), 403 NOT_AUTHORIZED,
//   409 CALL_CONFLICT (Call already processed, Already in a call, Call not
//   active), 409 USER_BUSY, 409 USER_NOT_AVAILABLE, 429 RATE_LIMITED, 503
//   SERVICE_UNAVAILABLE (Server is shutting down, Server busy); `message` is
//   the ack's error string and `data` the ack ({ok:false, error, callId?}).
//
// Shutdown. SetDraining(true) (SIGUSR1) refuses new calls; calls in
// progress go on (active_calls() tells when they are gone). On SIGTERM,
// EndCallsAndClose() ends every live call with callEnded reason
// "server_shutdown" (recorded like any end), gives polling clients time to
// fetch it, and closes the sockets; SignalService::Stop() does the same
// (without the wait) if nobody did. The Socket.IO server is destroyed on the
// loop before the HttpServer.
//
// Metrics: turnkey_signal_connections{transport} (Engine.IO sessions,
// refreshed on connect, disconnect and every gauge_interval), and through
// SignalMetricsCallSink turnkey_calls_total, turnkey_call_setup_seconds and
// turnkey_ice_reports_total.
//
// Lifetime and threads: Create() before SignalService::Start(), from the
// thread that owns the service; the service must outlive the CallService
// handle's use of it. The service's hooks keep the object alive until the
// service is gone. Methods marked "any thread" post to the loop; the
// CallEmitter side is the loop's.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "net/timer.h"
#include "signal/call_manager.h"
#include "signal/call_metrics_sink.h"
#include "signal/call_sinks.h"
#include "signal/call_store_recorder.h"
#include "signal/cluster_link.h"
#include "signal/signal_service.h"
#include "signal/socketio_server.h"
#include "signal/user_cache.h"

namespace turnkey::signal {

// The ack error when the work queue is full or the database cannot answer a
// lookup.
inline constexpr std::string_view kErrServerBusy = "Server busy";
// The ack error of an event no handler knows.
inline constexpr std::string_view kErrUnknownEvent = "Unknown event";
// CONNECT_ERROR data.code when the CONNECT carries no token.
inline constexpr std::string_view kCodeTokenMissing = "TOKEN_MISSING";
// The client events CallManager::OnEvent handles.
inline constexpr std::string_view kCallEventNames[] = {
    "initiateCall", "acceptCall",       "rejectCall", "endCall",    "sendOffer",
    "sendAnswer",   "sendIceCandidate", "reportIce",  "rejoinCall",
};
// A user's id, handle and display name as the call manager knows them.
UserInfo InfoOf(const sql::User& user);
UserInfo InfoOf(sql::UserSummary user);
// {ok:false, error, callId?}.
Json CallErrorAck(std::string_view error, std::optional<std::string_view> call_id = std::nullopt);
// CONNECT_ERROR data.code when the user has sockets_per_user sockets already.
inline constexpr std::string_view kCodeTooManyConnections = "TOO_MANY_CONNECTIONS";

struct CallServiceOptions {
  // The Socket.IO server: Engine.IO timing, maxPayload and allowed origins
  // (engineio.cors.allowed_origins; [] = same-origin), connect_timeout and
  // the per-socket event rate limit. rate_limit.error_event is set to
  // "callError" by Create.
  SocketIoServerOptions socketio;
  // Ring timeout, reconnect grace and the call rate limits.
  CallManagerOptions calls;
  CallStoreRecorderOptions recorder;
  // New iceServers are emitted to a socket once this share of the TURN
  // credential's lifetime has passed since the last ones. (0, 1).
  // Default 0.8.
  double ice_refresh_at = 0.8;
  // How often turnkey_signal_connections is refreshed besides connects and
  // disconnects (an upgrade to WebSocket has no event of its own). > 0.
  // Default 1 s.
  std::chrono::milliseconds gauge_interval{1000};
  // Sockets one user may have joined at once; a further CONNECT is refused
  // with CONNECT_ERROR code kCodeTooManyConnections. 0 = unlimited. Default
  // 64.
  uint32_t sockets_per_user = 64;
  // Socket.IO connection-state recovery (SocketIoServerOptions::
  // recovery_window): a client whose connection failed and that comes back
  // within calls.reconnect_grace with the "pid" of its CONNECT reply keeps its
  // socket (id, presence, side of a call); messages held for its call are
  // delivered at once, and the other side gets peerReconnected with the
  // resumed side's next call event. A cluster node that forwards resumes
  // only a socket it still holds (FinishAuthorize). Default on.
  bool connection_recovery = true;
  // Run as one node of a cluster (call_service_cluster.cc); nullopt = alone.
  std::optional<ClusterLinkOptions> cluster;
};

// The part of the options a reload changes (signal.allowed_origins,
// signal.ring_timeout, signal.reconnect_grace); ICE URLs are the
// SignalService's (SignalService::Reload).
struct CallServiceSettings {
  std::vector<std::string> allowed_origins;
  base::Duration ring_timeout = std::chrono::seconds(30);
  base::Duration reconnect_grace = std::chrono::seconds(10);
};

class CallService final : public CallEmitter, public std::enable_shared_from_this<CallService> {
 public:
  // Creates the Socket.IO server and the call manager on `service`'s loop,
  // mounts /socket.io/, adds the REST call routes and sets the service's
  // signed-out, stopping and stopped hooks. Before service.Start().
  static base::Result<std::shared_ptr<CallService>> Create(SignalService& service,
                                                           CallServiceOptions options);
  ~CallService() override;
  CallService(const CallService&) = delete;
  CallService& operator=(const CallService&) = delete;

  // ---- Any thread

  // Draining refuses initiateCall ("Server is shutting down"); everything
  // else goes on.
  void SetDraining(bool draining);
  void Reload(const CallServiceSettings& settings);
  // Any thread but the loop's; blocks. Ends every live call (callEnded
  // reason "server_shutdown"), refuses new ones, closes every socket
  // gracefully, then waits up to `max_wait` until every Engine.IO session
  // is gone: a polling client collects its last packets with its next GET,
  // which needs the listener still open, so call this before
  // SignalService::Stop() (which does the same, but after it stopped
  // listening). Returns the sessions still open.
  size_t EndCallsAndClose(std::chrono::milliseconds max_wait);
  // Live (ringing or active) calls and connected sockets, as of the last
  // event the loop handled.
  size_t active_calls() const { return active_calls_.load(); }
  size_t connected_sockets() const { return connected_sockets_.load(); }
  bool draining() const { return draining_.load(); }
  // The call history writer's counters (failed and dropped writes).
  const CallStoreRecorderStats& recorder_stats() const { return *recorder_stats_; }

  // ---- Loop thread

  // CallEmitter: one event to one socket (unknown sockets are ignored).
  void Emit(uint64_t socket, std::string_view event, Json payload) override;
  // Null once the service stopped.
  CallManager* manager() { return manager_.get(); }
  SocketIoServer* socketio() { return sio_.get(); }
  CallStoreRecorder* recorder() { return recorder_.get(); }

  // For make_shared; use Create.
  CallService(SignalService& service, CallServiceOptions options);

 private:
  struct SocketEntry {
    std::weak_ptr<SocketIoSocket> socket;
    std::string_view user_id;  // UserCache's copy, which this socket holds a reference on
    std::optional<std::multimap<base::MonoTime, uint64_t>::iterator> ice_due;
  };
  // Counts CallManager calls in progress; the last one to end runs what
  // had to wait (sockets lost meanwhile) and re-arms the call timer.
  class ManagerScope {
   public:
    explicit ManagerScope(CallService& service) : service_(service) { ++service_.manager_depth_; }
    ~ManagerScope();
    ManagerScope(const ManagerScope&) = delete;
    ManagerScope& operator=(const ManagerScope&) = delete;

   private:
    CallService& service_;
  };
  using Answer = std::move_only_function<void(Json ack)>;

  base::Status SetUp();
  base::Status AddRoutes();
  base::MonoTime Now() const { return service_.clock().Now(); }

  // Sockets (call_service.cc).
  void Authorize(const Json& auth, std::function<void(SocketIoAuthResult)> done);
  void FinishAuthorize(const std::string& token, const std::string& device_id,
                       const std::string& pid, base::Result<UserInfo> user,
                       const std::function<void(SocketIoAuthResult)>& done);
  void OnConnection(SocketIoSocket& socket);
  void OnDisconnect(SocketIoSocket& socket);
  // Accepts the socket `number` (OnConnection runs inside `done`), taking
  // over the socket `resume_sid` when not empty. False when the socket did
  // not join (its connection went).
  bool Join(uint64_t number, UserInfo info, SocketIoSocketData data,
            const std::function<void(SocketIoAuthResult)>& done, std::string resume_sid = {});
  static std::optional<uint64_t> NumberOf(const SocketIoSocket& socket);
  void OnCallEvent(SocketIoSocket& socket, std::string_view event, Json args, SocketIoAck ack);
  void OnGetIceServers(SocketIoSocket& socket, SocketIoAck ack);
  // initiateCall for socket `number` (a real socket, from an event or REST).
  void StartInitiate(uint64_t number, const Json& payload, Answer answer);
  void FinishInitiate(uint64_t number, const InitiateRequest& request,
                      const std::optional<UserInfo>& receiver, const UserInfo& caller,
                      Answer answer);
  // Emits callError {error, callId} and answers {ok:false, error, callId?},
  // as the call manager refuses (`call_id`: the event's, PayloadCallId).
  void FailEvent(uint64_t number, std::string_view error, Answer& answer,
                 std::optional<std::string_view> call_id = std::nullopt);

  // Time (call_service.cc).
  void AfterManager();
  void ArmCallTimer();
  void OnCallTimer();
  // Emits iceServers to `number` and schedules the next refresh.
  void SendIceServers(uint64_t number);
  void ScheduleIce(uint64_t number, base::MonoTime due);
  void OnIceTimer();
  void RefreshGauges();
  // Adds the Engine.IO sessions closed since the last call to
  // turnkey_signal_closed_connections_total.
  void ExportClosedConnections();
  // Call times follow a wall clock that stepped (CallStoreRecorder::
  // FollowWallClock); after a step forward the TURN credentials sockets hold
  // expire that much sooner, so their renewal comes that much sooner too.
  void FollowWallClock();

  // Lifecycle.
  void OnSignedOut(const std::string& user_id, const AccessToken& current, int64_t signed_out_stamp,
                   std::string_view reason);
  // Closes the sockets that authenticated with one of `logins`.
  void OnLoginsEnded(const std::vector<sql::EndedLogin>& logins);
  // Refuses new calls and ends the live ones; returns how many.
  size_t EndCalls();
  // Stops the cluster link once the history writes made so far are
  // committed (or after a bound): the next coordinator ends in the database,
  // as never ended, the calls of the last one it finds unfinished.
  void StopClusterAfterHistory();
  void OnStopping();
  void Shutdown();

  // Cluster (call_service_cluster.cc). The coordinator keeps the call state
  // of every node: another node's socket is a number here like a local one
  // (remote_), whose events that node forwards and to which Emit publishes.
  struct RemoteSocket {
    std::string node;
    uint64_t number = 0;   // the socket's number on its node
    uint64_t session = 0;  // SessionDigest of its login
  };
  base::Status SetUpCluster();
  // What a call-history read waits for before it reads (ApiContext's history
  // barrier): the local recorder, or on a node that is not the coordinator,
  // the coordinator's ("bar", answered once its queued records are written).
  std::function<bool()> HistoryBarrier(std::chrono::milliseconds max_wait);
  void ServeHistoryBarrier(const std::string& from, const Json& message);
  struct GoneRemote;
  bool GoneTooLong(const GoneRemote& gone, base::MonoTime now) const;
  // A node that is not the coordinator sends its sockets' call events there.
  // Entry points (a client's event, a REST call, a cluster message) call
  // CheckLease() first.
  bool Forwarding() const { return cluster_ != nullptr && !cluster_->is_coordinator(); }
  void CheckLease() {
    if (cluster_ != nullptr) {
      cluster_->CheckLease();
    }
  }
  // The coordinator while its link is not ready (no Redis connection or
  // subscription): what it carried out could not reach the other nodes, so
  // a call event or REST call action is refused "Server busy", as a node
  // that cannot forward refuses it. Checked where those are carried out
  // (RunCallEvent, RunRestAction), after CheckLease(). Logs (rate-limited).
  bool CoordinatorCutOff();
  void OnClusterMessage(const std::string& from, Json message);
  // An emit to a socket of this node only (an "emit" message).
  void EmitLocal(uint64_t socket, std::string_view event, Json payload);
  void OnClusterRole(bool coordinator);
  // An emit that ends a call for a socket of another node (IsCallEnd): sent
  // again every kUnheardRetry while no subscriber of that node hears it (Redis
  // away, or back before that node subscribed again), for as long as ended
  // calls are remembered. Other emits are sent once: sent again late, they
  // could overtake what followed them.
  struct Unheard {
    base::MonoTime until;
    std::string node;
    Json message;
  };
  void SendUntilHeard(Unheard unheard);
  void HoldUnheard(Unheard unheard);
  void OnUnheardTimer();
  // A new coordinator ends the calls the last one left ringing or active in
  // the history (unfinished_cutoff_), again every kUnfinishedRetry until it
  // could.
  void EndLastCoordinatorsCalls();
  void SweepLastCoordinatorsCalls();
  void RetryLastCoordinatorsCalls(std::string_view why);
  void OnClusterCoordinator(const std::string& node);
  // Follower: sends `request` to the coordinator; `answer` gets its ack, or
  // "Server busy" when it cannot be sent, no answer comes in time or the
  // node it reached is not the coordinator (an ack without payload, in a
  // handover); then a socket's call event, "ev", also gets callError, as
  // every refusal does.
  void Forward(Json request, Answer answer);
  // How long a forwarded request waits for its answer.
  std::chrono::milliseconds ForwardWait() const;
  // Answers a forwarded request "Server busy" here; `socket` (0: none) is
  // the socket whose event it was, `call_id` its payload's.
  void AnswerBusy(uint64_t socket, Answer& answer, std::optional<std::string_view> call_id);
  void FailPending();
  void OnPendingTimer();
  // Follower: tells the coordinator every socket of this node.
  void SyncToCoordinator();
  // Coordinator: the number of `node`'s socket `number`, registered with the
  // manager when new.
  uint64_t RemoteSocketNumber(const std::string& node, uint64_t number, const std::string& user,
                              uint64_t session);
  // Scans every remote socket: for a whole node (gone, synced, demoted).
  void DropRemoteSockets(const std::function<bool(const RemoteSocket&)>& which);
  // One remote socket by its number here ("disc").
  void DropRemoteSocket(uint64_t local);
  // Coordinator: a forwarded call event or REST action; answers with an ack
  // message to `from`.
  void ServeForwardedEvent(const std::string& from, const Json& message);
  void ServeForwardedRest(const std::string& from, const Json& message);
  // Sends an ack back for request `request` of `node`.
  Answer ReplyTo(const std::string& node, uint64_t request);
  // The manager is told `number` is gone once it is not running.
  void LoseSocket(uint64_t number);
  // Tells the other nodes to disconnect sockets (a sign-out, ended logins).
  void BroadcastSignOut(const Json& message);
  // A call event of socket `number` run here (alone, or on the coordinator).
  void RunCallEvent(uint64_t number, std::string_view event, Json payload, Answer answer);

  // REST (call_service_routes.cc).
  // The body of a REST call route as an event payload; nullopt after
  // answering `call` (bad JSON, or shutting down).
  std::optional<Json> RestPayload(ApiCall& call);
  // POST /api/calls/<action>: `event` is the action's socket event name,
  // `message` the success message.
  void Rest(ApiCall call, std::string_view event, std::string_view message);
  // A REST call action (the event name) of `user_id` for the login whose
  // SessionDigest is `session`, run here (alone, or on the coordinator).
  // The ack has code NOT_CONNECTED when initiate or accept finds no socket.
  void RunRestAction(std::string_view event, const std::string& user_id, uint64_t session,
                     Json payload, Answer answer);
  // The socket a REST initiate/accept acts as: the newest socket of the
  // request's own login (`session`, SessionDigest of the access token's
  // sid) when it has one, so the device that asked is the one in the call;
  // else the user's newest. Sockets of other nodes count on the coordinator.
  std::optional<uint64_t> NewestSocketOf(std::string_view user_id, uint64_t session) const;
  // SocketIoSocketData::session for a login id ("sid"); 0 for none.
  static uint64_t SessionDigest(std::string_view login);

  SignalService& service_;
  net::EventLoop& loop_;
  CallServiceOptions options_;
  std::unique_ptr<SocketIoServer> sio_;
  std::unique_ptr<CallStoreRecorder> recorder_;
  std::unique_ptr<SignalMetricsCallSink> metrics_sink_;
  std::unique_ptr<CallManager> manager_;
  UserCache users_;  // one reference per signed-in socket: size() is the users online
  std::unique_ptr<net::Timer> call_timer_;
  std::unique_ptr<net::Timer> ice_timer_;
  std::unique_ptr<net::Timer> gauge_timer_;
  std::unique_ptr<net::Timer> close_watch_timer_;  // EndCallsAndClose
  std::unique_ptr<net::Timer> close_delay_timer_;
  std::unordered_map<uint64_t, SocketEntry> sockets_;
  std::multimap<base::MonoTime, uint64_t> ice_due_;
  // The Engine.IO server's closed-session counts already added to the
  // metrics (RefreshGauges).
  std::array<uint64_t, static_cast<size_t>(metrics::ConnectionClose::kCount)> closed_exported_{};
  // What iceServers are made of, as last sent. A reload that changes it (a
  // leaked TURN secret rotated out, new URLs) sends every socket new ones at
  // once instead of at its next refresh, hours away.
  struct IceSource {
    std::vector<std::string> urls;
    std::string turn_secret;
    std::chrono::seconds ttl{0};
    friend bool operator==(const IceSource&, const IceSource&) = default;
  };
  IceSource ice_source_;
  static IceSource IceSourceOf(const SignalSettings& settings);
  // Socket numbers: every accepted socket and every REST stand-in gets a
  // new one.
  uint64_t next_number_ = 1;
  // A socket's context (SocketIoSocketData::context) is its number, a
  // uint64_t std::any holds without allocating. Its user, loaded while
  // authorizing, is held here for the length of the authorizer's done():
  // SocketIoServer runs OnConnection inside it when the socket joins.
  struct Joining {
    uint64_t number = 0;
    UserInfo user;
  };
  std::optional<Joining> joining_;
  int manager_depth_ = 0;
  std::vector<uint64_t> lost_sockets_;  // disconnects that arrived inside the manager
  bool stopped_ = false;

  std::unique_ptr<ClusterLink> cluster_;
  // Set while a sign-out another node announced is applied here, which must
  // not be announced again.
  bool applying_remote_ = false;
  bool flush_requested_ = false;  // EndCallsAndClose asked the link to flush
  // A stopping coordinator waits for the history of the calls it ended
  // before it gives the lease up (StopClusterAfterHistory).
  bool cluster_stop_pending_ = false;
  std::unordered_map<uint64_t, RemoteSocket> remote_;
  std::map<std::pair<std::string, uint64_t>, uint64_t> remote_index_;
  // Coordinator: sockets of a node it stopped hearing from (node_gone), by
  // (node, number on that node), kept as long as ended calls are remembered.
  // When the node comes back and lists one again ("sync", "conn"), it takes
  // its old number back and is resumed (OnSocketResumed): its side of a call
  // in grace goes on, and the callEnded of every call of it that ended
  // meanwhile is told.
  struct GoneRemote {
    uint64_t local = 0;
    std::string user;
    base::MonoTime gone_at;
  };
  std::map<std::pair<std::string, uint64_t>, GoneRemote> gone_remote_;
  struct Pending {
    base::MonoTime deadline;
    Answer answer;
    uint64_t socket = 0;                 // a call event's socket; 0 for "conn", "rest" and "bar"
    std::optional<std::string> call_id;  // a call event's callId
  };
  std::map<uint64_t, Pending> pending_;  // by request id, which grows with time
  uint64_t next_request_ = 1;
  std::unique_ptr<net::Timer> pending_timer_;
  // The history time before which this coordinator's predecessor made the
  // calls still to end; none once ended or when not coordinating.
  std::optional<int64_t> unfinished_cutoff_;
  std::unique_ptr<net::Timer> unfinished_timer_;
  std::deque<Unheard> unheard_;
  std::unique_ptr<net::Timer> unheard_timer_;

  std::atomic<size_t> active_calls_{0};
  std::atomic<size_t> connected_sockets_{0};
  std::atomic<bool> draining_{false};
  // Set in Create, read-only afterwards; outlives the recorder.
  std::shared_ptr<const CallStoreRecorderStats> recorder_stats_;
};

}  // namespace turnkey::signal
