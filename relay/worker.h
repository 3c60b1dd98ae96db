// Worker: one relay thread. It owns an event loop, its own socket for every
// configured listener (SO_REUSEPORT, so the kernel keeps each client's
// 5-tuple on one worker), the TCP/TLS connections accepted there, the relay
// sockets of the allocations it made (one UdpSocketSet), and the TurnServer
// core that answers them. It is the RelayIo of that core.
//
// A DTLS listener is a net::DtlsSocket: each association is a client, like a
// TCP/TLS connection (its end deletes the allocation; the same setup and
// idle timeouts), carrying datagrams like UDP.
//
// Lifecycle: Create() binds everything on the calling thread, so a port that
// cannot be bound is reported before any thread starts; Start() runs the loop
// on a new thread; Stop() ends it and joins. Other threads talk to a running
// worker only through Post().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "auth/nonce.h"
#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "net/connection_budget.h"
#include "net/deadline_queue.h"
#include "relay/five_tuple.h"
#include "relay/relay_io.h"
#include "relay/relay_shared.h"
#include "relay/turn_server.h"
#include "stun/stream_framer.h"

namespace turnkey::net {
class DtlsSocket;
class EventLoop;
class StreamConnection;
class StreamListener;
class TlsContext;
class Timer;
class UdpSocket;
class UdpSocketSet;
}  // namespace turnkey::net

namespace turnkey::relay {

struct ListenerSpec {
  ClientTransport transport = ClientTransport::kUdp;
  base::SocketAddress address;  // bind address and port
};

struct WorkerOptions {
  std::vector<ListenerSpec> listeners;
  TurnServerOptions server;
  // A TCP/TLS client connection with an allocation and no input for this
  // long is closed: at least the server's allocation_max plus a minute
  // (what a client granted the longest lifetime may stay silent), whatever
  // this says. Default 10 minutes.
  std::chrono::milliseconds stream_idle_timeout{std::chrono::minutes(10)};
  // A TCP/TLS connection that has no allocation this long after it was
  // accepted is closed, however it trickles its bytes (a TLS handshake or a
  // STUN message one byte at a time); until then it is also the idle
  // timeout. Default 30 s.
  std::chrono::milliseconds stream_setup_timeout{std::chrono::seconds(30)};
  // Connections of this worker without an allocation yet: one more closes
  // the oldest of them (a legitimate client allocates within a second or
  // so; a flood of handshakes that never finish pushes out its own). Bounds
  // their memory (about 47 KB each over TLS). 0 = none. Default 0. DTLS
  // associations without an allocation have the same limit, of their own.
  size_t max_pending_streams = 0;
  // Where TCP/TLS connections take their place (StreamListenerOptions::budget),
  // shared by every worker. Null = none.
  std::shared_ptr<net::ConnectionBudget> stream_budget;
  // Where DTLS associations take theirs (DtlsSocketOptions::budget): the
  // same per-client limit, apart (they hold no descriptor). Null = none.
  std::shared_ptr<net::ConnectionBudget> dtls_budget;
  // Largest frame accepted on a stream: any STUN message or ChannelData.
  size_t max_stream_frame = stun::kMaxStreamFrame;
  // Output a TCP/TLS client may have queued before relayed peer data for it
  // is dropped (DropReason::kClientBacklog) rather than queued: about 1 s of
  // a 2 Mbit/s video call. Answers to its requests are always queued (up to
  // the connection's 4 MiB output limit). Default 256 KiB.
  size_t stream_data_backlog = 256 * 1024;
};

class Worker final : private RelayIo {
 public:
  // Binds every listener. `tls` is required when a TLS listener is
  // configured. `shared` and `nonces` must outlive the worker.
  static base::Result<std::unique_ptr<Worker>> Create(int index, const WorkerOptions& options,
                                                      std::shared_ptr<net::TlsContext> tls,
                                                      RelayShared& shared,
                                                      const auth::NonceIssuer& nonces);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the loop on a new thread.
  void Start();
  // Stops the loop, joins the thread and closes every socket. Idempotent.
  void Stop();

  // Runs `task` on this worker's thread. Any thread.
  void Post(std::function<void()> task);
  // Applies new reloadable settings / a new certificate for new TLS
  // connections. Any thread; takes effect on the worker thread.
  void Reload(TurnServerOptions options, std::shared_ptr<net::TlsContext> tls);

  // The bound addresses, in listener order (real ports after binding port 0).
  std::vector<base::SocketAddress> local_addresses() const;

  // What the core did; readable from any thread (relaxed atomics).
  const TurnCounters& counters() const { return server_->counters(); }

 private:
  struct StreamKey {
    base::SocketAddress client;
    base::SocketAddress server;
    friend bool operator==(const StreamKey&, const StreamKey&) = default;
  };
  struct StreamKeyHash {
    size_t operator()(const StreamKey& k) const { return k.client.Hash() * 31 + k.server.Hash(); }
  };
  struct StreamListenerEntry {
    ClientTransport transport;
    std::unique_ptr<net::StreamListener> listener;
  };
  // A TCP/TLS client connection. The first SendToClient of a batch corks it
  // (net::StreamConnection::Cork) and FlushStreams uncorks it, so a batch of
  // peer datagrams for one client leaves in one send instead of one per
  // packet (over TLS each message keeps a record of its own, and the batch's
  // records share the send: StreamConnectionOptions::tls_record_per_write).
  struct StreamClient {
    net::StreamConnection* connection = nullptr;
    bool corked = false;  // in dirty_streams_
    // Scheduled from the accept until the connection's first allocation, and
    // again when its allocation ends (AllocationEnded).
    net::DeadlineQueue<StreamClient>::Entry setup{this};
  };

  Worker(int index, std::unique_ptr<net::EventLoop> loop, const WorkerOptions& options);
  base::Status Init(RelayShared& shared, const auth::NonceIssuer& nonces);
  base::Status Bind(const ListenerSpec& spec, const std::shared_ptr<net::TlsContext>& tls);
  base::Status BindDtls(const ListenerSpec& spec, const std::shared_ptr<net::TlsContext>& tls);
  // The idle timeout of a TCP/TLS connection or DTLS association with an
  // allocation.
  std::chrono::milliseconds AllocatedIdleTimeout() const;
  void OnAccept(ClientTransport transport, net::StreamConnection& connection);
  size_t OnStreamData(ClientTransport transport, net::StreamConnection& connection,
                      base::ByteView data);
  // Uncorks the stream clients SendToClient corked, sending what it wrote.
  // Called at the end of every loop callback that can feed the core.
  void FlushStreams();
  RelayIo& AsIo() { return *this; }
  // RelayIo
  void SendToClient(const FiveTuple& to, base::ByteView bytes) override;
  bool SendDataToClient(const FiveTuple& to, base::ByteView bytes) override;
  // Both of the above, with one lookup: false (nothing sent) when a stream
  // client has more than `stream_backlog` bytes queued.
  bool Send(const FiveTuple& to, base::ByteView bytes, size_t stream_backlog);
  void AllocationEnded(const FiveTuple& tuple) override;
  OpenResult OpenRelay(const base::SocketAddress& bind, void* context) override;
  void CloseRelay(RelayHandle handle) override;
  OpenResult HoldRelay(const base::SocketAddress& bind) override;
  RelayHandle AdoptRelay(HeldSocket held, void* context) override;
  void CloseHeld(HeldSocket held) override;
  SendOutcome SendToPeer(RelayHandle handle, const base::SocketAddress& peer, base::ByteView data,
                         bool dont_fragment) override;

  int index_;
  std::unique_ptr<net::EventLoop> loop_;
  WorkerOptions options_;
  // Declared before server_: the core closes its relay sockets through it
  // when it is destroyed.
  std::unique_ptr<net::UdpSocketSet> relay_sockets_;
  std::unique_ptr<TurnServer> server_;
  std::unique_ptr<net::Timer> sweep_timer_;
  std::vector<std::unique_ptr<net::UdpSocket>> udp_;
  std::vector<StreamListenerEntry> streams_;
  std::vector<std::unique_ptr<net::DtlsSocket>> dtls_;
  std::vector<base::SocketAddress> local_addresses_;
  // stream_setup_timeout of the connections without an allocation yet.
  // Before connections_: their entries are cancelled before they go.
  std::unique_ptr<net::DeadlineQueue<StreamClient>> setup_deadlines_;
  // Node-based: StreamClient addresses stay valid until erased.
  std::unordered_map<StreamKey, StreamClient, StreamKeyHash> connections_;
  std::vector<StreamClient*> dirty_streams_;  // corked by SendToClient
  std::thread thread_;
};

}  // namespace turnkey::relay
