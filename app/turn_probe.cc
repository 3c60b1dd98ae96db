#include "app/turn_probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/echo_peer.h"
#include "app/turn_client.h"
#include "auth/turn_rest.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "net/interfaces.h"

namespace turnkey::app {

namespace {

using Clock = std::chrono::steady_clock;

// RFC 8656 s12: the first channel number a client may bind.
constexpr uint16_t kChannel = 0x4000;
// How long a probe credential minted with --secret lives.
constexpr int64_t kMintedTtlSeconds = 600;
// Over UDP a relayed probe packet that has not come back is sent again after
// this long (same bytes), until the per-packet timeout.
constexpr std::chrono::milliseconds kRelayResend{500};

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void Line(const char* label, const std::string& text) {
  std::printf("  %-15s: %s\n", label, text.c_str());
  std::fflush(stdout);
}

void Failed(const std::string& what) {
  std::printf("  FAILED: %s\n", what.c_str());
  std::fflush(stdout);
}

// What an admin can do about a refusal, by error code (RFC 8656 s18.12 list).
std::string HintFor(const TurnError& error) {
  switch (error.code) {
    case 300:
      return "the server is draining or full and sends new allocations to another host "
             "(300 Try Alternate, turn.alternate_servers): probe that one";
    case 401:
      return "the server refused the credentials: wrong user name or password, an expired TURN "
             "REST user name, or a --secret the server does not have";
    case 441:
      return "the server refused these credentials for this allocation (441 Wrong Credentials)";
    case 442:
      return "the server does not relay UDP";
    case 486:
      return "this user has as many allocations as the server allows; wait for old ones to expire";
    case 508:
      return "the server has no relay port or allocation left (508 Insufficient Capacity)";
    case 440:
      return "the server has no relay address of the requested family";
    default:
      return "";
  }
}

std::string Describe(const TurnError& error) {
  std::string hint = HintFor(error);
  return hint.empty() ? error.message : error.message + ": " + hint;
}

struct RttStats {
  std::vector<double> samples_ms;
  int sent = 0;

  std::string Summary() const {
    std::string text = fmt::format("{}/{} echoed", samples_ms.size(), sent);
    if (!samples_ms.empty()) {
      double sum = 0;
      for (double s : samples_ms) {
        sum += s;
      }
      text += fmt::format(", rtt min/avg/max {:.2f}/{:.2f}/{:.2f} ms",
                          *std::min_element(samples_ms.begin(), samples_ms.end()),
                          sum / static_cast<double>(samples_ms.size()),
                          *std::max_element(samples_ms.begin(), samples_ms.end()));
    }
    return text;
  }
  bool all_echoed() const { return static_cast<int>(samples_ms.size()) == sent; }
};

// Sends kRelayCount distinct payloads through `send`, each after the previous
// one came back (or timed out), and measures the round trips. `matches` says
// whether a relayed datagram is the echo of the expected peer and path.
std::string RelayRound(TurnClient& client, const char* tag,
                       const std::function<base::Status(base::ByteView)>& send,
                       const std::function<bool(const RelayedData&)>& matches,
                       std::chrono::milliseconds timeout, RttStats& stats) {
  const bool udp = client.connection().datagram();
  for (int i = 0; i < kRelayCount; ++i) {
    const std::string payload = fmt::format("turnkey probe {} #{} {}", tag, i, base::RandomHex(8));
    const base::ByteView bytes = base::AsBytes(payload);
    const Clock::time_point deadline = Clock::now() + timeout;
    Clock::time_point sent_at = Clock::now();
    if (auto s = send(bytes); !s) {
      return "send: " + s.error().message;
    }
    ++stats.sent;
    Clock::time_point resend_at = udp ? sent_at + kRelayResend : deadline;
    for (;;) {
      const Clock::time_point wait_until = std::min(deadline, resend_at);
      auto got = client.Receive(std::chrono::ceil<std::chrono::milliseconds>(
          std::max(wait_until - Clock::now(), Clock::duration::zero())));
      if (got) {
        if (matches(*got) && base::AsString(got->data) == payload) {
          stats.samples_ms.push_back(MillisSince(sent_at));
          break;
        }
        continue;  // an older echo or someone else's packet
      }
      if (Clock::now() >= deadline) {
        break;  // lost; the summary shows it
      }
      if (Clock::now() < wait_until) {
        return got.error().message;  // the connection broke
      }
      sent_at = Clock::now();
      if (auto s = send(bytes); !s) {
        return "send: " + s.error().message;
      }
      resend_at = sent_at + kRelayResend;
    }
  }
  return "";
}

// A private (RFC 1918, shared 100.64/10) or unique-local (fc00::/7) address.
bool IsPrivate(const base::SocketAddress& address) {
  const base::SocketAddress a = address.Unmapped();
  const uint8_t* b = a.bytes();
  if (a.is_v4()) {
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 100 && (b[1] & 0xC0) == 64);
  }
  return a.is_v6() && (b[0] & 0xFE) == 0xFC;
}

// Whether `server` is an address of the machine the probe runs on.
bool OnThisHost(const base::SocketAddress& server) {
  if (server.Unmapped().IsLoopback()) {
    return true;
  }
  base::SocketAddress ip = server.Unmapped();
  ip.set_port(0);
  for (base::SocketAddress local : net::InterfaceAddresses()) {
    local.set_port(0);
    if (local == ip) {
      return true;
    }
  }
  return false;
}

// Where the echo peer binds; see turn_probe.h.
base::SocketAddress EchoPeerBindAddress(const base::SocketAddress& local,
                                        const base::SocketAddress& relayed) {
  if (local.family() == relayed.family() && !local.IsUnspecified()) {
    base::SocketAddress bind = local;
    bind.set_port(0);
    return bind;
  }
  if (relayed.is_v6()) {
    std::array<uint8_t, 16> loopback{};
    loopback[15] = 1;
    return base::SocketAddress::V6(loopback, 0);
  }
  return base::SocketAddress::V4({127, 0, 0, 1}, 0);
}

}  // namespace

int RunTurnProbe(const ProbeUri& uri, const ProbeArgs& args, std::chrono::milliseconds timeout) {
  TurnClientOptions options;
  options.timeout = timeout;
  options.connection.transport = uri.transport;
  options.connection.connect_timeout = timeout;
  options.connection.verify_peer = !args.insecure;
  if (!args.ca_file.empty()) {
    options.connection.ca_file = args.ca_file;
  }
  std::string credential_note;
  if (!args.secret.empty()) {
    if (!uri.username || uri.password) {
      std::fprintf(stderr,
                   "turnkey probe: with --secret give the user without a password: "
                   "turn://USER@HOST:PORT\n");
      return 2;
    }
    auth::TurnRestCredential minted = auth::MintTurnRestCredential(
        args.secret, *uri.username, base::SystemClock::Instance().UnixSeconds(), kMintedTtlSeconds);
    options.username = minted.username;
    options.password = minted.password;
    credential_note =
        fmt::format(" (TURN REST, minted with --secret, valid {} s)", kMintedTtlSeconds);
  } else {
    if (!uri.username || !uri.password) {
      std::fprintf(stderr,
                   "turnkey probe: TURN needs credentials: turn://USER:PASS@HOST:PORT, or "
                   "turn://USER@HOST:PORT with --secret\n");
      return 2;
    }
    options.username = *uri.username;
    options.password = *uri.password;
  }

  std::printf("probe %s (%s)\n", uri.Display().c_str(), net::TransportName(uri.transport));
  auto connected = TurnClient::Connect(uri.host, uri.port, options);
  if (!connected) {
    Failed("connect: " + connected.error().message);
    return 1;
  }
  TurnClient& client = **connected;
  Line("server", client.connection().peer_address().ToString());
  Line("local address", client.connection().local_address().ToString());
  if (const std::string version = client.connection().tls_version(); !version.empty()) {
    Line("tls", version);
  }
  Line("username", options.username + credential_note);

  Clock::time_point start = Clock::now();
  std::optional<stun::AddressFamily> family;
  if (args.relay_family == "ipv4") {
    family = stun::AddressFamily::kIpv4;
  } else if (args.relay_family == "ipv6") {
    family = stun::AddressFamily::kIpv6;
  }
  auto allocation = client.Allocate(family);
  if (!allocation) {
    Failed("allocate: " + Describe(allocation.error()));
    return 1;
  }
  Line("allocate", fmt::format("ok, {:.2f} ms (realm \"{}\", {})", MillisSince(start),
                               client.realm(), IntegrityModeName(client.integrity_mode())));
  Line("relayed address", allocation->relayed.ToString());
  if (allocation->mapped.family() != base::Family::kNone) {
    Line("mapped address", allocation->mapped.ToString());
  }
  Line("lifetime", fmt::format("{} s", allocation->lifetime_seconds));

  // From here on the allocation exists: free it whatever happens next.
  bool ok = true;
  auto relay_steps = [&]() {
    auto peer = EchoPeer::Start(
        EchoPeerBindAddress(client.connection().local_address(), allocation->relayed));
    if (!peer) {
      Failed("echo peer: " + peer.error().message);
      return false;
    }
    const base::SocketAddress peer_address = (*peer)->address();
    Line("echo peer", peer_address.ToString() + " (UDP echo on this host, started by the probe)");

    start = Clock::now();
    if (auto permitted = client.CreatePermission(peer_address); !permitted) {
      Failed("create permission: " + Describe(permitted.error()));
      base::SocketAddress mapped_ip = allocation->mapped;
      mapped_ip.set_port(0);
      base::SocketAddress local_ip = client.connection().local_address();
      local_ip.set_port(0);
      if (permitted.error().code == 403 && mapped_ip.family() != base::Family::kNone &&
          mapped_ip != local_ip && !peer_address.IsLoopback()) {
        // Behind a NAT the echo peer's address is private: allowing it
        // would not help, the relay cannot reach it.
        std::printf(
            "  hint: this machine is behind a NAT (the server sees it as %s), so the relay cannot "
            "reach the probe's echo peer at %s. Run the probe from a machine with a public "
            "address, or on the server itself.\n",
            mapped_ip.IpString().c_str(), peer_address.IpString().c_str());
      } else if (permitted.error().code == 403) {
        std::printf(
            "  hint: the server refused %s as a peer. The probe's echo peer runs on this host, "
            "so the server must allow its address: turnkey: turn.peers.allow: [%s/%d]; "
            "coturn: --allow-loopback-peers or --allowed-peer-ip=%s.\n",
            peer_address.IpString().c_str(), peer_address.IpString().c_str(),
            peer_address.is_v4() ? 32 : 128, peer_address.IpString().c_str());
      }
      return false;
    }
    Line("permission", fmt::format("ok, {:.2f} ms", MillisSince(start)));

    RttStats send_stats;
    std::string broken = RelayRound(
        client, "send",
        [&](base::ByteView data) { return client.SendIndication(peer_address, data); },
        [&](const RelayedData& d) { return !d.channel && d.peer == peer_address; }, timeout,
        send_stats);
    if (!broken.empty()) {
      Failed("send/data: " + broken);
      return false;
    }
    Line("send/data", send_stats.Summary());
    bool relayed_all = send_stats.all_echoed();
    if (!relayed_all) {
      Failed("send/data: not every packet came back through Send and Data indications");
    }
    // Peers answer the address they see the relay send from: it must be the
    // relayed address clients are told, or a WebRTC peer's packets (sent to
    // the relayed address) never arrive. The echo peer answers whatever it
    // sees, so the echo alone cannot tell.
    if (std::optional<base::SocketAddress> seen = (*peer)->last_source(); seen) {
      if (*seen != allocation->relayed) {
        Line("relay source", seen->ToString() + " (as the echo peer saw it)");
      }
      if (OnThisHost(client.connection().peer_address()) || seen->IsLoopback()) {
        // On the server's own host: the relay reaches the echo peer from the
        // inside, whatever a NAT in front of the host does.
        if (!allocation->relayed.IsLoopback() || *seen != allocation->relayed) {
          std::printf(
              "  note: the probe runs on the server's host, so whether peers see the relay send "
              "from %s cannot be checked here; run the probe from another host.\n",
              allocation->relayed.ToString().c_str());
        }
      } else if (*seen != allocation->relayed && IsPrivate(*seen) &&
                 !IsPrivate(allocation->relayed)) {
        // Inside the server's private network, behind its 1:1 NAT: peers
        // here see the private address; the public one is right.
        std::printf(
            "  note: the relay reached the echo peer from its private address, so the probe runs "
            "inside the server's network; whether peers outside see it send from %s cannot be "
            "checked here: run the probe from outside.\n",
            allocation->relayed.ToString().c_str());
      } else if (*seen != allocation->relayed) {
        Failed(fmt::format(
            "the relay sends from {} but tells clients {} (XOR-RELAYED-ADDRESS): peers that "
            "answer the relayed address are not heard",
            seen->ToString(), allocation->relayed.ToString()));
        std::printf(
            "  hint: behind a 1:1 NAT, give the server its public address: turnkey: "
            "turn.relay.external_addresses: [%s]; coturn: --external-ip=%s/<private address>.\n",
            seen->IpString().c_str(), seen->IpString().c_str());
        relayed_all = false;
      }
    }

    start = Clock::now();
    if (auto bound = client.ChannelBind(kChannel, peer_address); !bound) {
      Failed("channel bind: " + Describe(bound.error()));
      return false;
    }
    Line("channel bind",
         fmt::format("ok, channel 0x{:04x}, {:.2f} ms", kChannel, MillisSince(start)));

    RttStats channel_stats;
    broken = RelayRound(
        client, "channel",
        [&](base::ByteView data) { return client.SendChannelData(kChannel, data); },
        [&](const RelayedData& d) { return d.channel == kChannel; }, timeout, channel_stats);
    if (!broken.empty()) {
      Failed("channel data: " + broken);
      return false;
    }
    Line("channel data", channel_stats.Summary());
    if (!channel_stats.all_echoed()) {
      Failed("channel data: not every packet came back through the channel");
      relayed_all = false;
    }
    return relayed_all;
  };
  ok = relay_steps();

  start = Clock::now();
  auto freed = client.Refresh(0);
  if (!freed) {
    Failed("refresh (lifetime 0): " + Describe(freed.error()));
    ok = false;
  } else {
    Line("refresh 0", fmt::format("ok, allocation freed, {:.2f} ms", MillisSince(start)));
  }
  if (client.stale_nonce_retries() > 0) {
    Line("stale nonce", fmt::format("{} request(s) answered 438, retried with the new nonce",
                                    client.stale_nonce_retries()));
  }
  std::printf(ok ? "  ok\n" : "  FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace turnkey::app
