// TrafficWorker: one load generator thread's data path.
//
// It owns a set of flows (a connected UDP socket each: a TURN allocation's
// 5-tuple, or a socket to the raw forwarder or straight to the echo peer; or
// a TURN allocation's TCP/TLS connection), sends timestamped probe packets on
// them in sendmmsg batches (on a stream: a burst of padded ChannelData frames
// in one write, RFC 8656 s12.5), and reads the echoes back with recvmmsg (or
// one read per wakeup on a stream), recording round-trip times.
//
// Probe payload (`payload_bytes`, at least kProbeHeader): magic "TKB1", flow
// id (u32), sequence number (u64), send time in CLOCK_MONOTONIC ns (u64),
// then zero filler; all big-endian. With ChannelData framing each packet is
// prefixed by the 4-byte ChannelData header (RFC 8656 s12.4), which the
// forwarder also expects, so TURN and forwarder runs send identical bytes.
//
// Pacing: with `rate` > 0 the worker sends `rate` packets/s spread evenly
// (in bursts of whatever fell due since the last wakeup); with `rate` == 0 it
// saturates: sends whenever fewer than `window` packets are in flight (a
// closed loop that keeps the slowest stage busy without flooding kernel
// queues); window 0 = open loop, as fast as sendmmsg goes. In-flight packets
// unanswered for `stall_ns` are written off as lost.
//
// Accounting uses the send timestamp: a packet counts as "measured" when it
// was sent inside [measure_start, measure_end); its echo counts whenever it
// arrives before the drain ends. Throughput counts echoes that arrive inside
// the measured window. Run() on its own thread; read stats() after it returns.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/udp_batch.h"
#include "bench/udp_util.h"

namespace turnkey::bench {

class StreamClient;
class TurnSession;

inline constexpr size_t kProbeHeader = 24;

struct Flow {
  int fd = -1;                     // connected UDP socket, owned elsewhere
  uint32_t id = 0;                 // written into every probe, checked on return
  uint16_t channel = 0;            // ChannelData channel number (ChannelData framing)
  TurnSession* session = nullptr;  // gets STUN responses and timers; may be null
  uint64_t next_seq = 0;
  StreamClient* stream = nullptr;  // TCP/TLS flow (owned by the session); null for UDP
};

struct TrafficOptions {
  bool channel_data = true;  // 4-byte ChannelData header on every packet
  size_t payload_bytes = 100;
  size_t batch = 32;          // datagrams per sendmmsg / recvmmsg
  double rate = 0;            // this thread's packets/s; 0 = saturate
  size_t window = 256;        // saturation: packets in flight; 0 = open loop
  int64_t tick_ns = 100'000;  // fixed rate: shortest sleep between bursts
  int64_t stall_ns = 50'000'000;
  int64_t start_ns = 0;          // sending starts
  int64_t measure_start_ns = 0;  // measured window (after the warmup)
  int64_t measure_end_ns = 0;    // sending stops
  int64_t drain_end_ns = 0;      // receiving stops (or earlier when nothing is in flight)
};

struct TrafficStats {
  uint64_t sent = 0;                // all probes handed to the kernel
  uint64_t received = 0;            // all valid echoes
  uint64_t sent_measured = 0;       // probes sent inside the measured window
  uint64_t received_measured = 0;   // echoes of those
  uint64_t received_in_window = 0;  // echoes that arrived inside the measured window
  uint64_t invalid = 0;             // datagrams that were not our probes
  uint64_t send_shortfall = 0;      // probes sendmmsg did not take (EAGAIN/ENOBUFS)
  uint64_t written_off = 0;         // in-flight probes given up on after a stall
  uint64_t stream_errors = 0;       // TCP/TLS flows that failed or were closed
  LatencyHistogram rtt;             // of the measured echoes

  void Merge(const TrafficStats& other);
};

class TrafficWorker {
 public:
  // `flows` are used only from Run()'s thread until it returns.
  TrafficWorker(std::vector<Flow> flows, const TrafficOptions& options);

  // Sends and receives until the drain ends or `stop` is set.
  void Run(const std::atomic<bool>& stop);
  const TrafficStats& stats() const { return stats_; }
  // A message if Run() could not start (epoll failed); empty otherwise.
  const std::string& error() const { return error_; }

 private:
  // Sends up to `count` probes on the next flow (round robin).
  void SendBurst(size_t count, int64_t now_ns);
  // Reads what is queued on `flow` (a few batches at most).
  void ReceiveFrom(Flow& flow, int64_t now_ns);
  void ReceiveFromStream(Flow& flow, int64_t now_ns);
  void OnDatagram(Flow& flow, const uint8_t* data, size_t size, int64_t now_ns);
  uint64_t in_flight() const {
    const uint64_t done = stats_.received + stats_.written_off;
    return stats_.sent > done ? stats_.sent - done : 0;
  }

  std::vector<Flow> flows_;
  TrafficOptions options_;
  UdpBatch send_batch_;
  UdpBatch receive_batch_;
  std::vector<uint8_t> stream_burst_;  // a burst of ChannelData frames for one stream write
  size_t next_flow_ = 0;
  TrafficStats stats_;
  std::string error_;
};

}  // namespace turnkey::bench
