#include "bench/signaling/sio_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <utility>

namespace turnkey::bench {
namespace {

// The longest the worker sleeps before looking at its control block again.
constexpr int64_t kControlPollNs = 5'000'000;

}  // namespace

base::Result<std::unique_ptr<SioWorker>> SioWorker::Create(
    WorkerOptions options, std::shared_ptr<const std::vector<BenchUser>> users,
    std::vector<size_t> local_users, std::vector<size_t> connections,
    std::unique_ptr<CallDriver> driver, WorkerControl& control) {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) {
    return base::Unavailable("epoll_create1: " + ErrnoText(errno));
  }
  return std::unique_ptr<SioWorker>(new SioWorker(std::move(options), std::move(users),
                                                  std::move(local_users), std::move(connections),
                                                  std::move(driver), control, std::move(epoll)));
}

SioWorker::SioWorker(WorkerOptions options, std::shared_ptr<const std::vector<BenchUser>> users,
                     std::vector<size_t> local_users, std::vector<size_t> connections,
                     std::unique_ptr<CallDriver> driver, WorkerControl& control, UniqueFd epoll)
    : options_(std::move(options)),
      users_(std::move(users)),
      local_users_(std::move(local_users)),
      connections_(std::move(connections)),
      driver_(std::move(driver)),
      control_(control),
      epoll_(std::move(epoll)) {
  clients_.reserve(connections_.size());
}

SioWorker::~SioWorker() = default;

bool SioWorker::OpenOne(size_t index) {
  const size_t local = connections_[index];
  const BenchUser& user = (*users_)[local_users_[local]];
  const bool v4 = options_.server.family() == base::Family::kIpv4;
  int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (first_error_.empty()) {
      first_error_ = "socket: " + ErrnoText(errno);
    }
    return false;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (v4 && options_.bind_ips > 1) {
    // The kernel picks the port at connect() time, per destination, instead
    // of reserving one for the address at bind() time.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    sockaddr_in local_addr{};
    local_addr.sin_family = AF_INET;
    local_addr.sin_addr.s_addr =
        htonl(0x7F000001u + static_cast<uint32_t>(index % options_.bind_ips));
    if (bind(fd, reinterpret_cast<sockaddr*>(&local_addr), sizeof(local_addr)) != 0) {
      if (first_error_.empty()) {
        first_error_ = "bind: " + ErrnoText(errno);
      }
      ::close(fd);
      return false;
    }
  }
  sockaddr_storage server{};
  const socklen_t len = options_.server.ToSockaddr(&server);
  if (connect(fd, reinterpret_cast<sockaddr*>(&server), len) != 0 && errno != EINPROGRESS) {
    if (first_error_.empty()) {
      first_error_ = "connect: " + ErrnoText(errno);
    }
    ::close(fd);
    return false;
  }
  auto client =
      std::make_unique<SioClient>(fd, options_.host, options_.path,
                                  R"({"token":")" + user.token + R"("})", *this, dirty_, local);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
  ev.data.ptr = client.get();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    if (first_error_.empty()) {
      first_error_ = "epoll_ctl: " + ErrnoText(errno);
    }
    return false;  // the client closes its fd
  }
  client->set_watching_out(true);
  clients_.push_back(std::move(client));
  ++handshaking_;
  return true;
}

void SioWorker::OpenConnections() {
  const size_t target =
      std::min(control_.target_connections.load(std::memory_order_relaxed), connections_.size());
  while (clients_.size() + failed_open_ < target && handshaking_ < options_.pipeline) {
    if (!OpenOne(clients_.size() + failed_open_)) {
      ++failed_open_;
      ++failed_;
      control_.failed.store(failed_, std::memory_order_relaxed);
    }
  }
}

void SioWorker::UpdateInterest(SioClient& client) {
  if (client.state() == SioClient::State::kClosed) {
    return;
  }
  const bool want = client.wants_write();
  if (want == client.watching_out()) {
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &client;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, client.fd(), &ev) == 0) {
    client.set_watching_out(want);
  }
}

void SioWorker::FlushDirty() {
  std::vector<SioClient*> batch;
  while (!dirty_.empty()) {
    batch.swap(dirty_);
    for (SioClient* client : batch) {
      client->Flush();
      UpdateInterest(*client);
    }
    batch.clear();
  }
}

void SioWorker::Run() {
  std::array<epoll_event, 256> events;
  while (true) {
    phase_ = static_cast<RunPhase>(control_.phase.load(std::memory_order_acquire));
    if (phase_ == RunPhase::kStop) {
      break;
    }
    OpenConnections();
    int64_t timeout_ns = kControlPollNs;
    if (driver_) {
      const int64_t now = NowNs();
      timeout_ns = std::clamp<int64_t>(driver_->NextWakeNs(now, phase_) - now, 0, kControlPollNs);
    }
    // epoll_pwait2: a nanosecond timeout, so a fixed call rate is kept to
    // the microsecond rather than to epoll_wait's millisecond.
    const timespec timeout{0, static_cast<long>(timeout_ns)};
    const int n = epoll_pwait2(epoll_.get(), events.data(), static_cast<int>(events.size()),
                               &timeout, nullptr);
    for (int i = 0; i < n; ++i) {
      auto* client = static_cast<SioClient*>(events[i].data.ptr);
      const uint32_t e = events[i].events;
      if (client->state() == SioClient::State::kConnecting &&
          (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) {
        client->OnWritable();
      } else if ((e & EPOLLOUT) != 0) {
        client->OnWritable();
      }
      if ((e & EPOLLIN) != 0) {
        client->OnReadable();
      }
      if ((e & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0) {
        client->OnHangup();
      }
      if (!client->flush_pending()) {
        UpdateInterest(*client);  // else after FlushDirty(), when it is known
      }
    }
    if (driver_) {
      driver_->Tick(NowNs(), phase_);
    }
    FlushDirty();
    if (driver_) {
      control_.in_flight.store(driver_->in_flight(), std::memory_order_relaxed);
      control_.completed.store(driver_->stats().completed, std::memory_order_relaxed);
    }
  }
  stopping_ = true;
  for (auto& client : clients_) {
    client->Close("stopped");
  }
}

void SioWorker::OnReady(SioClient& client) {
  --handshaking_;
  ++ready_;
  control_.ready.store(ready_, std::memory_order_relaxed);
  control_.last_ready_ns.store(NowNs(), std::memory_order_relaxed);
  if (driver_) {
    driver_->AddSocket(client.tag(), client);
  }
}

void SioWorker::OnEvent(SioClient& client, std::string_view event, std::string_view packet) {
  if (driver_) {
    driver_->OnEvent(NowNs(), client, event, packet, phase_);
  }
}

void SioWorker::OnAck(SioClient& client, uint64_t ack_id, std::string_view packet) {
  if (driver_) {
    driver_->OnAck(NowNs(), client, ack_id, packet, phase_);
  }
}

void SioWorker::OnClosed(SioClient& client, std::string_view why) {
  if (stopping_) {
    return;
  }
  if (client.was_ready()) {
    ++lost_;
    control_.lost.store(lost_, std::memory_order_relaxed);
    if (first_loss_.empty()) {
      first_loss_ = std::string(why);
    }
  } else {
    --handshaking_;
    ++failed_;
    control_.failed.store(failed_, std::memory_order_relaxed);
    if (first_error_.empty()) {
      first_error_ = std::string(why);
    }
  }
  if (driver_) {
    driver_->OnClosed(NowNs(), client);
  }
}

}  // namespace turnkey::bench
