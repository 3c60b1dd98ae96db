// udp_forwarder: the floor. A UDP relay with no TURN at all, doing the least
// per-packet work a relay with TURN's shape can do, with recvmmsg/sendmmsg.
//
// Shape (the same as a TURN server's ChannelData path):
//   - clients send to --listen; the first datagram from a new client address
//     creates a session with its own relay socket (bound to --relay-ip, port
//     0), as an allocation has;
//   - client -> peer: the datagram must start with a 4-byte ChannelData
//     header (channel, length; RFC 8656 s12.4), which is checked and
//     stripped; the session is found by a hash lookup keyed by the client's
//     source address; the rest goes to --peer from the session's relay socket;
//   - peer -> client: a datagram on a relay socket is looked up by its source
//     address in the session's peer table (the permission / channel lookup
//     TURN does), a 4-byte ChannelData header is written in front of it in
//     place, and it goes to the client from the listening socket.
// No STUN parsing, authentication, lifetimes, quotas or policy: sessions live
// until the process exits. So: one hash lookup keyed by the source address
// and a 4-byte header strip or add per packet, in each direction.
//
// --threads N: N worker threads, each with its own SO_REUSEPORT listening
// socket (the kernel keeps a client on one thread) and owning the sessions
// and relay sockets it created, as turnkey's workers do. Prints
// "listening IP:PORT" once bound; runs until SIGINT/SIGTERM.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "bench/udp_batch.h"
#include "bench/udp_util.h"
#include "stun/channel_data.h"

namespace turnkey::bench {
namespace {

constexpr uint64_t kListenerTag = 0;
constexpr size_t kMaxRoundsPerWakeup = 4;

struct ForwarderOptions {
  base::SocketAddress peer;
  base::SocketAddress relay_ip;
  size_t batch = 32;
  int buffer = 1 << 20;
};

struct Session {
  UniqueFd relay;
  sockaddr_storage client{};
  socklen_t client_length = 0;
  // Peers this session may hear from, with the channel to tag them with.
  std::unordered_map<base::SocketAddress, uint16_t> peers;
  // Datagrams of the current client batch bound for the peer (slot indexes).
  std::vector<uint32_t> pending;
};

struct ForwarderCounters {
  uint64_t to_peer = 0;
  uint64_t to_client = 0;
  uint64_t dropped = 0;  // malformed, unknown peer, or the kernel refused the send
};

class ForwarderThread {
 public:
  ForwarderThread(UniqueFd listener, const ForwarderOptions& options)
      : listener_(std::move(listener)),
        options_(options),
        from_clients_(options.batch, 2048),
        to_peer_(options.batch, 0),
        from_peer_(options.batch, 2048, stun::kChannelDataHeaderSize) {
    peer_length_ = options_.peer.ToSockaddr(&peer_);
  }

  void Run(const std::atomic<bool>& stop) {
    epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag;
    if (!epoll_.valid() || ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &ev) != 0) {
      std::fprintf(stderr, "udp_forwarder: epoll: %s\n", ErrnoText(errno).c_str());
      return;
    }
    std::vector<epoll_event> events(64);
    while (!stop.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 200);
      for (int k = 0; k < n; ++k) {
        const uint64_t tag = events[static_cast<size_t>(k)].data.u64;
        if (tag == kListenerTag) {
          FromClients();
        } else {
          FromPeer(*reinterpret_cast<Session*>(tag));
        }
      }
    }
  }

  const ForwarderCounters& counters() const { return counters_; }
  size_t sessions() const { return sessions_.size(); }

 private:
  Session* FindOrCreate(const sockaddr* source, socklen_t length, uint16_t channel) {
    auto client = base::SocketAddress::FromSockaddr(source, length);
    if (!client) {
      return nullptr;
    }
    auto it = sessions_.find(*client);
    if (it != sessions_.end()) {
      return it->second.get();
    }
    UdpSocketSetup setup;
    setup.bind = options_.relay_ip;
    setup.buffer_bytes = options_.buffer;
    auto fd = OpenUdpSocket(setup);
    if (!fd) {
      return nullptr;
    }
    auto session = std::make_unique<Session>();
    session->relay = std::move(*fd);
    std::memcpy(&session->client, source, length);
    session->client_length = length;
    session->peers.emplace(options_.peer, channel);
    session->pending.reserve(options_.batch);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = reinterpret_cast<uint64_t>(session.get());
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, session->relay.get(), &ev) != 0) {
      return nullptr;
    }
    Session* raw = session.get();
    sessions_.emplace(*client, std::move(session));
    return raw;
  }

  void FromClients() {
    for (size_t round = 0; round < kMaxRoundsPerWakeup; ++round) {
      const int n = from_clients_.Receive(listener_.get());
      if (n <= 0) {
        return;
      }
      touched_.clear();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        const uint8_t* data = from_clients_.data(i);
        const size_t size = from_clients_.size(i);
        if (size < stun::kChannelDataHeaderSize || (data[0] & 0xC0) != 0x40 ||
            base::LoadBe16(data + 2) > size - stun::kChannelDataHeaderSize) {
          ++counters_.dropped;
          continue;
        }
        Session* session = FindOrCreate(from_clients_.source(i), from_clients_.source_length(i),
                                        base::LoadBe16(data));
        if (session == nullptr) {
          ++counters_.dropped;
          continue;
        }
        if (session->pending.empty()) {
          touched_.push_back(session);
        }
        session->pending.push_back(static_cast<uint32_t>(i));
      }
      for (Session* session : touched_) {
        size_t count = 0;
        for (uint32_t i : session->pending) {
          const uint8_t* data = from_clients_.data(i);
          to_peer_.SetSend(count++, data + stun::kChannelDataHeaderSize, base::LoadBe16(data + 2),
                           reinterpret_cast<const sockaddr*>(&peer_), peer_length_);
        }
        const size_t sent = to_peer_.Send(session->relay.get(), 0, count);
        counters_.to_peer += sent;
        counters_.dropped += count - sent;
        session->pending.clear();
      }
      if (static_cast<size_t>(n) < from_clients_.slots()) {
        return;
      }
    }
  }

  void FromPeer(Session& session) {
    for (size_t round = 0; round < kMaxRoundsPerWakeup; ++round) {
      const int n = from_peer_.Receive(session.relay.get());
      if (n <= 0) {
        return;
      }
      size_t count = 0;
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        auto source =
            base::SocketAddress::FromSockaddr(from_peer_.source(i), from_peer_.source_length(i));
        auto it = source ? session.peers.find(*source) : session.peers.end();
        const size_t size = from_peer_.size(i);
        if (it == session.peers.end() || from_peer_.truncated(i) || size > 0xFFFF) {
          ++counters_.dropped;
          continue;
        }
        uint8_t* framed = from_peer_.data(i) - stun::kChannelDataHeaderSize;
        stun::WriteChannelDataHeader(framed, it->second, static_cast<uint16_t>(size));
        // Slot `count` <= i: its own received source is no longer needed.
        from_peer_.SetSend(count++, framed, size + stun::kChannelDataHeaderSize,
                           reinterpret_cast<const sockaddr*>(&session.client),
                           session.client_length);
      }
      const size_t sent = from_peer_.Send(listener_.get(), 0, count);
      counters_.to_client += sent;
      counters_.dropped += count - sent;
      if (static_cast<size_t>(n) < from_peer_.slots()) {
        return;
      }
    }
  }

  UniqueFd listener_;
  ForwarderOptions options_;
  UniqueFd epoll_;
  sockaddr_storage peer_{};
  socklen_t peer_length_ = 0;
  UdpBatch from_clients_;
  UdpBatch to_peer_;
  UdpBatch from_peer_;
  std::vector<Session*> touched_;
  std::unordered_map<base::SocketAddress, std::unique_ptr<Session>> sessions_;
  ForwarderCounters counters_;
};

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::string peer;
  std::string relay_ip = "127.0.0.1";
  size_t threads = 1;
  ForwarderOptions options;
  CLI::App cli{"udp_forwarder: raw UDP forwarder with TURN's shape and no TURN", "udp_forwarder"};
  cli.add_option("--listen", listen, "client-facing IP:PORT (port 0 = any free)")
      ->capture_default_str();
  cli.add_option("--peer", peer, "IP:PORT every session forwards to")->required();
  cli.add_option("--relay-ip", relay_ip, "IP the per-session relay sockets bind to")
      ->capture_default_str();
  cli.add_option("--threads", threads, "worker threads (SO_REUSEPORT listeners)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cli.add_option("--batch", options.batch, "datagrams per recvmmsg/sendmmsg")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cli.add_option("--buffer", options.buffer, "SO_RCVBUF/SO_SNDBUF, bytes")->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  auto listen_address = base::SocketAddress::ParseIpPort(listen);
  auto peer_address = base::SocketAddress::ParseIpPort(peer);
  auto relay_address = base::SocketAddress::ParseIp(relay_ip, 0);
  if (!listen_address || !peer_address || !relay_address) {
    std::fprintf(stderr, "udp_forwarder: --listen and --peer take IP:PORT, --relay-ip an IP\n");
    return 2;
  }
  options.peer = *peer_address;
  options.relay_ip = *relay_address;
  std::atomic<bool>& stop = InstallStopFlag();
  RaiseFileLimit();
  std::vector<std::unique_ptr<ForwarderThread>> workers;
  for (size_t i = 0; i < threads; ++i) {
    UdpSocketSetup setup;
    setup.bind = *listen_address;
    setup.reuse_port = true;
    setup.buffer_bytes = options.buffer;
    auto fd = OpenUdpSocket(setup);
    if (!fd) {
      std::fprintf(stderr, "udp_forwarder: %s\n", fd.error().message.c_str());
      return 1;
    }
    if (i == 0) {
      *listen_address = LocalAddress(fd->get());
    }
    workers.push_back(std::make_unique<ForwarderThread>(std::move(*fd), options));
  }
  std::printf("listening %s\n", listen_address->ToString().c_str());
  std::fflush(stdout);
  std::vector<std::thread> running;
  for (auto& w : workers) {
    running.emplace_back([&stop, worker = w.get()] { worker->Run(stop); });
  }
  for (auto& t : running) {
    t.join();
  }
  ForwarderCounters total;
  size_t sessions = 0;
  for (const auto& w : workers) {
    total.to_peer += w->counters().to_peer;
    total.to_client += w->counters().to_client;
    total.dropped += w->counters().dropped;
    sessions += w->sessions();
  }
  std::fprintf(stderr, "udp_forwarder: %zu sessions, to peer %llu, to client %llu, dropped %llu\n",
               sessions, static_cast<unsigned long long>(total.to_peer),
               static_cast<unsigned long long>(total.to_client),
               static_cast<unsigned long long>(total.dropped));
  return 0;
}

}  // namespace
}  // namespace turnkey::bench

int main(int argc, char** argv) { return turnkey::bench::Main(argc, argv); }
