#include "relay/worker.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>
#include <vector>

#include "base/log.h"
#include "net/dtls_socket.h"
#include "net/event_loop.h"
#include "net/stream_connection.h"
#include "net/stream_listener.h"
#include "net/timer.h"
#include "net/tls_context.h"
#include "net/udp_socket.h"
#include "net/udp_socket_set.h"
#include "stun/stream_framer.h"

namespace turnkey::relay {

namespace {

// The socket of a UDP or DTLS listener on `address`: one per worker on the
// same port (SO_REUSEPORT), with room for bursts. On a wildcard address the
// server side of each 5-tuple is the address the client wrote to (RFC 8656
// section 2), and answers leave from it (receive_destinations).
net::UdpSocketOptions ListenerUdpOptions(const base::SocketAddress& address) {
  net::UdpSocketOptions options;
  options.reuse_port = true;
  options.receive_buffer_bytes = 4 * 1024 * 1024;
  options.send_buffer_bytes = 4 * 1024 * 1024;
  options.receive_destinations = address.IsUnspecified();
  return options;
}

}  // namespace

base::Result<std::unique_ptr<Worker>> Worker::Create(int index, const WorkerOptions& options,
                                                     std::shared_ptr<net::TlsContext> tls,
                                                     RelayShared& shared,
                                                     const auth::NonceIssuer& nonces) {
  auto loop = net::EventLoop::Create();
  if (!loop) {
    return std::unexpected(loop.error());
  }
  std::unique_ptr<Worker> worker(new Worker(index, std::move(*loop), options));
  if (auto init = worker->Init(shared, nonces); !init) {
    return std::unexpected(init.error());
  }
  for (const ListenerSpec& spec : options.listeners) {
    if (auto bound = worker->Bind(spec, tls); !bound) {
      return std::unexpected(bound.error());
    }
  }
  return worker;
}

Worker::Worker(int index, std::unique_ptr<net::EventLoop> loop, const WorkerOptions& options)
    : index_(index), loop_(std::move(loop)), options_(options) {}

base::Status Worker::Init(RelayShared& shared, const auth::NonceIssuer& nonces) {
  net::UdpSocketSetOptions set_options;
  auto set = net::UdpSocketSet::Create(
      *loop_, set_options, [this](void* context, std::span<const net::Datagram> batch) {
        const base::MonoTime now = base::SystemClock::Instance().Now();
        for (const net::Datagram& d : batch) {
          server_->OnPeerData(now, context, d.from, d.data);
        }
        FlushStreams();
      });
  if (!set) {
    return std::unexpected(set.error());
  }
  relay_sockets_ = std::move(*set);
  relay_sockets_->SetIcmpHandler([this](void* context, const net::IcmpError& error) {
    server_->OnPeerIcmp(base::SystemClock::Instance().Now(), context, error);
    FlushStreams();
  });
  // The relayed counters follow what sendmmsg took, not what was queued.
  relay_sockets_->SetFlushHandler([this](const net::SendBatch::FlushResult& result) {
    if (server_ != nullptr) {
      server_->OnPeerSendsDone(result.sent, result.sent_bytes, result.dropped + result.errors);
    }
  });
  server_ = std::make_unique<TurnServer>(static_cast<unsigned>(index_), options_.server, AsIo(),
                                         shared, nonces, base::SystemClock::Instance());
  sweep_timer_ = std::make_unique<net::Timer>(*loop_, [this] {
    server_->OnTimer(base::SystemClock::Instance().Now());
    FlushStreams();
  });
  sweep_timer_->StartPeriodic(std::chrono::seconds(1));
  setup_deadlines_ =
      std::make_unique<net::DeadlineQueue<StreamClient>>(*loop_, [this](StreamClient& client) {
        TK_LOG_DEBUG("turn: connection {} from {} has no allocation {} ms after it opened; closing",
                     client.connection->id(), client.connection->peer_address().ToString(),
                     options_.stream_setup_timeout.count());
        client.connection->Abort();
      });
  return base::Ok();
}

Worker::~Worker() {
  Stop();
  // What is still queued is sent and counted while the core is whole.
  if (relay_sockets_) {
    relay_sockets_->Flush();
  }
  server_.reset();
}

base::Status Worker::Bind(const ListenerSpec& spec, const std::shared_ptr<net::TlsContext>& tls) {
  const std::string where =
      std::string(ClientTransportName(spec.transport)) + " listener " + spec.address.ToString();
  if (spec.transport == ClientTransport::kUdp) {
    const net::UdpSocketOptions udp_options = ListenerUdpOptions(spec.address);
    const bool wildcard = udp_options.receive_destinations;
    size_t slot = udp_.size();
    auto socket = net::UdpSocket::Create(
        *loop_, spec.address, udp_options,
        [this, slot, wildcard](std::span<const net::Datagram> batch) {
          const base::MonoTime now = base::SystemClock::Instance().Now();
          const base::SocketAddress& local = udp_[slot]->local_address();
          FiveTuple tuple{ClientTransport::kUdp, {}, local};
          for (const net::Datagram& d : batch) {
            tuple.client = d.from;
            if (wildcard) {
              tuple.server = d.to.family() != base::Family::kNone ? d.to : local;
            }
            server_->OnClientMessage(now, tuple, d.data);
          }
        });
    if (!socket) {
      return base::Unavailable(where + ": " + socket.error().message);
    }
    local_addresses_.push_back((*socket)->local_address());
    udp_.push_back(std::move(*socket));
    return base::Ok();
  }

  if (spec.transport == ClientTransport::kDtls) {
    return BindDtls(spec, tls);
  }

  std::shared_ptr<net::TlsContext> context;
  if (spec.transport == ClientTransport::kTls) {
    if (!tls) {
      return base::InvalidArgument(where + ": no TLS certificate loaded");
    }
    context = tls;
  }
  net::StreamListenerOptions stream_options;
  stream_options.reuse_port = true;
  stream_options.alpn = net::AlpnPolicy::kStunTurn;
  stream_options.connection.idle_timeout =
      std::min(options_.stream_setup_timeout, options_.stream_idle_timeout);
  stream_options.connection.max_input_bytes = 2 * options_.max_stream_frame;
  stream_options.connection.tls_record_per_write = true;
  stream_options.budget = options_.stream_budget;
  ClientTransport transport = spec.transport;
  auto listener = net::StreamListener::Create(
      *loop_, spec.address, stream_options, context,
      [this, transport](net::StreamConnection& connection) { OnAccept(transport, connection); });
  if (!listener) {
    return base::Unavailable(where + ": " + listener.error().message);
  }
  local_addresses_.push_back((*listener)->local_address());
  streams_.push_back(StreamListenerEntry{transport, std::move(*listener)});
  return base::Ok();
}

base::Status Worker::BindDtls(const ListenerSpec& spec,
                              const std::shared_ptr<net::TlsContext>& tls) {
  const std::string where = "dtls listener " + spec.address.ToString();
  if (!tls) {
    return base::InvalidArgument(where + ": no TLS certificate loaded");
  }
  net::DtlsSocketOptions options;
  options.udp = ListenerUdpOptions(spec.address);
  if (options_.stream_setup_timeout.count() > 0) {
    options.setup_timeout = options_.stream_setup_timeout;
  }
  options.max_pending = options_.max_pending_streams;
  options.budget = options_.dtls_budget;
  const size_t slot = dtls_.size();
  auto socket = net::DtlsSocket::Create(
      *loop_, spec.address, options, tls,
      [this, slot](const net::DtlsSocket::Peer& peer, base::ByteView datagram) {
        const FiveTuple tuple{ClientTransport::kDtls, peer.client, peer.server};
        const size_t allocations_before = server_->allocation_count();
        server_->OnClientMessage(base::SystemClock::Instance().Now(), tuple, datagram);
        // Kept while it has an allocation, as a TCP/TLS connection is.
        if (server_->allocation_count() > allocations_before && server_->HasAllocation(tuple)) {
          dtls_[slot]->Hold(peer, AllocatedIdleTimeout());
        }
      },
      [this](const net::DtlsSocket::Peer& peer) {
        server_->OnClientClosed(FiveTuple{ClientTransport::kDtls, peer.client, peer.server});
      },
      [this] { FlushStreams(); });
  if (!socket) {
    return base::Unavailable(where + ": " + socket.error().message);
  }
  local_addresses_.push_back((*socket)->local_address());
  dtls_.push_back(std::move(*socket));
  return base::Ok();
}

std::chrono::milliseconds Worker::AllocatedIdleTimeout() const {
  // Never shorter than the longest lifetime a client may be granted (and
  // a minute for its refresh to arrive): a client that refreshes just
  // before its allocation ends sends nothing else meanwhile (RFC 8656
  // section 7.3), and closing the connection would delete it.
  return std::max<std::chrono::milliseconds>(
      options_.stream_idle_timeout, server_->options().allocation_max + std::chrono::minutes(1));
}

void Worker::OnAccept(ClientTransport transport, net::StreamConnection& connection) {
  if (options_.max_pending_streams > 0 &&
      setup_deadlines_->size() >= options_.max_pending_streams) {
    StreamClient* oldest = setup_deadlines_->earliest();
    TK_LOG_WARN_EVERY(std::chrono::seconds(10),
                      "turn: {} TCP/TLS connections without an allocation on worker {} "
                      "(turn.pending_connections); closing the oldest, from {}",
                      setup_deadlines_->size(), index_,
                      oldest->connection->peer_address().ToString());
    // Out of the count now: the close callback runs later, from the loop.
    setup_deadlines_->Cancel(oldest->setup);
    oldest->connection->Abort();
  }
  StreamClient& client =
      connections_[StreamKey{connection.peer_address(), connection.local_address()}];
  client.connection = &connection;
  if (options_.stream_setup_timeout.count() > 0) {
    setup_deadlines_->Schedule(client.setup, options_.stream_setup_timeout);
  }
  connection.SetCallbacks(
      [this, transport](net::StreamConnection& c, base::ByteView data) {
        return OnStreamData(transport, c, data);
      },
      [this, transport](net::StreamConnection& c, net::CloseReason) {
        auto it = connections_.find(StreamKey{c.peer_address(), c.local_address()});
        if (it != connections_.end()) {
          if (it->second.corked) {
            std::erase(dirty_streams_, &it->second);
          }
          setup_deadlines_->Cancel(it->second.setup);
          connections_.erase(it);
        }
        server_->OnClientClosed(FiveTuple{transport, c.peer_address(), c.local_address()});
        FlushStreams();
      });
}

size_t Worker::OnStreamData(ClientTransport transport, net::StreamConnection& connection,
                            base::ByteView data) {
  // Every whole frame in the buffer in one call (RFC 8656 section 12.5
  // framing): one pass over what one read brought in, one clock read, and
  // the output it causes leaves in one write per client.
  const stun::StreamFramer framer(options_.max_stream_frame);
  const FiveTuple tuple{transport, connection.peer_address(), connection.local_address()};
  const base::MonoTime now = base::SystemClock::Instance().Now();
  const size_t allocations_before = server_->allocation_count();
  size_t consumed = 0;
  bool allocated = false;  // known once a ChannelData frame starts
  while (consumed < data.size() && connection.is_open()) {
    const base::ByteView rest = data.subspan(consumed);
    const stun::FrameResult frame = framer.Next(rest);
    if (frame.type == stun::FrameType::kChannelData && !allocated) {
      // ChannelData needs a channel, which needs an allocation: before one,
      // it is another protocol whose first bits happen to be 01 (an HTTP
      // request: "GET " would read as a 21 KB frame to wait for).
      allocated = server_->HasAllocation(tuple);
      if (!allocated) {
        connection.Abort();
        consumed = data.size();
        break;
      }
    }
    if (frame.status == stun::FrameResult::Status::kNeedMore) {
      break;
    }
    if (frame.status == stun::FrameResult::Status::kError) {
      // Not STUN or ChannelData, or absurdly large: the stream cannot be
      // resynchronised, so close it.
      connection.Abort();
      consumed = data.size();
      break;
    }
    server_->OnClientMessage(now, tuple, rest.first(frame.size));
    consumed += frame.size;
  }
  // The longer idle timeout once the client has allocated: only this
  // stream's own messages can have added an allocation in this call, so the
  // relayed data that makes up most reads skips the lookup.
  if (server_->allocation_count() > allocations_before && connection.is_open() &&
      server_->HasAllocation(tuple)) {
    connection.SetIdleTimeout(AllocatedIdleTimeout());
    auto it = connections_.find(StreamKey{connection.peer_address(), connection.local_address()});
    if (it != connections_.end()) {
      setup_deadlines_->Cancel(it->second.setup);
    }
  }
  FlushStreams();
  return consumed;
}

void Worker::AllocationEnded(const FiveTuple& tuple) {
  // Back under the setup deadline and its short idle timeout: a connection
  // whose allocation was deleted must not stay open for hours on Bindings.
  if (tuple.transport == ClientTransport::kDtls) {
    for (auto& dtls : dtls_) {
      dtls->Release(net::DtlsSocket::Peer{tuple.client, tuple.server});
    }
    return;
  }
  if (options_.stream_setup_timeout.count() <= 0) {
    return;
  }
  auto it = connections_.find(StreamKey{tuple.client, tuple.server});
  if (it == connections_.end() || !it->second.connection->is_open()) {
    return;
  }
  it->second.connection->SetIdleTimeout(
      std::min(options_.stream_setup_timeout, options_.stream_idle_timeout));
  setup_deadlines_->Schedule(it->second.setup, options_.stream_setup_timeout);
}

void Worker::FlushStreams() {
  for (StreamClient* client : dirty_streams_) {
    client->corked = false;
    client->connection->Uncork();
  }
  dirty_streams_.clear();
}

void Worker::SendToClient(const FiveTuple& to, base::ByteView bytes) {
  Send(to, bytes, std::numeric_limits<size_t>::max());
}

bool Worker::SendDataToClient(const FiveTuple& to, base::ByteView bytes) {
  return Send(to, bytes, options_.stream_data_backlog);
}

bool Worker::Send(const FiveTuple& to, base::ByteView bytes, size_t stream_backlog) {
  if (to.transport == ClientTransport::kUdp) {
    // A 5-tuple of a wildcard socket names the address the client wrote
    // to: the socket of that family and port answers from it (a dual-stack
    // IPv6 one for IPv4 when there is no IPv4 one).
    net::UdpSocket* wildcard = nullptr;
    for (auto& udp : udp_) {
      const base::SocketAddress& local = udp->local_address();
      if (local == to.server) {
        udp->QueueSend(to.client, bytes);
        return true;
      }
      if (local.IsUnspecified() && local.port() == to.server.port() &&
          (local.family() == to.server.family() || (wildcard == nullptr && local.is_v6()))) {
        wildcard = udp.get();
      }
    }
    if (wildcard != nullptr) {
      wildcard->QueueSend(to.client, bytes, &to.server);
    }
    return true;
  }
  if (to.transport == ClientTransport::kDtls) {
    // Datagrams like UDP: no backlog to check. Only the socket with the
    // association sends (the others have none for this peer).
    const net::DtlsSocket::Peer peer{to.client, to.server};
    for (auto& dtls : dtls_) {
      if (dtls->Send(peer, bytes)) {
        break;
      }
    }
    return true;
  }
  auto it = connections_.find(StreamKey{to.client, to.server});
  if (it == connections_.end()) {
    return true;
  }
  StreamClient& client = it->second;
  if (client.connection->output_size() + bytes.size() > stream_backlog) {
    return false;
  }
  if (!client.corked) {
    client.corked = true;
    client.connection->Cork();
    dirty_streams_.push_back(&client);
  }
  client.connection->Write(bytes);
  return true;
}

RelayIo::OpenResult Worker::OpenRelay(const base::SocketAddress& bind, void* context) {
  // Bound, then read: the two steps an EVEN-PORT reservation takes apart.
  OpenResult result = HoldRelay(bind);
  if (result.handle != 0) {
    result.handle = AdoptRelay(result.handle, context);
  }
  return result;
}

void Worker::CloseRelay(RelayHandle handle) {
  relay_sockets_->Close(reinterpret_cast<net::UdpSocketSet::Handle>(handle));
}

RelayIo::OpenResult Worker::HoldRelay(const base::SocketAddress& bind) {
  OpenResult result;
  // ICMP errors about what the socket sends reach the client (OnPeerIcmp).
  auto bound = net::UdpSocketSet::Bind(bind, net::UdpOpenOptions{.receive_errors = true},
                                       &result.address_in_use);
  if (!bound) {
    if (!result.address_in_use) {
      // Out of descriptors, every Allocate would write one.
      TK_LOG_WARN_EVERY(std::chrono::seconds(10), "relay socket {}: {}", bind.ToString(),
                        bound.error().message);
    }
    return result;
  }
  result.handle = reinterpret_cast<HeldSocket>(*bound);
  result.local = net::UdpSocketSet::BoundAddress(*bound);
  return result;
}

RelayHandle Worker::AdoptRelay(HeldSocket held, void* context) {
  // DF stays clear: only a Send indication's DONT-FRAGMENT sets it, per
  // datagram (SendToPeer).
  auto handle = relay_sockets_->Adopt(reinterpret_cast<net::UdpSocketSet::BoundHandle>(held),
                                      net::UdpOpenOptions{}, context);
  if (!handle) {
    TK_LOG_WARN("relay socket: {}", handle.error().message);
    return 0;
  }
  return reinterpret_cast<RelayHandle>(*handle);
}

void Worker::CloseHeld(HeldSocket held) {
  net::UdpSocketSet::FreeBound(reinterpret_cast<net::UdpSocketSet::BoundHandle>(held));
}

SendOutcome Worker::SendToPeer(RelayHandle handle, const base::SocketAddress& peer,
                               base::ByteView data, bool dont_fragment) {
  auto socket = reinterpret_cast<net::UdpSocketSet::Handle>(handle);
  if (dont_fragment) {
    return relay_sockets_->SendDontFragment(socket, peer, data) == net::SendResult::kSent
               ? SendOutcome::kSent
               : SendOutcome::kRefused;
  }
  // Accepted here means queued: the flush handler (Init) reports the rest.
  return relay_sockets_->QueueSend(socket, peer, data) == net::SendResult::kSent
             ? SendOutcome::kQueued
             : SendOutcome::kRefused;
}

void Worker::Start() {
  thread_ = std::thread([this] {
    TK_LOG_DEBUG("relay worker {} running", index_);
    loop_->Run();
  });
}

void Worker::Stop() {
  if (thread_.joinable()) {
    loop_->Stop();
    thread_.join();
  }
  // Sockets and connections belong to the loop: destroy them before it. The
  // core, its timer and relay sockets go in ~Worker (member order), still
  // before the loop.
  dirty_streams_.clear();
  if (setup_deadlines_) {
    for (auto& [key, client] : connections_) {
      setup_deadlines_->Cancel(client.setup);
    }
  }
  connections_.clear();
  streams_.clear();
  dtls_.clear();
  udp_.clear();
}

void Worker::Post(std::function<void()> task) { loop_->Post(std::move(task)); }

void Worker::Reload(TurnServerOptions options, std::shared_ptr<net::TlsContext> tls) {
  Post([this, options = std::move(options), tls = std::move(tls)]() mutable {
    server_->SetOptions(std::move(options));
    if (tls) {
      for (StreamListenerEntry& entry : streams_) {
        if (entry.transport == ClientTransport::kTls) {
          (void)entry.listener->SetTlsContext(tls);
        }
      }
      for (auto& dtls : dtls_) {
        dtls->SetTlsContext(tls);
      }
    }
  });
}

std::vector<base::SocketAddress> Worker::local_addresses() const { return local_addresses_; }

}  // namespace turnkey::relay
