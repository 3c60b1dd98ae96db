#include "bench/session_pool.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "base/bytes.h"

namespace turnkey::bench {

namespace {

constexpr uint64_t kWatchTag = UINT64_MAX;
constexpr int64_t kTimerScanNs = 20'000'000;

base::SocketAddress BindAddress(const SessionPoolOptions& options, size_t index) {
  if (options.bind_count <= 1 || !options.bind.is_v4()) {
    return options.bind;
  }
  const uint8_t* b = options.bind.bytes();
  const uint32_t first = base::LoadBe32(b);
  std::array<uint8_t, 4> ip{};
  base::StoreBe32(ip.data(), first + static_cast<uint32_t>(index % options.bind_count));
  return base::SocketAddress::V4(ip, 0);
}

}  // namespace

base::Result<std::unique_ptr<SessionPool>> SessionPool::Create(const SessionPoolOptions& options) {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) {
    return base::Unavailable("epoll_create1: " + ErrnoText(errno));
  }
  return std::unique_ptr<SessionPool>(new SessionPool(options, std::move(epoll)));
}

SessionPool::SessionPool(const SessionPoolOptions& options, UniqueFd epoll)
    : options_(options), epoll_(std::move(epoll)), buffer_(65536) {}

SessionPool::~SessionPool() = default;

size_t SessionPool::ready_count() const {
  return static_cast<size_t>(
      std::count_if(sessions_.begin(), sessions_.end(), [](const auto& s) { return s->ready(); }));
}

void SessionPool::Drain(size_t i, int64_t now_ns) {
  TurnSession& session = *sessions_[i];
  if (StreamClient* stream = session.stream()) {
    const bool alive = stream->Flush() && stream->Read([&](base::ByteView frame) {
      if ((frame[0] & 0xC0) == 0) {
        session.OnStunMessage(now_ns, frame);
      }
    });
    if (!alive) {
      session.OnTransportError(stream->error());
    }
    return;
  }
  for (;;) {
    ssize_t n = ::recv(session.fd(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n < 0) {
      return;  // EAGAIN, or an ICMP error surfacing: the timers handle loss
    }
    if (n >= 1 && (buffer_[0] & 0xC0) == 0) {
      session.OnStunMessage(now_ns, base::ByteView(buffer_.data(), static_cast<size_t>(n)));
    }
  }
}

void SessionPool::RunTimers(int64_t now_ns) {
  for (auto& s : sessions_) {
    if (s->next_timer_ns() <= now_ns) {
      s->OnTimer(now_ns);
    }
  }
}

GrowResult SessionPool::Grow(size_t target, const std::atomic<bool>& stop) {
  GrowResult result;
  const size_t first = sessions_.size();
  const int64_t start_ns = NowNs();
  int64_t next_scan_ns = start_ns + kTimerScanNs;
  size_t in_setup = 0;
  bool can_open = true;
  std::vector<epoll_event> events(256);

  // Counts a session that finished setup since it was last looked at.
  std::vector<bool> counted;
  auto account = [&](size_t i) {
    if (i < first || counted[i - first] || !sessions_[i]->done()) {
      return;
    }
    counted[i - first] = true;
    --in_setup;
    if (sessions_[i]->ready()) {
      ++result.ready;
    } else {
      ++result.failed;
      if (result.first_error.empty()) {
        result.first_error = sessions_[i]->error();
      }
    }
  };

  while (!stop.load(std::memory_order_relaxed)) {
    int64_t now = NowNs();
    if (result.ready == 0 && result.failed >= options_.pipeline) {
      can_open = false;  // a whole pipeline failed and nothing worked: the server will not
    }
    while (can_open && sessions_.size() < target && in_setup < options_.pipeline) {
      std::unique_ptr<TurnSession> session;
      if (options_.transport == ClientTransportKind::kUdp) {
        UdpSocketSetup setup;
        setup.bind = BindAddress(options_, sessions_.size());
        setup.connect_to = options_.server;
        setup.buffer_bytes = options_.buffer_bytes;
        auto fd = OpenUdpSocket(setup);
        if (!fd) {
          can_open = false;
          if (result.first_error.empty()) {
            result.first_error = "client socket: " + fd.error().message;
          }
          break;
        }
        session =
            std::make_unique<TurnSession>(std::move(*fd), options_.session, options_.credentials);
      } else {
        auto stream = StreamClient::Connect(
            options_.server, BindAddress(options_, sessions_.size()),
            options_.transport == ClientTransportKind::kTls ? options_.tls : nullptr,
            options_.connect_timeout_ms);
        if (!stream) {
          can_open = false;
          if (result.first_error.empty()) {
            result.first_error = "client connection: " + stream.error().message;
          }
          break;
        }
        session = std::make_unique<TurnSession>(std::move(*stream), options_.session,
                                                options_.credentials);
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = sessions_.size();
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, session->fd(), &ev) != 0) {
        can_open = false;
        result.first_error = "epoll_ctl: " + ErrnoText(errno);
        break;
      }
      sessions_.push_back(std::move(session));
      counted.push_back(false);
      ++result.started;
      ++in_setup;
      sessions_.back()->Start(now);
      account(sessions_.size() - 1);  // it may have failed at once
    }
    if (in_setup == 0 && (sessions_.size() >= target || !can_open)) {
      break;
    }
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 10);
    now = NowNs();
    for (int k = 0; k < n; ++k) {
      const size_t i = static_cast<size_t>(events[static_cast<size_t>(k)].data.u64);
      if (i < sessions_.size()) {
        Drain(i, now);
        account(i);
      }
    }
    if (now >= next_scan_ns) {
      for (size_t i = first; i < sessions_.size(); ++i) {
        if (sessions_[i]->next_timer_ns() <= now) {
          sessions_[i]->OnTimer(now);
          account(i);
        }
      }
      for (size_t i = 0; i < first; ++i) {
        if (sessions_[i]->next_timer_ns() <= now) {
          sessions_[i]->OnTimer(now);
        }
      }
      next_scan_ns = now + kTimerScanNs;
    }
  }
  int64_t last_done_ns = start_ns;
  for (size_t i = first; i < sessions_.size(); ++i) {
    const TurnSession& s = *sessions_[i];
    result.requests += s.requests_sent();
    result.retransmissions += s.retransmissions();
    if (s.ready()) {
      last_done_ns = std::max(last_done_ns, s.ready_ns());
    }
  }
  result.elapsed_ns = (result.failed == 0 ? last_done_ns : NowNs()) - start_ns;
  return result;
}

SessionPool::ServeEnd SessionPool::Serve(int64_t until_ns, const std::atomic<bool>& stop,
                                         int watch_fd) {
  if (watch_fd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWatchTag;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, watch_fd, &ev);
  }
  ServeEnd end = ServeEnd::kDeadline;
  std::vector<epoll_event> events(256);
  int64_t next_scan_ns = 0;
  while (end == ServeEnd::kDeadline) {
    if (stop.load(std::memory_order_relaxed)) {
      end = ServeEnd::kStopped;
      break;
    }
    int64_t now = NowNs();
    if (now >= until_ns) {
      break;
    }
    if (now >= next_scan_ns) {
      RunTimers(now);
      next_scan_ns = now + 100'000'000;
    }
    const int64_t wait_ns = std::min(until_ns, next_scan_ns) - now;
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                         static_cast<int>(std::max<int64_t>(1, wait_ns / 1'000'000)));
    now = NowNs();
    for (int k = 0; k < n; ++k) {
      const uint64_t tag = events[static_cast<size_t>(k)].data.u64;
      if (tag == kWatchTag) {
        end = ServeEnd::kWatchReadable;
      } else if (tag < sessions_.size()) {
        Drain(static_cast<size_t>(tag), now);
      }
    }
  }
  if (watch_fd >= 0) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, watch_fd, nullptr);
  }
  return end;
}

void SessionPool::CloseAll(int64_t linger_ns) {
  const int64_t now = NowNs();
  for (auto& s : sessions_) {
    s->Close(now);
  }
  std::atomic<bool> never{false};
  Serve(now + linger_ns, never);
}

}  // namespace turnkey::bench
