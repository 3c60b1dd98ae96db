// STUN and TURN server URIs as handed to WebRTC clients (the `urls` of an
// RTCIceServer), RFC 7064 (stun:, stuns:) and RFC 7065 (turn:, turns:):
//
//   scheme ":" host [ ":" port ] [ "?transport=" ( "udp" / "tcp" ) ]
//
// with the query only on turn: and turns:. Stricter than the RFC grammar in
// what real clients would choke on anyway: the scheme must be lower-case, a
// host is an IPv4 address, a bracketed IPv6 address (no zone) or a name of
// letters, digits and "-._~" (no percent-encoding), a port is 1-65535, and
// the transport is udp or tcp (no transport-ext). One parser for the config
// check and for the credentials built from it, so a URL the config takes
// never fails later. Pure.
#pragma once

#include <string_view>

#include "base/status.h"

namespace turnkey::base {

enum class IceUrlScheme { kStun, kTurn };  // stuns: and turns: are kStun and kTurn

// The kind of `url`, or kInvalidArgument saying what is wrong with it (the
// caller names the URL).
Result<IceUrlScheme> ParseIceUrl(std::string_view url);

}  // namespace turnkey::base
