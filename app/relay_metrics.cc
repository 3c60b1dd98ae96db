#include "app/relay_metrics.h"

namespace turnkey::app {

namespace {

using relay::TurnCounters;

metrics::TurnMethod ToMetricsMethod(relay::MethodLabel m) {
  switch (m) {
    case relay::MethodLabel::kBinding:
      return metrics::TurnMethod::kBinding;
    case relay::MethodLabel::kAllocate:
      return metrics::TurnMethod::kAllocate;
    case relay::MethodLabel::kRefresh:
      return metrics::TurnMethod::kRefresh;
    case relay::MethodLabel::kCreatePermission:
      return metrics::TurnMethod::kCreatePermission;
    case relay::MethodLabel::kChannelBind:
      return metrics::TurnMethod::kChannelBind;
    default:
      return metrics::TurnMethod::kOther;
  }
}

// The 401/438 of the handshake are not failures; the rest map onto the
// exported reasons.
std::optional<metrics::AuthFailure> ToMetricsAuthFailure(relay::AuthFailure f) {
  switch (f) {
    case relay::AuthFailure::kMalformed:
      return metrics::AuthFailure::kMalformed;
    case relay::AuthFailure::kWrongRealm:
    case relay::AuthFailure::kBadIntegrity:
      return metrics::AuthFailure::kBadIntegrity;
    case relay::AuthFailure::kUnknownUser:
      return metrics::AuthFailure::kUnknownUser;
    case relay::AuthFailure::kExpired:
      return metrics::AuthFailure::kExpired;
    default:
      return std::nullopt;
  }
}

std::optional<metrics::DropReason> ToMetricsDrop(relay::DropReason r) {
  switch (r) {
    case relay::DropReason::kMalformed:
      return metrics::DropReason::kMalformed;
    case relay::DropReason::kFingerprint:
      return metrics::DropReason::kBadFingerprint;
    case relay::DropReason::kUnexpected:
      return metrics::DropReason::kUnexpected;
    case relay::DropReason::kNoAllocation:
      return metrics::DropReason::kNoAllocation;
    case relay::DropReason::kNoPermission:
      return metrics::DropReason::kNoPermission;
    case relay::DropReason::kNoChannel:
      return metrics::DropReason::kNoChannel;
    case relay::DropReason::kBandwidth:
      return metrics::DropReason::kBandwidth;
    case relay::DropReason::kSendFailed:
      return metrics::DropReason::kSendError;
    case relay::DropReason::kRateLimited:
      return metrics::DropReason::kThrottled;
    case relay::DropReason::kClientBacklog:
      return metrics::DropReason::kClientBacklog;
    default:
      return std::nullopt;  // peer_denied is exported as turnkey_turn_peer_denied_total
  }
}

metrics::AllocationResult ToAllocationResult(uint16_t code) {
  switch (code) {
    case 486:
      return metrics::AllocationResult::kQuotaReached;
    case 508:
      return metrics::AllocationResult::kInsufficientCapacity;
    case 437:
      return metrics::AllocationResult::kMismatch;
    default:
      return metrics::AllocationResult::kRejected;
  }
}

template <typename F>
uint64_t Sum(const relay::RelayService& service, F get) {
  uint64_t total = 0;
  for (size_t i = 0; i < service.worker_count(); ++i) {
    total += get(service.worker(i).counters());
  }
  return total;
}

}  // namespace

RelayMetricsBridge::RelayMetricsBridge(const relay::RelayService& service,
                                       const metrics::TurnMetrics& metrics,
                                       metrics::Registry& registry)
    : service_(service), metrics_(metrics), shard_(registry.AcquireShard()) {}

void RelayMetricsBridge::Feed(const metrics::Counter& counter, uint64_t value, uint64_t& last) {
  if (value > last) {
    counter.Add(shard_, value - last);
  }
  last = value;
}

void RelayMetricsBridge::Collect() {
  cursor_ = 0;
  auto feed = [this](const metrics::Counter& counter, uint64_t value) {
    if (cursor_ == last_.size()) {
      last_.push_back(0);
    }
    Feed(counter, value, last_[cursor_++]);
  };

  for (size_t m = 0; m < static_cast<size_t>(relay::MethodLabel::kCount); ++m) {
    for (size_t c = 0; c < relay::kCodeLabelCount; ++c) {
      const uint16_t code = c + 1 < relay::kCodeLabelCount ? relay::kCodeLabels[c] : uint16_t{999};
      feed(metrics_.Request(ToMetricsMethod(static_cast<relay::MethodLabel>(m)), code),
           Sum(service_, [&](const TurnCounters& t) { return t.requests[m][c].Get(); }));
    }
  }
  for (size_t f = 0; f < static_cast<size_t>(relay::AuthFailure::kCount); ++f) {
    if (auto reason = ToMetricsAuthFailure(static_cast<relay::AuthFailure>(f))) {
      feed(metrics_.auth_failures[*reason],
           Sum(service_, [&](const TurnCounters& t) { return t.auth_failures[f].Get(); }));
    }
  }
  const metrics::Direction directions[] = {metrics::Direction::kClientToPeer,
                                           metrics::Direction::kPeerToClient};
  for (size_t d = 0; d < 2; ++d) {
    feed(metrics_.relayed_bytes[directions[d]],
         Sum(service_, [&](const TurnCounters& t) { return t.relayed_bytes[d].Get(); }));
    feed(metrics_.relayed_packets[directions[d]],
         Sum(service_, [&](const TurnCounters& t) { return t.relayed_packets[d].Get(); }));
  }
  for (size_t r = 0; r < static_cast<size_t>(relay::DropReason::kCount); ++r) {
    if (auto reason = ToMetricsDrop(static_cast<relay::DropReason>(r))) {
      feed(metrics_.dropped_packets[*reason],
           Sum(service_, [&](const TurnCounters& t) { return t.dropped[r].Get(); }));
    }
  }
  for (size_t k = 0; k < static_cast<size_t>(metrics::IcmpKind::kCount); ++k) {
    feed(metrics_.peer_icmp[static_cast<metrics::IcmpKind>(k)],
         Sum(service_, [&](const TurnCounters& t) { return t.icmp[k].Get(); }));
  }
  feed(metrics_.peer_denied,
       Sum(service_, [](const TurnCounters& t) { return t.peer_denied.Get(); }));
  const metrics::Transport transports[] = {metrics::Transport::kUdp, metrics::Transport::kTcp,
                                           metrics::Transport::kTls, metrics::Transport::kDtls};
  static_assert(std::size(transports) == relay::kClientTransportCount);
  for (size_t tr = 0; tr < relay::kClientTransportCount; ++tr) {
    feed(metrics_.allocations[transports[tr]][metrics::AllocationResult::kSuccess],
         Sum(service_, [&](const TurnCounters& t) {
           return t.allocations[tr][static_cast<size_t>(relay::AllocationResult::kSuccess)].Get();
         }));
    for (size_t c = 0; c < relay::kCodeLabelCount; ++c) {
      const uint16_t code = c + 1 < relay::kCodeLabelCount ? relay::kCodeLabels[c] : 0;
      feed(
          metrics_.allocations[transports[tr]][ToAllocationResult(code)],
          Sum(service_, [&](const TurnCounters& t) { return t.allocation_failures[tr][c].Get(); }));
    }
  }

  metrics_.allocations_active.Set(static_cast<double>(
      Sum(service_, [](const TurnCounters& t) { return t.allocations_active.Get(); })));
  metrics_.permissions_active.Set(static_cast<double>(
      Sum(service_, [](const TurnCounters& t) { return t.permissions_active.Get(); })));
  metrics_.channels_active.Set(static_cast<double>(
      Sum(service_, [](const TurnCounters& t) { return t.channels_active.Get(); })));
  metrics_.relay_ports_free.Set(static_cast<double>(service_.free_relay_ports()));
}

}  // namespace turnkey::app
