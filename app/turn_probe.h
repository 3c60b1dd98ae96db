// The TURN half of `turnkey probe`: what an admin runs after deploying a TURN
// server (turnkey or any other) to see that it relays.
//
// Steps, each printed with its outcome and round-trip time:
//   1. connect over UDP, TCP or TLS;
//   2. Allocate (401 challenge, then authenticated; 438 retried);
//   3. start a UDP echo peer on this host: on the local IP the probe uses to
//      reach the server when that IP has the relay's address family, otherwise
//      on loopback of the relay's family (127.0.0.1 or ::1). The server must
//      accept that address as a peer: a server with a safe default policy
//      refuses loopback and private peers unless an allow rule names them
//      (turnkey: turn.peers.allow; coturn: --allow-loopback-peers or
//      --allowed-peer-ip), and the probe says so when CreatePermission gets 403;
//   4. CreatePermission for the peer;
//   5. kRelayCount packets through Send indications, echoed back as Data
//      indications (RTT min/avg/max);
//   6. ChannelBind, then kRelayCount packets as ChannelData both ways;
//   7. Refresh with LIFETIME 0, which frees the allocation.
// After a failure past step 2 the allocation is still freed. Exit code 0 only
// when every step worked, 1 when one failed, 2 for bad arguments.
#pragma once

#include <chrono>

#include "app/commands.h"
#include "app/probe_uri.h"

namespace turnkey::app {

inline constexpr int kRelayCount = 5;

// `uri.is_turn()` must hold. `timeout` bounds every request and every echo.
int RunTurnProbe(const ProbeUri& uri, const ProbeArgs& args, std::chrono::milliseconds timeout);

}  // namespace turnkey::app
