// RawClient: a small blocking HTTP/1.1 + WebSocket client for the Engine.IO
// and Socket.IO server tests. It writes requests and RFC 6455 frames byte by
// byte (client frames masked) and parses the server's answers itself, so the
// tests see exactly what goes on the wire. Never use it on the server's loop
// thread. Not thread-safe; one connection per object.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "net/blocking_client.h"
#include "net/http_headers.h"

namespace turnkey::signal::testing {

using namespace std::chrono_literals;

struct HttpReply {
  int status = 0;
  net::HttpHeaders headers;
  std::string body;
};

struct WsMessage {
  int opcode = 0;  // 1 text, 2 binary, 8 close, 9 ping, 10 pong
  std::string payload;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class RawClient {
 public:
  // Connects to 127.0.0.1:`port`; null on failure.
  static std::unique_ptr<RawClient> Connect(uint16_t port);

  // Writes one request with Host, Content-Length (when `body` is not empty
  // or the method is POST) and `headers`.
  bool SendRequest(std::string_view method, std::string_view target, std::string_view body = {},
                   const HeaderList& headers = {});
  // Writes `bytes` as they are (a request cut in parts, an odd version).
  bool SendRaw(std::string_view bytes);
  // Reads one response; nullopt on timeout or when the server closed first.
  std::optional<HttpReply> ReadReply(std::chrono::milliseconds timeout = 5s);
  std::optional<HttpReply> Request(std::string_view method, std::string_view target,
                                   std::string_view body = {}, const HeaderList& headers = {});

  // Sends a WebSocket upgrade request for `target` and reads the answer (101
  // or an error). After a 101 the WebSocket calls below apply.
  std::optional<HttpReply> Upgrade(std::string_view target, const HeaderList& headers = {});
  bool SendFrame(int opcode, std::string_view payload);
  bool SendText(std::string_view text) { return SendFrame(1, text); }
  bool SendBinary(std::string_view bytes) { return SendFrame(2, bytes); }
  // The next frame (unfragmented frames only); nullopt on timeout or close.
  std::optional<WsMessage> ReadMessage(std::chrono::milliseconds timeout = 5s);
  // True once the server closed the TCP connection (waits up to `timeout`),
  // skipping whatever frames or bytes arrive before.
  bool WaitClosed(std::chrono::milliseconds timeout = 5s);

 private:
  explicit RawClient(std::unique_ptr<net::BlockingClient> client) : client_(std::move(client)) {}
  std::unique_ptr<net::BlockingClient> client_;
};

// The text of an Engine.IO polling body split on 0x1E.
std::vector<std::string> SplitPayload(std::string_view body);

}  // namespace turnkey::signal::testing
