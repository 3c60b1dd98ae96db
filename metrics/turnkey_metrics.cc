#include "metrics/turnkey_metrics.h"

#include <charconv>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace turnkey::metrics {
namespace {

template <size_t N>
LabelSpec Label(std::string name, const std::array<std::string_view, N>& values) {
  return LabelSpec{.name = std::move(name), .values = {values.begin(), values.end()}};
}

template <size_t N>
std::vector<double> Buckets(const std::array<double, N>& bounds) {
  return {bounds.begin(), bounds.end()};
}

std::vector<std::string> TurnCodeValues() {
  std::vector<std::string> values;
  for (uint16_t code : kTurnCodes) {
    values.push_back(std::to_string(code));
  }
  return values;
}

// Resolves family.Get() for every value of one enum label into `out`.
template <typename Family, typename E, typename T, size_t N>
void ResolveAll(const Family& family, const std::array<std::string_view, N>& values,
                EnumArray<E, T>& out) {
  static_assert(N == EnumArray<E, T>::kSize);
  for (size_t i = 0; i < N; ++i) {
    out[static_cast<E>(i)] = family.Get({values[i]});
  }
}

}  // namespace

CandidateType ParseCandidateType(std::string_view text) {
  for (size_t i = 0; i < kCandidateTypeValues.size(); ++i) {
    if (text == kCandidateTypeValues[i] &&
        static_cast<CandidateType>(i) != CandidateType::kUnknown) {
      return static_cast<CandidateType>(i);
    }
  }
  return CandidateType::kUnknown;
}

base::Result<ProcessMetrics> ProcessMetrics::Create(Registry& registry, std::string_view version) {
  ProcessMetrics m;
  auto build_info = registry.AddGauge({
      .name = std::string(kBuildInfo),
      .help = "Always 1; the version label says which turnkey build is running.",
      .labels = {{.name = "version"}},
      .max_series = 1,
  });
  if (!build_info) {
    return std::unexpected(std::move(build_info.error()));
  }
  m.build_info = build_info->Get({version});
  m.build_info.Set(1);

  auto expiry = registry.AddGauge({
      .name = std::string(kTlsCertificateExpiry),
      .help = "Unix time at which the loaded TLS certificate expires.",
  });
  if (!expiry) {
    return std::unexpected(std::move(expiry.error()));
  }
  m.tls_certificate_expiry = expiry->Get();

  auto reload_successful = registry.AddGauge({
      .name = std::string(kConfigLastReloadSuccessful),
      .help = "Whether the last config load (start or SIGHUP reload) was applied (1) or refused "
              "(0).",
  });
  if (!reload_successful) {
    return std::unexpected(std::move(reload_successful.error()));
  }
  m.config_last_reload_successful = reload_successful->Get();

  auto reload_success_time = registry.AddGauge({
      .name = std::string(kConfigLastReloadSuccessTime),
      .help = "Unix time of the last config load that was applied (start or SIGHUP reload).",
  });
  if (!reload_success_time) {
    return std::unexpected(std::move(reload_success_time.error()));
  }
  m.config_last_reload_success_time = reload_success_time->Get();

  auto draining = registry.AddGauge({
      .name = std::string(kDraining),
      .help = "1 while the process drains (SIGUSR1, or stopping): new TURN allocations and calls "
              "are refused, existing ones go on.",
  });
  if (!draining) {
    return std::unexpected(std::move(draining.error()));
  }
  m.draining = draining->Get();

  auto open_fds = registry.AddGauge({
      .name = std::string(kProcessOpenFds),
      .help = "File descriptors the process holds open.",
  });
  if (!open_fds) {
    return std::unexpected(std::move(open_fds.error()));
  }
  m.open_fds = open_fds->Get();

  auto max_fds = registry.AddGauge({
      .name = std::string(kProcessMaxFds),
      .help = "Most file descriptors the process may open (soft RLIMIT_NOFILE).",
  });
  if (!max_fds) {
    return std::unexpected(std::move(max_fds.error()));
  }
  m.max_fds = max_fds->Get();

  auto resident_memory_bytes = registry.AddGauge({
      .name = std::string(kProcessResidentMemory),
      .help = "Resident memory of the process, in bytes.",
  });
  if (!resident_memory_bytes) {
    return std::unexpected(std::move(resident_memory_bytes.error()));
  }
  m.resident_memory_bytes = resident_memory_bytes->Get();

  auto start_time_seconds = registry.AddGauge({
      .name = std::string(kProcessStartTime),
      .help = "Unix time the process started.",
  });
  if (!start_time_seconds) {
    return std::unexpected(std::move(start_time_seconds.error()));
  }
  m.start_time_seconds = start_time_seconds->Get();
  return m;
}

base::Result<TurnMetrics> TurnMetrics::Create(Registry& registry) {
  TurnMetrics m;

  auto allocations_active = registry.AddGauge({
      .name = std::string(kTurnAllocationsActive),
      .help = "TURN allocations that exist now.",
  });
  if (!allocations_active) {
    return std::unexpected(std::move(allocations_active.error()));
  }
  m.allocations_active = allocations_active->Get();

  auto allocations = registry.AddCounter({
      .name = std::string(kTurnAllocationsTotal),
      .help = "Authenticated TURN Allocate requests by client transport and result.",
      .labels = {Label("transport", kTransportValues), Label("result", kAllocationResultValues)},
  });
  if (!allocations) {
    return std::unexpected(std::move(allocations.error()));
  }
  for (size_t t = 0; t < kTransportValues.size(); ++t) {
    for (size_t r = 0; r < kAllocationResultValues.size(); ++r) {
      m.allocations[static_cast<Transport>(t)][static_cast<AllocationResult>(r)] =
          allocations->Get({kTransportValues[t], kAllocationResultValues[r]});
    }
  }

  std::vector<std::string> code_values = TurnCodeValues();
  auto requests = registry.AddCounter({
      .name = std::string(kTurnRequestsTotal),
      .help = "STUN/TURN requests answered, by method and response code (200 = success).",
      .labels = {Label("method", kTurnMethodValues), {.name = "code", .values = code_values}},
      .max_series = kTurnMethodValues.size() * (kTurnCodes.size() + 1),
      .skip_zero = true,
  });
  if (!requests) {
    return std::unexpected(std::move(requests.error()));
  }
  for (size_t method = 0; method < kTurnMethodValues.size(); ++method) {
    for (size_t code = 0; code <= kTurnCodes.size(); ++code) {
      const std::string_view code_value =
          code < kTurnCodes.size() ? std::string_view(code_values[code]) : kOtherLabelValue;
      m.requests[static_cast<TurnMethod>(method)][code] =
          requests->Get({kTurnMethodValues[method], code_value});
    }
  }

  auto auth_failures = registry.AddCounter({
      .name = std::string(kTurnAuthFailuresTotal),
      .help = "TURN requests with credentials that were refused, by reason.",
      .labels = {Label("reason", kAuthFailureValues)},
  });
  if (!auth_failures) {
    return std::unexpected(std::move(auth_failures.error()));
  }
  ResolveAll(*auth_failures, kAuthFailureValues, m.auth_failures);

  auto relayed_bytes = registry.AddCounter({
      .name = std::string(kTurnRelayedBytesTotal),
      .help = "Application data bytes relayed, by direction.",
      .labels = {Label("direction", kDirectionValues)},
  });
  if (!relayed_bytes) {
    return std::unexpected(std::move(relayed_bytes.error()));
  }
  ResolveAll(*relayed_bytes, kDirectionValues, m.relayed_bytes);

  auto relayed_packets = registry.AddCounter({
      .name = std::string(kTurnRelayedPacketsTotal),
      .help = "Packets relayed, by direction.",
      .labels = {Label("direction", kDirectionValues)},
  });
  if (!relayed_packets) {
    return std::unexpected(std::move(relayed_packets.error()));
  }
  ResolveAll(*relayed_packets, kDirectionValues, m.relayed_packets);

  auto peer_denied = registry.AddCounter({
      .name = std::string(kTurnPeerDeniedTotal),
      .help = "Requests refused because the peer address is denied by policy.",
  });
  if (!peer_denied) {
    return std::unexpected(std::move(peer_denied.error()));
  }
  m.peer_denied = peer_denied->Get();

  auto ports_free = registry.AddGauge({
      .name = std::string(kTurnRelayPortsFree),
      .help = "Relay ports free to allocate.",
  });
  if (!ports_free) {
    return std::unexpected(std::move(ports_free.error()));
  }
  m.relay_ports_free = ports_free->Get();

  auto permissions = registry.AddGauge({
      .name = std::string(kTurnPermissionsActive),
      .help = "TURN permissions that exist now.",
  });
  if (!permissions) {
    return std::unexpected(std::move(permissions.error()));
  }
  m.permissions_active = permissions->Get();

  auto channels = registry.AddGauge({
      .name = std::string(kTurnChannelsActive),
      .help = "TURN channel bindings that exist now.",
  });
  if (!channels) {
    return std::unexpected(std::move(channels.error()));
  }
  m.channels_active = channels->Get();

  auto dropped = registry.AddCounter({
      .name = std::string(kTurnDroppedPacketsTotal),
      .help = "Packets the relay dropped without an answer, by reason.",
      .labels = {Label("reason", kDropReasonValues)},
  });
  if (!dropped) {
    return std::unexpected(std::move(dropped.error()));
  }
  ResolveAll(*dropped, kDropReasonValues, m.dropped_packets);

  auto icmp = registry.AddCounter({
      .name = std::string(kTurnPeerIcmpTotal),
      .help = "ICMP errors about relayed datagrams passed on to the client (RFC 8656 "
              "section 11.5), by what they said of the peer.",
      .labels = {Label("kind", kIcmpKindValues)},
  });
  if (!icmp) {
    return std::unexpected(std::move(icmp.error()));
  }
  ResolveAll(*icmp, kIcmpKindValues, m.peer_icmp);
  return m;
}

base::Result<SignalMetrics> SignalMetrics::Create(Registry& registry) {
  SignalMetrics m;

  auto connections = registry.AddGauge({
      .name = std::string(kSignalConnections),
      .help = "Signaling connections open now, by Engine.IO transport.",
      .labels = {Label("transport", kSignalTransportValues)},
  });
  if (!connections) {
    return std::unexpected(std::move(connections.error()));
  }
  ResolveAll(*connections, kSignalTransportValues, m.connections);

  auto sockets = registry.AddGauge({
      .name = std::string(kSignalSockets),
      .help = "Socket.IO sockets signed in now (one per device of a user).",
  });
  if (!sockets) {
    return std::unexpected(std::move(sockets.error()));
  }
  m.sockets = sockets->Get();

  auto users = registry.AddGauge({
      .name = std::string(kSignalUsers),
      .help = "Users with at least one signed-in Socket.IO socket now.",
  });
  if (!users) {
    return std::unexpected(std::move(users.error()));
  }
  m.users = users->Get();

  auto resumed = registry.AddCounter({
      .name = std::string(kSignalResumedSocketsTotal),
      .help = "Socket.IO sockets resumed by connection-state recovery, by whether their old "
              "connection had been seen to fail (lost) or was replaced while it seemed alive.",
      .labels = {Label("how", kSocketResumeValues)},
  });
  if (!resumed) {
    return std::unexpected(std::move(resumed.error()));
  }
  ResolveAll(*resumed, kSocketResumeValues, m.resumed_sockets);

  auto closed = registry.AddCounter({
      .name = std::string(kSignalClosedConnectionsTotal),
      .help = "Signaling (Engine.IO) connections ended, by reason: forced_close (turnkey closed "
              "it), server_shutdown, transport_close (the client left), transport_error, "
              "ping_timeout, parse_error.",
      .labels = {Label("reason", kConnectionCloseValues)},
  });
  if (!closed) {
    return std::unexpected(std::move(closed.error()));
  }
  ResolveAll(*closed, kConnectionCloseValues, m.closed_connections);

  auto coordinator = registry.AddGauge({
      .name = std::string(kClusterCoordinator),
      .help = "1 on the cluster node that keeps the call state of every node (the "
              "coordinator), else 0 (also when not in a cluster).",
  });
  if (!coordinator) {
    return std::unexpected(std::move(coordinator.error()));
  }
  m.cluster_coordinator = coordinator->Get();

  auto nodes = registry.AddGauge({
      .name = std::string(kClusterNodes),
      .help = "On the cluster's coordinator: the nodes heard from within cluster.node_timeout, "
              "itself included; 0 on the other nodes and when not in a cluster.",
  });
  if (!nodes) {
    return std::unexpected(std::move(nodes.error()));
  }
  m.cluster_nodes = nodes->Get();

  auto calls = registry.AddCounter({
      .name = std::string(kCallsTotal),
      .help = "Calls that ended, by type and final status.",
      .labels = {Label("type", kCallTypeValues), Label("status", kCallStatusValues)},
  });
  if (!calls) {
    return std::unexpected(std::move(calls.error()));
  }
  for (size_t t = 0; t < kCallTypeValues.size(); ++t) {
    for (size_t s = 0; s < kCallStatusValues.size(); ++s) {
      m.calls[static_cast<CallType>(t)][static_cast<CallStatus>(s)] =
          calls->Get({kCallTypeValues[t], kCallStatusValues[s]});
    }
  }

  auto setup = registry.AddHistogram({
      .name = std::string(kCallSetupSeconds),
      .help = "Seconds from initiateCall to the first reportIce with state connected.",
      .buckets = Buckets(kCallSetupBuckets),
  });
  if (!setup) {
    return std::unexpected(std::move(setup.error()));
  }
  m.call_setup_seconds = setup->Get();

  auto connect = registry.AddHistogram({
      .name = std::string(kIceConnectSeconds),
      .help = "Seconds from acceptCall to the first reportIce with state connected.",
      .buckets = Buckets(kIceConnectBuckets),
  });
  if (!connect) {
    return std::unexpected(std::move(connect.error()));
  }
  m.ice_connect_seconds = connect->Get();

  auto rtt = registry.AddHistogram({
      .name = std::string(kIceRttSeconds),
      .help = "Round-trip time of the selected candidate pair, from each side's first reportIce "
              "when it is connected and carries rttMs.",
      .buckets = Buckets(kIceRttBuckets),
  });
  if (!rtt) {
    return std::unexpected(std::move(rtt.error()));
  }
  m.ice_rtt_seconds = rtt->Get();

  auto ice = registry.AddCounter({
      .name = std::string(kIceReportsTotal),
      .help = "ICE outcomes reported by clients, by result and selected candidate types.",
      .labels = {Label("result", kIceResultValues), Label("local_type", kCandidateTypeValues),
                 Label("remote_type", kCandidateTypeValues)},
  });
  if (!ice) {
    return std::unexpected(std::move(ice.error()));
  }
  for (size_t r = 0; r < kIceResultValues.size(); ++r) {
    for (size_t l = 0; l < kCandidateTypeValues.size(); ++l) {
      for (size_t p = 0; p < kCandidateTypeValues.size(); ++p) {
        m.ice_reports[static_cast<IceResult>(r)][static_cast<CandidateType>(l)]
                     [static_cast<CandidateType>(p)] =
            ice->Get({kIceResultValues[r], kCandidateTypeValues[l], kCandidateTypeValues[p]});
      }
    }
  }

  auto failures = registry.AddCounter({
      .name = std::string(kIceFailuresTotal),
      .help = "Failed ICE reports (a side's first report of a call), by what the client gathered: "
              "turn_auth (no relay candidate, a TURN server answered 401), turn_refused (it "
              "refused the allocation), turn_unreachable (TURN offered, out of reach), no_relay "
              "(no turn: URI given), checks_failed (relay candidates, no working pair), unknown.",
      .labels = {Label("cause", kIceFailureCauseValues)},
  });
  if (!failures) {
    return std::unexpected(std::move(failures.error()));
  }
  ResolveAll(*failures, kIceFailureCauseValues, m.ice_failures);

  auto history = registry.AddCounter({
      .name = std::string(kCallHistoryWritesTotal),
      .help = "Call history writes, by outcome: applied, refused by the database, or lost.",
      .labels = {Label("result", kHistoryWriteResultValues)},
  });
  if (!history) {
    return std::unexpected(std::move(history.error()));
  }
  ResolveAll(*history, kHistoryWriteResultValues, m.history_writes);

  auto waiting = registry.AddGauge({
      .name = std::string(kCallHistoryWritesWaiting),
      .help = "Call history writes not yet in the database: in memory, or in the state "
              "directory's unwritten-calls.jsonl (the database is away or slow).",
      .labels = {Label("where", kHistoryWaitPlaceValues)},
  });
  if (!waiting) {
    return std::unexpected(std::move(waiting.error()));
  }
  ResolveAll(*waiting, kHistoryWaitPlaceValues, m.history_waiting);

  auto http = registry.AddCounter({
      .name = std::string(kHttpRequestsTotal),
      .help = "HTTP requests answered, by route and status code.",
      .labels = {{.name = "route"}, Label("code", kHttpCodeValues)},
      .max_series = 256,
  });
  if (!http) {
    return std::unexpected(std::move(http.error()));
  }
  m.http_requests = *http;

  auto db = registry.AddHistogram({
      .name = std::string(kDbQuerySeconds),
      .help = "Seconds one database call took.",
      .buckets = Buckets(kDbQueryBuckets),
  });
  if (!db) {
    return std::unexpected(std::move(db.error()));
  }
  m.db_query_seconds = db->Get();
  return m;
}

Counter SignalMetrics::HttpRequest(std::string_view route, int code) const {
  char buffer[16];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), code);
  const std::string_view code_text(buffer, error == std::errc() ? end - buffer : 0);
  return http_requests.Get({route, code_text});
}

}  // namespace turnkey::metrics
