#include "metrics/turnkey_metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace turnkey::metrics {
namespace {

static_assert(TurnCodeIndex(200) == 0);
static_assert(TurnCodeIndex(508) == kTurnCodes.size() - 1);
static_assert(TurnCodeIndex(999) == kTurnCodeOther);

std::vector<std::string> LinesStartingWith(const std::string& text, std::string_view prefix) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) {
      lines.push_back(line);
    }
  }
  return lines;
}

// The lines of LinesStartingWith whose value is not 0.
std::vector<std::string> NonZeroLinesStartingWith(const std::string& text,
                                                  std::string_view prefix) {
  std::vector<std::string> lines = LinesStartingWith(text, prefix);
  std::erase_if(lines, [](const std::string& line) { return line.ends_with(" 0"); });
  return lines;
}

class TurnkeyMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto process = ProcessMetrics::Create(registry_, "1.2.3");
    auto turn = TurnMetrics::Create(registry_);
    auto signal = SignalMetrics::Create(registry_);
    ASSERT_TRUE(process.has_value()) << process.error().message;
    ASSERT_TRUE(turn.has_value()) << turn.error().message;
    ASSERT_TRUE(signal.has_value()) << signal.error().message;
    process_ = *process;
    turn_ = *turn;
    signal_ = *signal;
  }

  Registry registry_;
  Shard& shard_ = registry_.AcquireShard();
  ProcessMetrics process_;
  TurnMetrics turn_;
  SignalMetrics signal_;
};

TEST_F(TurnkeyMetricsTest, ExportsEveryCatalogueMetric) {
  EXPECT_EQ(LinesStartingWith(registry_.Render(), "# TYPE "),
            (std::vector<std::string>{
                "# TYPE turnkey_build_info gauge",
                "# TYPE turnkey_call_history_writes_total counter",
                "# TYPE turnkey_call_history_writes_waiting gauge",
                "# TYPE turnkey_call_setup_seconds histogram",
                "# TYPE turnkey_calls_total counter",
                "# TYPE turnkey_cluster_coordinator gauge",
                "# TYPE turnkey_cluster_nodes gauge",
                "# TYPE turnkey_config_last_reload_success_timestamp_seconds gauge",
                "# TYPE turnkey_config_last_reload_successful gauge",
                "# TYPE turnkey_db_query_seconds histogram",
                "# TYPE turnkey_draining gauge",
                "# TYPE turnkey_http_requests_total counter",
                "# TYPE turnkey_ice_connect_seconds histogram",
                "# TYPE turnkey_ice_failures_total counter",
                "# TYPE turnkey_ice_reports_total counter",
                "# TYPE turnkey_ice_rtt_seconds histogram",
                "# TYPE turnkey_process_max_fds gauge",
                "# TYPE turnkey_process_open_fds gauge",
                "# TYPE turnkey_process_resident_memory_bytes gauge",
                "# TYPE turnkey_process_start_time_seconds gauge",
                "# TYPE turnkey_signal_closed_connections_total counter",
                "# TYPE turnkey_signal_connections gauge",
                "# TYPE turnkey_signal_resumed_sockets_total counter",
                "# TYPE turnkey_signal_sockets gauge",
                "# TYPE turnkey_signal_users gauge",
                "# TYPE turnkey_tls_certificate_expiry_timestamp_seconds gauge",
                "# TYPE turnkey_turn_allocations_active gauge",
                "# TYPE turnkey_turn_allocations_total counter",
                "# TYPE turnkey_turn_auth_failures_total counter",
                "# TYPE turnkey_turn_channels_active gauge",
                "# TYPE turnkey_turn_dropped_packets_total counter",
                "# TYPE turnkey_turn_peer_denied_total counter",
                "# TYPE turnkey_turn_peer_icmp_total counter",
                "# TYPE turnkey_turn_permissions_active gauge",
                "# TYPE turnkey_turn_relay_ports_free gauge",
                "# TYPE turnkey_turn_relayed_bytes_total counter",
                "# TYPE turnkey_turn_relayed_packets_total counter",
                "# TYPE turnkey_turn_requests_total counter",
            }));
}

TEST_F(TurnkeyMetricsTest, FreshRegistryWritesOnlyMeaningfulZeros) {
  // TURN requests (method x code, 152 series) write nothing until counted.
  // Every other family starts at 0, so rate() sees its first event and an
  // alert's ratio has both sides from the start.
  const std::string text = registry_.Render();
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_requests_total"), std::vector<std::string>{});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_ice_reports_total").size(), 2u * 5u * 5u);
  EXPECT_EQ(LinesStartingWith(text, "turnkey_calls_total").size(), 2u * kCallStatusValues.size());
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_allocations_total").size(),
            kTransportValues.size() * kAllocationResultValues.size());
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_auth_failures_total"),
            (std::vector<std::string>{
                "turnkey_turn_auth_failures_total{reason=\"bad_integrity\"} 0",
                "turnkey_turn_auth_failures_total{reason=\"expired\"} 0",
                "turnkey_turn_auth_failures_total{reason=\"malformed\"} 0",
                "turnkey_turn_auth_failures_total{reason=\"unknown_user\"} 0",
            }));
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_dropped_packets_total").size(),
            kDropReasonValues.size());
  EXPECT_EQ(NonZeroLinesStartingWith(text, "turnkey_"),
            std::vector<std::string>{"turnkey_build_info{version=\"1.2.3\"} 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_relayed_packets_total"),
            (std::vector<std::string>{
                "turnkey_turn_relayed_packets_total{direction=\"client_to_peer\"} 0",
                "turnkey_turn_relayed_packets_total{direction=\"peer_to_client\"} 0",
            }));
  EXPECT_EQ(LinesStartingWith(text, "turnkey_build_info"),
            std::vector<std::string>{"turnkey_build_info{version=\"1.2.3\"} 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_signal_connections"),
            (std::vector<std::string>{
                "turnkey_signal_connections{transport=\"polling\"} 0",
                "turnkey_signal_connections{transport=\"websocket\"} 0",
            }));
  // Zero lost writes is worth seeing (an alert compares against it).
  EXPECT_EQ(LinesStartingWith(text, "turnkey_call_history_writes_total"),
            (std::vector<std::string>{
                "turnkey_call_history_writes_total{result=\"applied\"} 0",
                "turnkey_call_history_writes_total{result=\"lost\"} 0",
                "turnkey_call_history_writes_total{result=\"refused\"} 0",
            }));
}

TEST_F(TurnkeyMetricsTest, TurnHandles) {
  turn_.Request(TurnMethod::kAllocate, 437).Inc(shard_);
  turn_.Request(TurnMethod::kAllocate, 200).Add(shard_, 2);
  turn_.Request(TurnMethod::kBinding, 699).Inc(shard_);
  turn_.allocations[Transport::kTls][AllocationResult::kQuotaReached].Inc(shard_);
  turn_.allocations_active.Inc(shard_);
  turn_.allocations_active.Inc(shard_);
  turn_.allocations_active.Dec(shard_);
  turn_.relayed_packets[Direction::kPeerToClient].Add(shard_, 32);
  turn_.relayed_bytes[Direction::kPeerToClient].Add(shard_, 32 * 1200);
  turn_.auth_failures[AuthFailure::kExpired].Inc(shard_);
  turn_.dropped_packets[DropReason::kNoPermission].Inc(shard_);
  turn_.peer_denied.Inc(shard_);
  turn_.relay_ports_free.Add(shard_, 16384);
  turn_.relay_ports_free.Dec(shard_);

  const std::string text = registry_.Render();
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_requests_total"),
            (std::vector<std::string>{
                "turnkey_turn_requests_total{method=\"allocate\",code=\"200\"} 2",
                "turnkey_turn_requests_total{method=\"allocate\",code=\"437\"} 1",
                "turnkey_turn_requests_total{method=\"binding\",code=\"other\"} 1",
            }));
  EXPECT_EQ(NonZeroLinesStartingWith(text, "turnkey_turn_allocations_"),
            (std::vector<std::string>{
                "turnkey_turn_allocations_active 1",
                "turnkey_turn_allocations_total{transport=\"tls\",result=\"quota_reached\"} 1",
            }));
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_relayed_"),
            (std::vector<std::string>{
                "turnkey_turn_relayed_bytes_total{direction=\"client_to_peer\"} 0",
                "turnkey_turn_relayed_bytes_total{direction=\"peer_to_client\"} 38400",
                "turnkey_turn_relayed_packets_total{direction=\"client_to_peer\"} 0",
                "turnkey_turn_relayed_packets_total{direction=\"peer_to_client\"} 32",
            }));
  EXPECT_EQ(NonZeroLinesStartingWith(text, "turnkey_turn_auth_failures_total"),
            std::vector<std::string>{"turnkey_turn_auth_failures_total{reason=\"expired\"} 1"});
  EXPECT_EQ(
      NonZeroLinesStartingWith(text, "turnkey_turn_dropped_packets_total"),
      std::vector<std::string>{"turnkey_turn_dropped_packets_total{reason=\"no_permission\"} 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_peer_denied_total"),
            std::vector<std::string>{"turnkey_turn_peer_denied_total 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_turn_relay_ports_free"),
            std::vector<std::string>{"turnkey_turn_relay_ports_free 16383"});
}

TEST_F(TurnkeyMetricsTest, SignalHandles) {
  signal_.connections[SignalTransport::kWebSocket].Inc(shard_);
  signal_.calls[CallType::kVideo][CallStatus::kMissed].Inc(shard_);
  signal_
      .ice_reports[IceResult::kConnected][ParseCandidateType("relay")][ParseCandidateType("bogus")]
      .Inc(shard_);
  signal_.HttpRequest("/api/auth/login", 200).Inc(shard_);
  signal_.HttpRequest("/api/auth/login", 299).Inc(shard_);
  signal_.call_setup_seconds.Observe(shard_, 0.75);
  signal_.db_query_seconds.Observe(registry_.shared_shard(), 0.002);
  process_.tls_certificate_expiry.Set(1767225600);

  const std::string text = registry_.Render();
  EXPECT_EQ(LinesStartingWith(text, "turnkey_signal_connections"),
            (std::vector<std::string>{
                "turnkey_signal_connections{transport=\"polling\"} 0",
                "turnkey_signal_connections{transport=\"websocket\"} 1",
            }));
  EXPECT_EQ(NonZeroLinesStartingWith(text, "turnkey_calls_total"),
            std::vector<std::string>{"turnkey_calls_total{type=\"video\",status=\"missed\"} 1"});
  EXPECT_EQ(NonZeroLinesStartingWith(text, "turnkey_ice_reports_total"),
            std::vector<std::string>{
                "turnkey_ice_reports_total{result=\"connected\",local_type=\"relay\","
                "remote_type=\"unknown\"} 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_http_requests_total"),
            (std::vector<std::string>{
                "turnkey_http_requests_total{route=\"/api/auth/login\",code=\"200\"} 1",
                "turnkey_http_requests_total{route=\"/api/auth/login\",code=\"other\"} 1",
            }));
  EXPECT_EQ(LinesStartingWith(text, "turnkey_call_setup_seconds_count"),
            std::vector<std::string>{"turnkey_call_setup_seconds_count 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_call_setup_seconds_bucket{le=\"1\"}"),
            std::vector<std::string>{"turnkey_call_setup_seconds_bucket{le=\"1\"} 1"});
  EXPECT_EQ(LinesStartingWith(text, "turnkey_db_query_seconds_bucket{le=\"0.0025\"}"),
            std::vector<std::string>{"turnkey_db_query_seconds_bucket{le=\"0.0025\"} 1"});
  EXPECT_EQ(
      LinesStartingWith(text, "turnkey_tls_certificate_expiry_timestamp_seconds "),
      std::vector<std::string>{"turnkey_tls_certificate_expiry_timestamp_seconds 1767225600"});
}

TEST_F(TurnkeyMetricsTest, SecondCatalogueOnSameRegistryIsRefused) {
  EXPECT_FALSE(TurnMetrics::Create(registry_).has_value());
  EXPECT_FALSE(SignalMetrics::Create(registry_).has_value());
}

TEST(TurnkeyMetricsDetachedTest, DefaultStructsCountNothing) {
  Registry registry;
  Shard& shard = registry.AcquireShard();
  TurnMetrics turn;
  turn.Request(TurnMethod::kRefresh, 200).Inc(shard);
  turn.relayed_packets[Direction::kClientToPeer].Add(shard, 10);
  SignalMetrics signal;
  signal.HttpRequest("/x", 200).Inc(shard);
  EXPECT_EQ(turn.relayed_packets[Direction::kClientToPeer].Value(), 0u);
  EXPECT_EQ(registry.Render(), "");
}

TEST(CandidateTypeTest, Parses) {
  EXPECT_EQ(ParseCandidateType("host"), CandidateType::kHost);
  EXPECT_EQ(ParseCandidateType("srflx"), CandidateType::kSrflx);
  EXPECT_EQ(ParseCandidateType("prflx"), CandidateType::kPrflx);
  EXPECT_EQ(ParseCandidateType("relay"), CandidateType::kRelay);
  EXPECT_EQ(ParseCandidateType("unknown"), CandidateType::kUnknown);
  EXPECT_EQ(ParseCandidateType("Relay"), CandidateType::kUnknown);
  EXPECT_EQ(ParseCandidateType(""), CandidateType::kUnknown);
}

}  // namespace
}  // namespace turnkey::metrics
