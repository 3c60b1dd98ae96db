// RelayIo: everything the sans-I/O TURN core asks of the engine around it.
//
// The worker implements it with real sockets (relay/worker.cc); unit tests
// implement it with a recording fake. The core never sees a descriptor: a
// relay socket is an opaque handle, and datagrams a peer sends to it come
// back through TurnServer::OnPeerData() with the `context` given at open.
//
// Per-packet calls (SendToClient, SendToPeer) must not allocate or log.
#pragma once

#include <cstdint>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "relay/five_tuple.h"

namespace turnkey::relay {

// An open relay socket, opaque to the core. 0 is never a valid handle.
using RelayHandle = uintptr_t;
// A bound relay socket nobody reads yet: port + 1 of an EVEN-PORT
// reservation (RFC 8656 section 7.2), holding the port until an Allocate with
// its RESERVATION-TOKEN adopts it. Opaque; 0 is never valid. Unlike a
// RelayHandle it belongs to no worker: the RelayIo of any worker may adopt
// or close one that another worker's RelayIo made.
using HeldSocket = uintptr_t;

// What became of a datagram handed to RelayIo::SendToPeer.
enum class SendOutcome : uint8_t {
  kSent,     // the kernel took it
  kQueued,   // batched: what the kernel does with it comes back later, through
             // TurnServer::OnPeerSendsDone
  kRefused,  // not sent (kernel refused it, or it could not be queued)
};

// Where the core's messages to clients go.
class ClientSink {
 public:
  virtual ~ClientSink() = default;
  // Sends `bytes` to the client of `to`. `bytes` is only valid during the call.
  virtual void SendToClient(const FiveTuple& to, base::ByteView bytes) = 0;
  // SendToClient for relayed data (a Data indication or ChannelData from a
  // peer): false, and nothing sent, when the client's stream is too far
  // behind to take it now. A TCP/TLS client whose link stalls (a phone in a
  // tunnel) then loses datagrams, as it would over UDP, instead of getting
  // seconds of stale media later or its connection (and so its allocation)
  // closed at the output limit.
  virtual bool SendDataToClient(const FiveTuple& to, base::ByteView bytes) {
    SendToClient(to, bytes);
    return true;
  }
  // The allocation of TCP/TLS client `tuple` was deleted (Refresh 0 or
  // expiry) while its connection stays open: it is a connection without an
  // allocation again.
  virtual void AllocationEnded(const FiveTuple& /*tuple*/) {}
};

class RelayIo : public ClientSink {
 public:
  struct OpenResult {
    RelayHandle handle = 0;       // 0 when the socket could not be opened
    bool address_in_use = false;  // the port was taken by someone else
    base::SocketAddress local;    // the bound address (port included)
  };

  // Binds a UDP relay socket to `bind` (a concrete port). Datagrams it
  // receives are handed to TurnServer::OnPeerData(now, context, ...), and
  // the ICMP errors the kernel matches to what it sends to
  // TurnServer::OnPeerIcmp(now, context, ...).
  virtual OpenResult OpenRelay(const base::SocketAddress& bind, void* context) = 0;
  // Closes a relay socket; what was queued on it is sent first.
  virtual void CloseRelay(RelayHandle handle) = 0;
  // Binds a UDP socket to `bind` (a concrete port) that holds the port
  // without reading; `handle` of the result is a HeldSocket. The caller owns
  // it until AdoptRelay() or CloseHeld().
  virtual OpenResult HoldRelay(const base::SocketAddress& bind) = 0;
  // Makes `held` a relay socket of this RelayIo, as OpenRelay() would have
  // (same `context` meaning). Takes `held` whether or not
  // it succeeds; returns 0 on failure.
  virtual RelayHandle AdoptRelay(HeldSocket held, void* context) = 0;
  // Closes a held socket that was never adopted.
  virtual void CloseHeld(HeldSocket held) = 0;
  // Sends one datagram from a relay socket to a peer; with `dont_fragment`,
  // with the DF bit set whatever the socket does otherwise (a Send
  // indication's DONT-FRAGMENT, RFC 8656 section 11.2). A kQueued datagram
  // must be reported exactly once through TurnServer::OnPeerSendsDone when
  // the batch holding it is flushed; kSent and kRefused ones never are.
  virtual SendOutcome SendToPeer(RelayHandle handle, const base::SocketAddress& peer,
                                 base::ByteView data, bool dont_fragment) = 0;
};

}  // namespace turnkey::relay
