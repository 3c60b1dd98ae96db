// TurnCounters: what one relay worker did, for metrics and tests.
//
// Every cell has a single writer (the worker thread) and may be read by any
// thread (the metrics scrape), so a cell is a relaxed atomic bumped with a
// load and a store: a plain add in the generated code, no lock, no
// read-modify-write bus lock on the per-packet path. Scrapes sum the workers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "metrics/turnkey_metrics.h"
#include "relay/five_tuple.h"
#include "relay/turn_authenticator.h"

namespace turnkey::relay {

class CounterCell {
 public:
  void Add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Request methods, the `method` label.
enum class MethodLabel : uint8_t {
  kBinding,
  kAllocate,
  kRefresh,
  kCreatePermission,
  kChannelBind,
  kOther,
  kCount,
};
const char* MethodLabelName(MethodLabel method);

// Response codes, the `code` label: success and every error this server sends.
inline constexpr uint16_t kCodeLabels[] = {200, 300, 400, 401, 403, 420, 437,
                                           438, 440, 441, 442, 443, 486, 508};
inline constexpr size_t kCodeLabelCount = sizeof(kCodeLabels) / sizeof(kCodeLabels[0]) + 1;
// Index into kCodeLabels, or the last index ("other") for anything else.
size_t CodeLabelIndex(uint16_t code);
// "200", "400", ... or "other".
const char* CodeLabelName(size_t index);

enum class Direction : uint8_t {
  kClientToPeer,  // "to_peer"
  kPeerToClient,  // "to_client"
  kCount,
};
const char* DirectionName(Direction direction);

// Why a packet was dropped without an answer.
enum class DropReason : uint8_t {
  kMalformed,      // not STUN/ChannelData, bad length, trailing bytes
  kFingerprint,    // FINGERPRINT wrong
  kUnexpected,     // responses, unknown indications
  kNoAllocation,   // Send/ChannelData on a 5-tuple without an allocation
  kNoPermission,   // peer data or Send without a permission for the peer
  kNoChannel,      // ChannelData on an unbound channel
  kPeerDenied,     // Send to a peer the policy refuses
  kBandwidth,      // over the allocation's bytes/s cap
  kSendFailed,     // the kernel refused the datagram (buffer full, unreachable)
  kRateLimited,    // a 401/438 answer suppressed by the per-source limit
  kClientBacklog,  // peer data for a TCP/TLS client whose output is too far behind
  kCount,
};
const char* DropReasonName(DropReason reason);

enum class AllocationResult : uint8_t { kSuccess, kFailure, kCount };

struct TurnCounters {
  CounterCell requests[static_cast<size_t>(MethodLabel::kCount)][kCodeLabelCount];
  CounterCell auth_failures[static_cast<size_t>(AuthFailure::kCount)];
  CounterCell relayed_bytes[static_cast<size_t>(Direction::kCount)];
  CounterCell relayed_packets[static_cast<size_t>(Direction::kCount)];
  CounterCell dropped[static_cast<size_t>(DropReason::kCount)];
  CounterCell peer_denied;  // CreatePermission/ChannelBind 403s and dropped Sends
  // ICMP errors passed on to clients (RFC 8656 section 11.5), indexed by the
  // metric's own label enum.
  CounterCell icmp[static_cast<size_t>(metrics::IcmpKind::kCount)];
  // allocations_total{transport, result}, transport indexed by ClientTransport.
  CounterCell allocations[kClientTransportCount][static_cast<size_t>(AllocationResult::kCount)];
  // Failed Allocates by transport and answer code (CodeLabelIndex).
  CounterCell allocation_failures[kClientTransportCount][kCodeLabelCount];
  CounterCell allocations_expired;
  // Current values (gauges), kept by the worker.
  CounterCell allocations_active;
  CounterCell permissions_active;
  CounterCell channels_active;
};

}  // namespace turnkey::relay
