#include "bench/traffic_worker.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "base/bytes.h"
#include "bench/stream_client.h"
#include "bench/turn_session.h"
#include "stun/channel_data.h"

namespace turnkey::bench {

namespace {

constexpr uint32_t kProbeMagic = 0x544B4231;  // "TKB1"
constexpr size_t kMaxRoundsPerWakeup = 4;
constexpr int64_t kTimerScanNs = 100'000'000;
// A stream flow with this much unsent output takes no new probes (the
// kernel's send buffer is full: a UDP socket would refuse them too).
constexpr size_t kMaxStreamBacklog = 256 * 1024;

}  // namespace

void TrafficStats::Merge(const TrafficStats& other) {
  sent += other.sent;
  received += other.received;
  sent_measured += other.sent_measured;
  received_measured += other.received_measured;
  received_in_window += other.received_in_window;
  invalid += other.invalid;
  send_shortfall += other.send_shortfall;
  written_off += other.written_off;
  stream_errors += other.stream_errors;
  rtt.Merge(other.rtt);
}

TrafficWorker::TrafficWorker(std::vector<Flow> flows, const TrafficOptions& options)
    : flows_(std::move(flows)),
      options_(options),
      send_batch_(options.batch, stun::kChannelDataHeaderSize + options.payload_bytes),
      receive_batch_(options.batch, 2048),
      stream_burst_(options.batch * stun::ChannelDataSize(options.payload_bytes,
                                                          stun::ChannelDataPadding::kRequired)) {}

void TrafficWorker::SendBurst(size_t count, int64_t now_ns) {
  Flow& flow = flows_[next_flow_];
  next_flow_ = (next_flow_ + 1) % flows_.size();
  const size_t header = options_.channel_data ? stun::kChannelDataHeaderSize : 0;
  const size_t total = header + options_.payload_bytes;
  if (flow.stream != nullptr) {
    // RFC 8656 s12.5: over a stream ChannelData is padded to 4 bytes.
    const size_t frame =
        stun::ChannelDataSize(options_.payload_bytes, stun::ChannelDataPadding::kRequired);
    size_t sent = 0;
    if (flow.stream->ok() && flow.stream->pending_output() < kMaxStreamBacklog) {
      for (size_t i = 0; i < count; ++i) {
        uint8_t* p = stream_burst_.data() + i * frame;
        stun::WriteChannelDataHeader(p, flow.channel,
                                     static_cast<uint16_t>(options_.payload_bytes));
        uint8_t* probe = p + stun::kChannelDataHeaderSize;
        base::StoreBe32(probe, kProbeMagic);
        base::StoreBe32(probe + 4, flow.id);
        base::StoreBe64(probe + 8, flow.next_seq + i);
        base::StoreBe64(probe + 16, static_cast<uint64_t>(now_ns));
        // The filler and padding after the probe header stay zero from construction.
      }
      if (flow.stream->Write(stream_burst_.data(), count * frame)) {
        sent = count;
      } else {
        ++stats_.stream_errors;
        error_ = "flow " + std::to_string(flow.id) + ": " + flow.stream->error();
      }
    }
    flow.next_seq += sent;
    stats_.sent += sent;
    stats_.send_shortfall += count - sent;
    if (now_ns >= options_.measure_start_ns && now_ns < options_.measure_end_ns) {
      stats_.sent_measured += sent;
    }
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    uint8_t* p = send_batch_.slot(i);
    if (header != 0) {
      stun::WriteChannelDataHeader(p, flow.channel, static_cast<uint16_t>(options_.payload_bytes));
    }
    uint8_t* probe = p + header;
    base::StoreBe32(probe, kProbeMagic);
    base::StoreBe32(probe + 4, flow.id);
    base::StoreBe64(probe + 8, flow.next_seq + i);
    base::StoreBe64(probe + 16, static_cast<uint64_t>(now_ns));
    send_batch_.SetSend(i, p, total, nullptr, 0);
  }
  const size_t sent = send_batch_.Send(flow.fd, 0, count);
  flow.next_seq += sent;
  stats_.sent += sent;
  stats_.send_shortfall += count - sent;
  if (now_ns >= options_.measure_start_ns && now_ns < options_.measure_end_ns) {
    stats_.sent_measured += sent;
  }
}

void TrafficWorker::OnDatagram(Flow& flow, const uint8_t* data, size_t size, int64_t now_ns) {
  if (options_.channel_data) {
    if (size >= 4 && (data[0] & 0xC0) == 0x40) {
      const size_t length = base::LoadBe16(data + 2);
      if (length > size - 4) {
        ++stats_.invalid;
        return;
      }
      data += 4;
      size = length;
    } else if ((data[0] & 0xC0) == 0 && flow.session != nullptr) {
      flow.session->OnStunMessage(now_ns, base::ByteView(data, size));
      return;
    } else {
      ++stats_.invalid;
      return;
    }
  }
  if (size < kProbeHeader || base::LoadBe32(data) != kProbeMagic ||
      base::LoadBe32(data + 4) != flow.id) {
    ++stats_.invalid;
    return;
  }
  const int64_t sent_ns = static_cast<int64_t>(base::LoadBe64(data + 16));
  ++stats_.received;
  if (now_ns >= options_.measure_start_ns && now_ns < options_.measure_end_ns) {
    ++stats_.received_in_window;
  }
  if (sent_ns >= options_.measure_start_ns && sent_ns < options_.measure_end_ns) {
    ++stats_.received_measured;
    stats_.rtt.Record(now_ns - sent_ns);
  }
}

void TrafficWorker::ReceiveFromStream(Flow& flow, int64_t now_ns) {
  struct Context {
    TrafficWorker* worker;
    Flow* flow;
    int64_t now_ns;
  } context{this, &flow, now_ns};
  // One pointer captured: fits std::function's inline storage, no allocation.
  const StreamClient::FrameCallback on_frame = [c = &context](base::ByteView frame) {
    c->worker->OnDatagram(*c->flow, frame.data(), frame.size(), c->now_ns);
  };
  if (!flow.stream->Flush() || !flow.stream->Read(on_frame)) {
    if (error_.empty()) {
      error_ = "flow " + std::to_string(flow.id) + ": " + flow.stream->error();
    }
    ++stats_.stream_errors;
  }
}

void TrafficWorker::ReceiveFrom(Flow& flow, int64_t now_ns) {
  if (flow.stream != nullptr) {
    ReceiveFromStream(flow, now_ns);
    return;
  }
  for (size_t round = 0; round < kMaxRoundsPerWakeup; ++round) {
    const int n = receive_batch_.Receive(flow.fd);
    if (n <= 0) {
      return;  // nothing queued, or an ICMP error surfacing on a connected socket
    }
    for (int i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      if (receive_batch_.truncated(k) || receive_batch_.size(k) == 0) {
        ++stats_.invalid;
        continue;
      }
      OnDatagram(flow, receive_batch_.data(k), receive_batch_.size(k), now_ns);
    }
    if (static_cast<size_t>(n) < receive_batch_.slots()) {
      return;
    }
  }
}

void TrafficWorker::Run(const std::atomic<bool>& stop) {
  if (flows_.empty()) {
    return;
  }
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) {
    error_ = "epoll_create1: " + ErrnoText(errno);
    return;
  }
  for (size_t i = 0; i < flows_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, flows_[i].fd, &ev) != 0) {
      error_ = "epoll_ctl: " + ErrnoText(errno);
      return;
    }
  }
  std::vector<epoll_event> events(flows_.size() < 64 ? flows_.size() : 64);
  const double ns_per_packet = options_.rate > 0 ? 1e9 / options_.rate : 0;
  uint64_t attempted = 0;  // for pacing: sent plus what the kernel refused
  SleepUntilNs(options_.start_ns);
  int64_t last_progress_ns = NowNs();
  uint64_t last_received = 0;
  int64_t next_scan_ns = last_progress_ns + kTimerScanNs;

  while (!stop.load(std::memory_order_relaxed) && stats_.stream_errors == 0) {
    int64_t now = NowNs();
    if (now >= options_.drain_end_ns) {
      break;
    }
    for (Flow& flow : flows_) {
      if (flow.stream != nullptr && flow.stream->pending_output() > 0 && !flow.stream->Flush()) {
        ++stats_.stream_errors;
        error_ = "flow " + std::to_string(flow.id) + ": " + flow.stream->error();
      }
    }
    if (stats_.received != last_received) {
      last_received = stats_.received;
      last_progress_ns = now;
    }
    const bool sending = now < options_.measure_end_ns;
    if (!sending && in_flight() == 0) {
      break;
    }
    int64_t wait_ns = 0;
    if (sending) {
      size_t budget = options_.batch;
      bool window_full = false;
      if (options_.rate > 0) {
        const auto due_total =
            static_cast<uint64_t>(static_cast<double>(now - options_.start_ns) / ns_per_packet);
        const uint64_t due = due_total > attempted ? due_total - attempted : 0;
        budget = static_cast<size_t>(std::min<uint64_t>(budget, due));
        if (budget == 0) {
          const auto next_due =
              options_.start_ns +
              static_cast<int64_t>(static_cast<double>(attempted + 1) * ns_per_packet);
          wait_ns = std::max(options_.tick_ns, next_due - now);
        }
      }
      if (options_.window > 0) {
        const uint64_t flying = in_flight();
        const size_t room =
            flying >= options_.window ? 0 : static_cast<size_t>(options_.window - flying);
        if (room == 0) {
          window_full = true;
          if (now - last_progress_ns >= options_.stall_ns) {
            stats_.written_off += flying;  // nothing came back for a while: call them lost
            last_progress_ns = now;
          }
          wait_ns = std::max<int64_t>(wait_ns, 1'000'000);
        }
        budget = std::min(budget, room);
      }
      if (budget > 0) {
        const uint64_t before = stats_.sent;
        SendBurst(budget, now);
        attempted += budget;
        if (stats_.sent == before && !window_full) {
          wait_ns = std::max<int64_t>(wait_ns, options_.tick_ns);  // kernel queue full
        }
      }
    } else {
      if (now - last_progress_ns >= options_.stall_ns) {
        break;  // the rest is lost
      }
      wait_ns = 1'000'000;
    }
    wait_ns = std::min(wait_ns, std::max<int64_t>(0, options_.drain_end_ns - now));
    timespec timeout{static_cast<time_t>(wait_ns / 1'000'000'000),
                     static_cast<long>(wait_ns % 1'000'000'000)};
    const int n = ::epoll_pwait2(epoll.get(), events.data(), static_cast<int>(events.size()),
                                 &timeout, nullptr);
    if (n > 0) {
      now = NowNs();
      for (int k = 0; k < n; ++k) {
        ReceiveFrom(flows_[static_cast<size_t>(events[static_cast<size_t>(k)].data.u64)], now);
      }
    }
    if (now >= next_scan_ns) {
      for (Flow& flow : flows_) {
        if (flow.session != nullptr && flow.session->next_timer_ns() <= now) {
          flow.session->OnTimer(now);
        }
      }
      next_scan_ns = now + kTimerScanNs;
    }
  }
}

}  // namespace turnkey::bench
