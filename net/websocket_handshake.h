// The server side of the RFC 6455 opening handshake (s4.2): checking the
// upgrade request's header values and producing the 101 response bytes.
//
// Pure functions: no I/O, no clock, no logging. The HTTP layer parses the
// request (and checks it is HTTP/1.1 or later), passes the header values here,
// writes the returned bytes, and hands the connection to a WebSocketSession.
// Thread-safe.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace turnkey::net {

class HttpHeaders;

// Header values of an upgrade request as received. A header sent several
// times is passed joined with ", " (RFC 9110 s5.3). Absent headers are empty.
struct WebSocketHandshakeRequest {
  std::string_view method;      // request method, must be GET
  std::string_view upgrade;     // Upgrade: must list "websocket"
  std::string_view connection;  // Connection: must list "upgrade"
  std::string_view version;     // Sec-WebSocket-Version: must be 13
  std::string_view key;         // Sec-WebSocket-Key: base64 of 16 bytes
};

// Why an upgrade request is refused. Every value has a static description
// (WebSocketHandshakeErrorText). The caller answers 400, except kBadVersion,
// which RFC 6455 s4.4 answers with 426 and "Sec-WebSocket-Version: 13".
enum class WebSocketHandshakeError : uint8_t {
  kNotGet,             // method is not GET (s4.1 item 2)
  kNoUpgrade,          // Upgrade does not list "websocket"
  kNoConnectionToken,  // Connection does not list "upgrade"
  kBadVersion,         // Sec-WebSocket-Version is not 13
  kBadKey,             // Sec-WebSocket-Key missing or not base64 of 16 bytes
  kBadExtraHeader,     // an extra response header has a bad name or a CR/LF/NUL in its value
};

const char* WebSocketHandshakeErrorText(WebSocketHandshakeError error);

// Extra response header lines, e.g. {"Access-Control-Allow-Origin", origin}.
using HttpHeaderList = std::span<const std::pair<std::string_view, std::string_view>>;

// Sec-WebSocket-Accept for `key` (s4.2.2 item 5.4): base64 of the SHA-1 of the
// key (surrounding spaces/tabs trimmed) followed by the RFC's GUID.
std::string WebSocketAcceptKey(std::string_view key);

// Checks the request header values (s4.2.1). Token lists are compared
// case-insensitively, values trimmed of spaces and tabs.
std::expected<void, WebSocketHandshakeError> ValidateWebSocketHandshake(
    const WebSocketHandshakeRequest& request);

// The complete "HTTP/1.1 101 Switching Protocols" response for `key`, with
// `extra_headers` after the required ones, ending with the blank line. Fails
// only with kBadExtraHeader: a name that is not an HTTP token, or a value with
// CR, LF or NUL (it may echo peer input such as Origin, so it is checked).
std::expected<std::string, WebSocketHandshakeError> BuildWebSocketHandshakeResponse(
    std::string_view key, HttpHeaderList extra_headers = {});

// The subprotocol to accept for a request's Sec-WebSocket-Protocol fields
// (s4.2.2 item 5.4; s4.1: tokens in the client's order of preference): the
// first one, as the ws server of the reference does. The 101 must then carry
// it in Sec-WebSocket-Protocol, or a client that asked for one fails the
// connection. nullopt when none is offered, or when an element is not a
// token (ws answers 400 there; the server here just selects none). Several
// fields are one list and empty elements are skipped (RFC 9110 s5.6.1). The
// view points into `headers`.
std::optional<std::string_view> SelectWebSocketSubprotocol(const HttpHeaders& headers);

// The handshake values of an upgrade request with `method` and `headers`,
// checked as ValidateWebSocketHandshake does, except that the Upgrade and
// Connection tokens may be in any of their field lines. The views point
// into `headers` (the first field of each). A Sec-WebSocket-Key sent in more
// than one field is kBadKey: s11.3.1 allows it once, and which key the 101
// would then answer is ambiguous.
std::expected<WebSocketHandshakeRequest, WebSocketHandshakeError> ParseWebSocketHandshake(
    std::string_view method, const HttpHeaders& headers);

// ValidateWebSocketHandshake, then BuildWebSocketHandshakeResponse.
std::expected<std::string, WebSocketHandshakeError> AcceptWebSocketHandshake(
    const WebSocketHandshakeRequest& request, HttpHeaderList extra_headers = {});

}  // namespace turnkey::net
