// The metrics turnkey exports (DESIGN.md section 7): names, label values,
// and structs of handles resolved once at startup.
//
// A thin layer over Registry. app/ creates one Registry and, from it,
// ProcessMetrics, TurnMetrics and SignalMetrics; relay/ and signal/ keep a
// const reference to theirs. Every per-event handle is resolved up front, so
// counting is an add on the calling thread's shard:
//
//   // worker start:            Shard& shard = registry.AcquireShard();
//   // per batch of packets:    m.relayed_packets[Direction::kPeerToClient].Add(shard, n);
//   // per request:             m.Request(TurnMethod::kAllocate, 437).Inc(shard);
//
// turnkey_turn_requests_total (method x code, sparse) skips zero series, so
// the exposition shows only what happened; the other families with fixed
// label values write every series from the start, zeros included
// (docs/metrics.md, "Series from the start"). A struct built by Create() is read-only afterwards
// and may be shared by all threads; a default-constructed one holds detached handles that count
// nothing (for tests and metrics-less tools).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "metrics/counter.h"
#include "metrics/enum_array.h"
#include "metrics/gauge.h"
#include "metrics/histogram.h"
#include "metrics/registry.h"

namespace turnkey::metrics {

// --- Metric names -----------------------------------------------------------

inline constexpr std::string_view kBuildInfo = "turnkey_build_info";
inline constexpr std::string_view kTlsCertificateExpiry =
    "turnkey_tls_certificate_expiry_timestamp_seconds";
inline constexpr std::string_view kConfigLastReloadSuccessful =
    "turnkey_config_last_reload_successful";
inline constexpr std::string_view kConfigLastReloadSuccessTime =
    "turnkey_config_last_reload_success_timestamp_seconds";
inline constexpr std::string_view kDraining = "turnkey_draining";
inline constexpr std::string_view kProcessOpenFds = "turnkey_process_open_fds";
inline constexpr std::string_view kProcessMaxFds = "turnkey_process_max_fds";
inline constexpr std::string_view kProcessResidentMemory = "turnkey_process_resident_memory_bytes";
inline constexpr std::string_view kProcessStartTime = "turnkey_process_start_time_seconds";

inline constexpr std::string_view kTurnAllocationsActive = "turnkey_turn_allocations_active";
inline constexpr std::string_view kTurnAllocationsTotal = "turnkey_turn_allocations_total";
inline constexpr std::string_view kTurnRequestsTotal = "turnkey_turn_requests_total";
inline constexpr std::string_view kTurnAuthFailuresTotal = "turnkey_turn_auth_failures_total";
inline constexpr std::string_view kTurnRelayedBytesTotal = "turnkey_turn_relayed_bytes_total";
inline constexpr std::string_view kTurnRelayedPacketsTotal = "turnkey_turn_relayed_packets_total";
inline constexpr std::string_view kTurnPeerDeniedTotal = "turnkey_turn_peer_denied_total";
inline constexpr std::string_view kTurnRelayPortsFree = "turnkey_turn_relay_ports_free";
inline constexpr std::string_view kTurnPermissionsActive = "turnkey_turn_permissions_active";
inline constexpr std::string_view kTurnChannelsActive = "turnkey_turn_channels_active";
inline constexpr std::string_view kTurnDroppedPacketsTotal = "turnkey_turn_dropped_packets_total";
inline constexpr std::string_view kTurnPeerIcmpTotal = "turnkey_turn_peer_icmp_total";

inline constexpr std::string_view kSignalConnections = "turnkey_signal_connections";
inline constexpr std::string_view kSignalSockets = "turnkey_signal_sockets";
inline constexpr std::string_view kSignalUsers = "turnkey_signal_users";
inline constexpr std::string_view kSignalResumedSocketsTotal =
    "turnkey_signal_resumed_sockets_total";
inline constexpr std::string_view kSignalClosedConnectionsTotal =
    "turnkey_signal_closed_connections_total";
inline constexpr std::string_view kClusterCoordinator = "turnkey_cluster_coordinator";
inline constexpr std::string_view kClusterNodes = "turnkey_cluster_nodes";
inline constexpr std::string_view kCallsTotal = "turnkey_calls_total";
inline constexpr std::string_view kCallSetupSeconds = "turnkey_call_setup_seconds";
inline constexpr std::string_view kIceConnectSeconds = "turnkey_ice_connect_seconds";
inline constexpr std::string_view kIceRttSeconds = "turnkey_ice_rtt_seconds";
inline constexpr std::string_view kIceReportsTotal = "turnkey_ice_reports_total";
inline constexpr std::string_view kIceFailuresTotal = "turnkey_ice_failures_total";
inline constexpr std::string_view kCallHistoryWritesTotal = "turnkey_call_history_writes_total";
inline constexpr std::string_view kCallHistoryWritesWaiting = "turnkey_call_history_writes_waiting";
inline constexpr std::string_view kHttpRequestsTotal = "turnkey_http_requests_total";
inline constexpr std::string_view kDbQuerySeconds = "turnkey_db_query_seconds";

// --- Label values -------------------------------------------------------------
// Each enum's label values are in the array of the same name, in order.

// The client's transport to the TURN server (not REQUESTED-TRANSPORT).
enum class Transport : uint8_t { kUdp, kTcp, kTls, kDtls, kCount };
inline constexpr std::array<std::string_view, 4> kTransportValues = {"udp", "tcp", "tls", "dtls"};

// How an authenticated Allocate request ended. The 401 challenge and 438
// Stale Nonce answers are part of the handshake and not counted here (they
// show in turnkey_turn_requests_total).
enum class AllocationResult : uint8_t {
  kSuccess,               // allocation created
  kQuotaReached,          // 486 Allocation Quota Reached
  kInsufficientCapacity,  // 508 Insufficient Capacity (no relay port)
  kMismatch,              // 437 Allocation Mismatch (5-tuple already allocated)
  kRejected,              // any other error answer (400, 403, 440, 442, ...)
  kCount
};
inline constexpr std::array<std::string_view, 5> kAllocationResultValues = {
    "success", "quota_reached", "insufficient_capacity", "allocation_mismatch", "rejected"};

// STUN/TURN request methods (RFC 8489, RFC 8656, RFC 6062).
enum class TurnMethod : uint8_t {
  kBinding,
  kAllocate,
  kRefresh,
  kCreatePermission,
  kChannelBind,
  kConnect,
  kConnectionBind,
  kOther,
  kCount
};
inline constexpr std::array<std::string_view, 8> kTurnMethodValues = {
    "binding",      "allocate", "refresh",         "create_permission",
    "channel_bind", "connect",  "connection_bind", "other"};

// Response codes of turnkey_turn_requests_total: 200 for a success response,
// else the ERROR-CODE (RFC 8489 section 14.8, RFC 8656 section 19, RFC 6062
// section 6.3). Any other code is counted as "other" (index kTurnCodeOther).
inline constexpr std::array<uint16_t, 18> kTurnCodes = {
    200, 300, 400, 401, 403, 405, 420, 437, 438, 440, 441, 442, 443, 446, 447, 486, 500, 508};
inline constexpr size_t kTurnCodeOther = kTurnCodes.size();
// The index of `code` in kTurnCodes, or kTurnCodeOther.
constexpr size_t TurnCodeIndex(uint16_t code) {
  for (size_t i = 0; i < kTurnCodes.size(); ++i) {
    if (kTurnCodes[i] == code) {
      return i;
    }
  }
  return kTurnCodeOther;
}

// Why a request carrying credentials was refused.
enum class AuthFailure : uint8_t {
  kBadIntegrity,  // MESSAGE-INTEGRITY(-SHA256) did not verify: wrong password or secret
  kUnknownUser,   // no such static user, or a REST username that does not parse
  kExpired,       // TURN REST credential past its expiry timestamp
  kMalformed,     // credential attributes missing or inconsistent
  kCount
};
inline constexpr std::array<std::string_view, 4> kAuthFailureValues = {
    "bad_integrity", "unknown_user", "expired", "malformed"};

// Which way relayed data went.
enum class Direction : uint8_t { kClientToPeer, kPeerToClient, kCount };
inline constexpr std::array<std::string_view, 2> kDirectionValues = {"client_to_peer",
                                                                     "peer_to_client"};

// Why the relay dropped a packet without an answer.
enum class DropReason : uint8_t {
  kMalformed,       // not a decodable STUN message or ChannelData
  kBadFingerprint,  // FINGERPRINT present and wrong
  kUnexpected,      // a response, an unknown indication, ...
  kNoAllocation,    // Send or ChannelData from a client without an allocation
  kNoPermission,    // to or from a peer without a permission
  kNoChannel,       // ChannelData for a channel that is not bound
  kBandwidth,       // over the allocation's bandwidth cap
  kSendError,       // the socket refused it (buffer full, unreachable, ...)
  kThrottled,       // a 401 or 438 answer held back: its source asked too often
  kClientBacklog,   // for a TCP/TLS client whose connection is too far behind
  kCount
};
inline constexpr std::array<std::string_view, 10> kDropReasonValues = {
    "malformed",  "bad_fingerprint", "unexpected", "no_allocation", "no_permission",
    "no_channel", "bandwidth",       "send_error", "throttled",     "client_backlog"};

// What an ICMP error about a relayed datagram said of its peer.
enum class IcmpKind : uint8_t {
  kPortUnreachable,  // nothing listens on the peer's port
  kUnreachable,      // host or network unreachable, or prohibited
  kPacketTooBig,     // too big for the path
  kTimeExceeded,     // hop limit ran out
  kCount
};
inline constexpr std::array<std::string_view, 4> kIcmpKindValues = {
    "port_unreachable", "unreachable", "packet_too_big", "time_exceeded"};

// Engine.IO transport of a signaling connection.
enum class SignalTransport : uint8_t { kWebSocket, kPolling, kCount };
inline constexpr std::array<std::string_view, 2> kSignalTransportValues = {"websocket", "polling"};

enum class CallType : uint8_t { kAudio, kVideo, kCount };
inline constexpr std::array<std::string_view, 2> kCallTypeValues = {"audio", "video"};

// A call's final status (DESIGN.md section 5).
enum class CallStatus : uint8_t {
  kCompleted,       // accepted, then ended by a participant
  kMissed,          // rang until the ring timeout
  kRejected,        // the callee rejected it
  kBusy,            // the callee was in another call
  kCancelled,       // the caller hung up while it rang
  kUnavailable,     // the callee had no connected device
  kConnectionLost,  // a participant did not reconnect within the grace period
  kIceFailed,       // accepted and ended by a participant on failed media:
                    // never connected, or lost mid-call and not recovered
                    // (signal::CallManager::MediaFailed)
  kCount
};
inline constexpr std::array<std::string_view, 8> kCallStatusValues = {
    "completed", "missed",      "rejected",        "busy",
    "cancelled", "unavailable", "connection_lost", "ice_failed"};

enum class IceResult : uint8_t { kConnected, kFailed, kCount };
inline constexpr std::array<std::string_view, 2> kIceResultValues = {"connected", "failed"};

// Why a side's ICE failed, from what its failed reportIce says it gathered
// and which ICE server errors it got (signal::ParseIceReport).
enum class IceFailureCause : uint8_t {
  kTurnAuth,         // no relay candidate; a TURN server refused the credential (401)
  kTurnRefused,      // no relay candidate; a TURN server refused the allocation (403, 486, 508)
  kTurnUnreachable,  // no relay candidate; TURN offered but out of reach (701, or no answer)
  kNoRelay,          // no relay candidate, and no turn: URI was given to the client
  kChecksFailed,     // relay candidates gathered, yet no candidate pair worked
  kUnknown,          // the report cannot tell (no detail, or it failed before gathering)
  kCount
};
inline constexpr std::array<std::string_view, 6> kIceFailureCauseValues = {
    "turn_auth", "turn_refused", "turn_unreachable", "no_relay", "checks_failed", "unknown"};

// ICE candidate types (RFC 8445 section 5.1.1); kUnknown for anything else a
// client reports.
enum class CandidateType : uint8_t { kHost, kSrflx, kPrflx, kRelay, kUnknown, kCount };
inline constexpr std::array<std::string_view, 5> kCandidateTypeValues = {"host", "srflx", "prflx",
                                                                         "relay", "unknown"};
// "host", "srflx", "prflx", "relay" (as in RTCIceCandidate.type); anything
// else is kUnknown.
CandidateType ParseCandidateType(std::string_view text);

// HTTP status codes turnkey_http_requests_total keeps apart; others are
// counted as code "other".
inline constexpr std::array<std::string_view, 23> kHttpCodeValues = {
    "101", "200", "201", "204", "301", "302", "304", "400", "401", "403", "404", "405",
    "408", "409", "413", "414", "415", "429", "431", "500", "501", "503", "504"};

// Histogram buckets, in seconds.
// Ringing is included, and signal.ring_timeout may be longer than the
// default 30 s: the top buckets leave room for a late answer.
inline constexpr std::array<double, 14> kCallSetupBuckets = {0.1, 0.25, 0.5, 1,  2,  3,  5,
                                                             10,  20,   30,  45, 60, 90, 120};
// Answer to media: ICE checks, TURN allocations and DTLS; seconds when a
// relay or a network is slow, tens when ICE gives up (browsers: ~30 s).
inline constexpr std::array<double, 13> kIceConnectBuckets = {0.1, 0.25, 0.5, 0.75, 1,  1.5, 2,
                                                              3,   5,    10,  15,   20, 30};
// Round-trip time of the selected candidate pair.
inline constexpr std::array<double, 12> kIceRttBuckets = {0.005, 0.01, 0.02, 0.04, 0.06, 0.08,
                                                          0.1,   0.15, 0.2,  0.3,  0.5,  1};
inline constexpr std::array<double, 13> kDbQueryBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

// --- Handles ------------------------------------------------------------------

// Process-wide metrics.
struct ProcessMetrics {
  // Registers the families and sets turnkey_build_info{version} to 1.
  [[nodiscard]] static base::Result<ProcessMetrics> Create(Registry& registry,
                                                           std::string_view version);

  Gauge build_info;
  // Unix time the TLS certificate expires; Set() on load and on reload.
  Gauge tls_certificate_expiry;
  // Whether the last config load (the start, then each SIGHUP) was applied
  // (1) or refused (0), and the Unix time of the last one applied. Set by
  // the caller (serve), as Prometheus' own config_last_reload_* gauges.
  Gauge config_last_reload_successful;
  Gauge config_last_reload_success_time;
  // 1 from the start of a drain (SIGUSR1, or the stop after SIGTERM): new
  // allocations and calls are refused. Set by serve.
  Gauge draining;
  // The process's descriptors (open, and the soft RLIMIT_NOFILE), resident
  // memory and start time. Registered here; the caller sets them (serve:
  // the start time once, the rest before each scrape).
  Gauge open_fds;
  Gauge max_fds;
  Gauge resident_memory_bytes;
  Gauge start_time_seconds;
};

// The TURN relay's metrics.
struct TurnMetrics {
  [[nodiscard]] static base::Result<TurnMetrics> Create(Registry& registry);

  // The handle for `method` answered with `code` (200 for success).
  const Counter& Request(TurnMethod method, uint16_t code) const {
    return requests[method][TurnCodeIndex(code)];
  }

  // Up/down: Inc on create, Dec on expiry or deletion, on any shard.
  Gauge allocations_active;
  EnumArray<Transport, EnumArray<AllocationResult, Counter>> allocations;
  // Indexed by TurnCodeIndex(code); prefer Request().
  EnumArray<TurnMethod, std::array<Counter, kTurnCodes.size() + 1>> requests;
  EnumArray<AuthFailure, Counter> auth_failures;
  // Payload bytes (UDP payload / ChannelData or Data contents), not headers.
  EnumArray<Direction, Counter> relayed_bytes;
  EnumArray<Direction, Counter> relayed_packets;
  // Permission, channel or Send refused because the peer address is denied.
  Counter peer_denied;
  // Up/down: each worker adds its slice's free ports at start, then Dec on
  // acquire and Inc on release; or set it from a callback.
  Gauge relay_ports_free;
  Gauge permissions_active;  // up/down
  Gauge channels_active;     // up/down
  EnumArray<DropReason, Counter> dropped_packets;
  // ICMP errors about relayed datagrams passed on to clients.
  EnumArray<IcmpKind, Counter> peer_icmp;
};

// What became of one call-history write (a call's row or an update to it).
enum class HistoryWriteResult : uint8_t {
  kApplied,  // in the database
  kRefused,  // the database refused this write (logged); the others went in
  kLost,     // never written: retries used up, too many pending, or shutdown
  kCount
};
inline constexpr std::array<std::string_view, 3> kHistoryWriteResultValues = {"applied", "refused",
                                                                              "lost"};

// Where call-history writes not yet in the database wait.
enum class HistoryWaitPlace : uint8_t {
  kMemory,  // queued, in a transaction not answered yet, or back for a retry
  kFile,    // in state_dir/unwritten-calls.jsonl, not read back yet
  kCount
};
inline constexpr std::array<std::string_view, 2> kHistoryWaitPlaceValues = {"memory", "file"};

// How a socket was resumed (Socket.IO connection-state recovery).
enum class SocketResume : uint8_t {
  kLost,      // its connection had been seen to fail
  kReplaced,  // its connection still seemed alive: closed for the new one
  kCount
};
inline constexpr std::array<std::string_view, 2> kSocketResumeValues = {"lost", "replaced"};

// Why a signaling (Engine.IO) connection ended: the reference server's
// disconnect reasons, in signal::EngineIoCloseReason's order.
enum class ConnectionClose : uint8_t {
  kForcedClose,     // turnkey closed it: sign-out, a limit, a client that does not read
  kServerShutdown,  // the stop
  kTransportClose,  // the client closed it or left
  kTransportError,  // a broken request or frame, or a write that failed
  kPingTimeout,     // no pong within the ping timeout: a network gone quiet
  kParseError,      // an undecodable packet
  kCount
};
inline constexpr std::array<std::string_view, 6> kConnectionCloseValues = {
    "forced_close",    "server_shutdown", "transport_close",
    "transport_error", "ping_timeout",    "parse_error"};

// The signaling service's metrics.
struct SignalMetrics {
  [[nodiscard]] static base::Result<SignalMetrics> Create(Registry& registry);

  // The handle for one HTTP request's route and status code. `route` is the
  // router's pattern ("/api/calls/history/:callId", "unmatched"), never the
  // raw path; the family holds at most 256 series. Takes the registry's
  // mutex (no allocation once the series exists); any thread.
  Counter HttpRequest(std::string_view route, int code) const;

  EnumArray<SignalTransport, Gauge> connections;  // up/down
  Gauge sockets;                                  // signed-in Socket.IO sockets (devices)
  Gauge users;                                    // users with at least one signed-in socket
  EnumArray<SocketResume, Counter> resumed_sockets;
  EnumArray<ConnectionClose, Counter> closed_connections;
  Gauge cluster_coordinator;  // 1 on the node that keeps a cluster's call state, else 0
  Gauge cluster_nodes;        // on the coordinator: nodes heard from, itself included
  EnumArray<CallType, EnumArray<CallStatus, Counter>> calls;
  // Seconds from initiateCall to the first reportIce with state "connected":
  // how long a call took from dialling to media (answered calls only).
  Histogram call_setup_seconds;
  // Seconds from acceptCall to that same first "connected" report: the ICE,
  // TURN and DTLS part of the setup, without the ringing.
  Histogram ice_connect_seconds;
  // rttMs of a side's first "connected" report, in seconds.
  Histogram ice_rtt_seconds;
  // [result][local candidate type][remote candidate type]
  EnumArray<IceResult, EnumArray<CandidateType, EnumArray<CandidateType, Counter>>> ice_reports;
  // Each side's first report when it is failed, by cause.
  EnumArray<IceFailureCause, Counter> ice_failures;
  CounterFamily http_requests;  // {route, code}
  // Call-history writes by outcome (any thread, on the shared shard).
  EnumArray<HistoryWriteResult, Counter> history_writes;
  // Call-history writes waiting for the database now (set by the loop).
  EnumArray<HistoryWaitPlace, Gauge> history_waiting;
  // One database call, measured where it runs (on a work-queue thread use
  // the registry's shared shard).
  Histogram db_query_seconds;
};

}  // namespace turnkey::metrics
