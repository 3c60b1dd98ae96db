// FakeRelayIo: a RelayIo for driving TurnServer without sockets. It records
// every message to a client and every datagram to a peer, and hands out
// relay handles that tests can feed peer data through.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "relay/relay_io.h"

namespace turnkey::relay {

class FakeRelayIo : public RelayIo {
 public:
  struct ToClient {
    FiveTuple to;
    base::Bytes bytes;
  };
  struct ToPeer {
    RelayHandle handle;
    base::SocketAddress peer;
    base::Bytes bytes;
    bool dont_fragment = false;  // the datagram's own request (Send's DONT-FRAGMENT)
  };
  struct Socket {
    base::SocketAddress bound;
    void* context = nullptr;
  };

  void SendToClient(const FiveTuple& to, base::ByteView bytes) override {
    to_client.push_back({to, base::Bytes(bytes.begin(), bytes.end())});
  }
  bool SendDataToClient(const FiveTuple& to, base::ByteView bytes) override {
    if (client_backlogged) {
      return false;
    }
    SendToClient(to, bytes);
    return true;
  }
  OpenResult OpenRelay(const base::SocketAddress& bind, void* context) override {
    OpenResult result;
    if (busy_ports.count(bind.port()) != 0) {
      result.address_in_use = true;
      return result;
    }
    if (fail_open) {
      return result;
    }
    RelayHandle handle = next_handle++;
    sockets[handle] = Socket{bind, context};
    result.handle = handle;
    result.local = bind;
    ++opened;
    return result;
  }
  void CloseRelay(RelayHandle handle) override {
    sockets.erase(handle);
    ++closed;
  }
  OpenResult HoldRelay(const base::SocketAddress& bind) override {
    OpenResult result;
    if (busy_ports.count(bind.port()) != 0) {
      result.address_in_use = true;
      return result;
    }
    if (fail_hold) {
      return result;
    }
    HeldSocket held = next_handle++;
    this->held[held] = bind;
    result.handle = held;
    result.local = bind;
    ++holds;
    return result;
  }
  RelayHandle AdoptRelay(HeldSocket held, void* context) override {
    auto it = this->held.find(held);
    if (it == this->held.end()) {
      ADD_FAILURE() << "AdoptRelay of unknown held socket " << held;
      return 0;
    }
    const base::SocketAddress bound = it->second;
    this->held.erase(it);
    ++adopted;
    if (fail_open) {
      return 0;  // the held socket is gone with the failure
    }
    // The held socket becomes the relay socket: same handle, no new bind.
    sockets[held] = Socket{bound, context};
    ++opened;
    return held;
  }
  void CloseHeld(HeldSocket held) override {
    if (this->held.erase(held) == 0) {
      ADD_FAILURE() << "CloseHeld of unknown held socket " << held;
      return;
    }
    ++held_closed;
  }
  SendOutcome SendToPeer(RelayHandle handle, const base::SocketAddress& peer, base::ByteView data,
                         bool dont_fragment) override {
    if (sockets.count(handle) == 0 || fail_send) {
      return SendOutcome::kRefused;
    }
    to_peer.push_back({handle, peer, base::Bytes(data.begin(), data.end()), dont_fragment});
    return queue_sends ? SendOutcome::kQueued : SendOutcome::kSent;
  }

  // The held (reserved, unread) socket bound to `port`, or 0.
  HeldSocket HeldForPort(uint16_t port) const {
    for (const auto& [handle, bound] : held) {
      if (bound.port() == port) {
        return handle;
      }
    }
    return 0;
  }

  // The open socket bound to `port`, or 0.
  RelayHandle HandleForPort(uint16_t port) const {
    for (const auto& [handle, socket] : sockets) {
      if (socket.bound.port() == port) {
        return handle;
      }
    }
    return 0;
  }

  // The open socket bound to `bound` (family and port; the IP is not
  // compared, tests bind one IP per family), or 0.
  RelayHandle HandleFor(const base::SocketAddress& bound) const {
    for (const auto& [handle, socket] : sockets) {
      if (socket.bound.family() == bound.family() && socket.bound.port() == bound.port()) {
        return handle;
      }
    }
    return 0;
  }

  std::vector<ToClient> to_client;
  std::vector<ToPeer> to_peer;
  std::map<RelayHandle, Socket> sockets;
  std::map<HeldSocket, base::SocketAddress> held;  // HoldRelay'd, not yet adopted or closed
  std::set<uint16_t> busy_ports;   // OpenRelay and HoldRelay report EADDRINUSE for these
  bool client_backlogged = false;  // SendDataToClient refuses: the client is behind
  bool fail_open = false;          // OpenRelay and AdoptRelay fail (not EADDRINUSE)
  bool fail_hold = false;          // HoldRelay fails (not EADDRINUSE)
  bool fail_send = false;          // SendToPeer reports that the kernel refused
  bool queue_sends = false;        // SendToPeer batches (kQueued); the test reports the flush
  RelayHandle next_handle = 1;
  size_t opened = 0;
  size_t closed = 0;
  size_t holds = 0;        // HoldRelay successes
  size_t adopted = 0;      // AdoptRelay calls (each takes its held socket, even failing)
  size_t held_closed = 0;  // CloseHeld calls
};

}  // namespace turnkey::relay
