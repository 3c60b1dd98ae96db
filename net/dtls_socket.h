// DtlsSocket: datagrams over DTLS 1.2 on one UDP socket, one association per
// client address (STUN and TURN over DTLS: RFC 7350, RFC 8656 section 3.1).
//
// A ClientHello from an address with no association first gets a
// HelloVerifyRequest carrying a stateless cookie (RFC 6347 section 4.2.1); only
// a ClientHello that returns it creates an association, so a spoofed source
// costs the server one small answer and no memory. Each application record
// received is handed to the handler as one datagram; Send() sends one as one
// record.
//
// An association ends with the client's close_notify, a fatal alert or
// decryption failure, its timeout, or a new handshake from the same
// address (a ClientHello with a new random: a client that restarted on the
// same port, whether or not the old handshake finished); the close handler
// then runs. Timeouts: `setup_timeout` after it began, unless
// Hold() gave it an idle timeout instead (the owner's reason to keep it: a
// TURN allocation); Release() puts it back under the setup timeout.
//
// Loop thread only. Handlers may call Send(), Hold() and Release(), none of
// which ends an association, but must not destroy the socket.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"
#include "net/udp_socket.h"

struct bio_st;
struct ssl_st;

namespace turnkey::net {

class ConnectionBudget;
class EventLoop;
class TlsContext;
class Timer;

struct DtlsSocketOptions {
  // The UDP socket under it (reuse_port, buffers, receive_destinations...).
  UdpSocketOptions udp;
  // Largest DTLS datagram the server sends during a handshake (RFC 6347
  // section 4.1.1.1): longer flights are fragmented to fit. 1200 bytes
  // crosses every path an IPv6 packet can. Application records are not
  // split: each is one datagram whatever its size.
  size_t mtu = 1200;
  // An association without Hold() ends this long after it began (or after
  // Release()), finished handshake or not. Default 30 s.
  std::chrono::milliseconds setup_timeout{std::chrono::seconds(30)};
  // Associations not held at once; one more ends the oldest of them. 0 =
  // none. Default 0.
  size_t max_pending = 0;
  // How often timeouts and handshake retransmissions are checked. Default 250 ms.
  std::chrono::milliseconds tick{250};
  // Associations per client (ConnectionBudget: its per-client limit and
  // exemptions; share one between sockets). A handshake past it is refused
  // after the cookie. Null = none.
  std::shared_ptr<ConnectionBudget> budget;
};

class DtlsSocket {
 public:
  // An association's addresses: the client's, and the local one it wrote to
  // (on a wildcard bind, from receive_destinations; else the bound address).
  struct Peer {
    base::SocketAddress client;
    base::SocketAddress server;
    friend bool operator==(const Peer&, const Peer&) = default;
  };
  using MessageHandler = std::function<void(const Peer& peer, base::ByteView datagram)>;
  using CloseHandler = std::function<void(const Peer& peer)>;
  // Runs after each batch of received datagrams has been handled (and after
  // each timeout tick that ended associations), for owners that gather output.
  using BatchDoneHandler = std::function<void()>;

  // Binds `bind` and starts reading. `tls` must be a server context
  // (TlsContext::dtls_native()).
  static base::Result<std::unique_ptr<DtlsSocket>> Create(
      EventLoop& loop, const base::SocketAddress& bind, const DtlsSocketOptions& options,
      std::shared_ptr<TlsContext> tls, MessageHandler on_message, CloseHandler on_close,
      BatchDoneHandler on_batch_done = nullptr);
  ~DtlsSocket();
  DtlsSocket(const DtlsSocket&) = delete;
  DtlsSocket& operator=(const DtlsSocket&) = delete;

  // Sends `datagram` as one record to an association whose handshake is
  // done; false (nothing sent) when there is none.
  bool Send(const Peer& peer, base::ByteView datagram);
  // Keeps the association while it receives a record at least every `idle`;
  // it no longer counts against max_pending. False when there is none.
  bool Hold(const Peer& peer, std::chrono::milliseconds idle);
  // Back under the setup timeout, from now, and counted as pending.
  void Release(const Peer& peer);
  // New associations use `tls`; established ones keep theirs.
  void SetTlsContext(std::shared_ptr<TlsContext> tls);

  const base::SocketAddress& local_address() const { return udp_->local_address(); }
  // Associations, handshaking or established.
  size_t size() const { return sessions_.size(); }
  // HelloVerifyRequests sent (each a ClientHello without a valid cookie).
  uint64_t cookies_sent() const { return cookies_sent_; }

 private:
  struct Session;
  struct PeerHash {
    size_t operator()(const Peer& p) const { return p.client.Hash() * 31 + p.server.Hash(); }
  };
  // What the BIO of an SSL reads and writes: the datagram being handled, and
  // where its output goes. Every SSL has its own, so output written while
  // another association is being served goes to the right client.
  struct Io {
    DtlsSocket* owner = nullptr;
    Peer peer;
    base::ByteView input;
    uint64_t writes = 0;  // datagrams written
  };
  friend struct DtlsBio;

  DtlsSocket(const DtlsSocketOptions& options, std::shared_ptr<TlsContext> tls,
             MessageHandler on_message, CloseHandler on_close, BatchDoneHandler on_batch_done);
  void OnDatagram(base::MonoTime now, const Peer& peer, base::ByteView data);
  // A ClientHello from an address without an association (or replacing
  // one): answered with a cookie, or, with a valid cookie, the start of an
  // association.
  void Listen(base::MonoTime now, const Peer& peer, base::ByteView data);
  // Feeds `data` to the association and hands on what it decrypts. False
  // when the association ended (it is gone then).
  bool Serve(base::MonoTime now, Session& session, base::ByteView data);
  // Refuses the handshake `client_hello` began: a fatal alert.
  void SendRefusal(const Peer& peer, base::ByteView client_hello);
  // Removes the association; runs the close handler if `tell`.
  void End(const Peer& peer, bool tell, bool notify_client);
  // Sends one DTLS datagram of `peer`'s association (the BIO's write).
  void Output(const Peer& peer, base::ByteView datagram);
  void OnTick();
  void EvictOldestPending();
  // A fresh SSL for the listener (cookie exchange) with its own BIO.
  bool ResetListener();
  static bio_st* NewBio(Io* io);

  DtlsSocketOptions options_;
  std::shared_ptr<TlsContext> tls_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  BatchDoneHandler on_batch_done_;
  std::unique_ptr<UdpSocket> udp_;
  std::unique_ptr<Timer> tick_;
  std::unordered_map<Peer, std::unique_ptr<Session>, PeerHash> sessions_;
  size_t pending_ = 0;  // sessions not held
  // The listener: one SSL that only answers ClientHellos with cookies until
  // one comes back valid, then becomes that client's association.
  ssl_st* listener_ = nullptr;
  Io listener_io_;  // the socket never moves: a stable address for its BIO
  std::vector<unsigned char> plaintext_;
  uint64_t cookies_sent_ = 0;
};

}  // namespace turnkey::net
