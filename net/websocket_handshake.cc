#include "net/websocket_handshake.h"

#include "base/bytes.h"
#include "base/crypto.h"
#include "net/http_headers.h"

namespace turnkey::net {

namespace {

// RFC 6455 s1.3: appended to the client's key before hashing.
constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kKeyBytes = 16;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) {
      return false;
    }
  }
  return true;
}

// True if the comma-separated `list` has an element equal to `token`.
bool ListHasToken(std::string_view list, std::string_view token) {
  while (true) {
    size_t comma = list.find(',');
    if (EqualsIgnoreCase(Trim(list.substr(0, comma)), token)) {
      return true;
    }
    if (comma == std::string_view::npos) {
      return false;
    }
    list.remove_prefix(comma + 1);
  }
}

bool IsValidHeader(std::string_view name, std::string_view value) {
  return IsHttpToken(name) &&
         value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

}  // namespace

const char* WebSocketHandshakeErrorText(WebSocketHandshakeError error) {
  switch (error) {
    case WebSocketHandshakeError::kNotGet:
      return "WebSocket upgrade must use GET";
    case WebSocketHandshakeError::kNoUpgrade:
      return "Upgrade header does not name websocket";
    case WebSocketHandshakeError::kNoConnectionToken:
      return "Connection header does not contain upgrade";
    case WebSocketHandshakeError::kBadVersion:
      return "unsupported Sec-WebSocket-Version (13 required)";
    case WebSocketHandshakeError::kBadKey:
      return "missing or malformed Sec-WebSocket-Key";
    case WebSocketHandshakeError::kBadExtraHeader:
      return "invalid extra response header";
  }
  return "unknown WebSocket handshake error";
}

std::string WebSocketAcceptKey(std::string_view key) {
  std::string input(Trim(key));
  input.append(kAcceptGuid);
  const base::Sha1Digest digest = base::Sha1(base::AsBytes(input));
  return base::Base64Encode(digest);
}

namespace {

// The checks of s4.2.1 after the method and the token lists.
std::expected<void, WebSocketHandshakeError> CheckVersionAndKey(std::string_view version,
                                                                std::string_view key) {
  if (Trim(version) != "13") {
    return std::unexpected(WebSocketHandshakeError::kBadVersion);
  }
  // s4.1 item 7: a nonce of 16 bytes, base64-encoded (always 24 characters).
  auto nonce = base::Base64Decode(Trim(key));
  if (!nonce || nonce->size() != kKeyBytes) {
    return std::unexpected(WebSocketHandshakeError::kBadKey);
  }
  return {};
}

}  // namespace

std::expected<void, WebSocketHandshakeError> ValidateWebSocketHandshake(
    const WebSocketHandshakeRequest& request) {
  // Methods are case-sensitive (RFC 9110 s9.1).
  if (request.method != "GET") {
    return std::unexpected(WebSocketHandshakeError::kNotGet);
  }
  if (!ListHasToken(request.upgrade, "websocket")) {
    return std::unexpected(WebSocketHandshakeError::kNoUpgrade);
  }
  if (!ListHasToken(request.connection, "upgrade")) {
    return std::unexpected(WebSocketHandshakeError::kNoConnectionToken);
  }
  return CheckVersionAndKey(request.version, request.key);
}

std::expected<WebSocketHandshakeRequest, WebSocketHandshakeError> ParseWebSocketHandshake(
    std::string_view method, const HttpHeaders& headers) {
  // s11.3.1: Sec-WebSocket-Key MUST NOT appear more than once in a request
  // (two keys joined in one field already fail the base64 check below).
  if (headers.Count("Sec-WebSocket-Key") > 1) {
    return std::unexpected(WebSocketHandshakeError::kBadKey);
  }
  if (method != "GET") {
    return std::unexpected(WebSocketHandshakeError::kNotGet);
  }
  // The tokens may be in any field line of either list (RFC 9110 s5.3: a
  // line each for "Connection: keep-alive" and "Connection: Upgrade" is one
  // list), which HttpHeaders reads as such.
  if (!headers.HasToken("Upgrade", "websocket")) {
    return std::unexpected(WebSocketHandshakeError::kNoUpgrade);
  }
  if (!headers.HasToken("Connection", "upgrade")) {
    return std::unexpected(WebSocketHandshakeError::kNoConnectionToken);
  }
  WebSocketHandshakeRequest request;
  request.method = method;
  request.upgrade = headers.Get("Upgrade").value_or("");
  request.connection = headers.Get("Connection").value_or("");
  request.version = headers.Get("Sec-WebSocket-Version").value_or("");
  request.key = headers.Get("Sec-WebSocket-Key").value_or("");
  if (auto valid = CheckVersionAndKey(request.version, request.key); !valid) {
    return std::unexpected(valid.error());
  }
  return request;
}

std::expected<std::string, WebSocketHandshakeError> BuildWebSocketHandshakeResponse(
    std::string_view key, HttpHeaderList extra_headers) {
  std::string out =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  out.append(WebSocketAcceptKey(key));
  out.append("\r\n");
  for (const auto& [name, value] : extra_headers) {
    if (!IsValidHeader(name, value)) {
      return std::unexpected(WebSocketHandshakeError::kBadExtraHeader);
    }
    out.append(name);
    out.append(": ");
    out.append(Trim(value));
    out.append("\r\n");
  }
  out.append("\r\n");
  return out;
}

std::optional<std::string_view> SelectWebSocketSubprotocol(const HttpHeaders& headers) {
  std::optional<std::string_view> first;
  const bool malformed =
      headers.AnyListElement("Sec-WebSocket-Protocol", [&first](std::string_view element) {
        if (!IsHttpToken(element)) {
          return true;  // s4.1: each element is a token
        }
        if (!first) {
          first = element;
        }
        return false;
      });
  return malformed ? std::nullopt : first;
}

std::expected<std::string, WebSocketHandshakeError> AcceptWebSocketHandshake(
    const WebSocketHandshakeRequest& request, HttpHeaderList extra_headers) {
  if (auto valid = ValidateWebSocketHandshake(request); !valid) {
    return std::unexpected(valid.error());
  }
  return BuildWebSocketHandshakeResponse(request.key, extra_headers);
}

}  // namespace turnkey::net
