// signal_protocol_test_server: the protocol test app (signal/protocol_test_app.h)
// on 127.0.0.1, for the Node.js tests that drive it with the official
// socket.io-client and engine.io-client.
//
//   signal_protocol_test_server <port> [--ping-interval MS] [--ping-timeout MS]
//                               [--max-payload BYTES] [--connect-timeout MS]
//
// Port 0 picks a free port. Prints the port on its own line once listening.
// Reads commands from stdin, one per line:
//   close-all   closes every Engine.IO session of both servers ("forced
//               close"), so clients see a server-side disconnect and reconnect
// End of stdin shuts the server down (exit status 0).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "base/address.h"
#include "net/event_loop.h"
#include "net/http_server.h"
#include "net/router.h"
#include "signal/protocol_test_app.h"

namespace {

using turnkey::signal::EngineIoCloseReason;

bool ParseNumber(std::string_view text, uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  out = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

int Usage() {
  std::fprintf(stderr,
               "usage: signal_protocol_test_server <port> [--ping-interval MS] "
               "[--ping-timeout MS] [--max-payload BYTES] [--connect-timeout MS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using std::chrono::milliseconds;
  uint64_t port = 0;
  if (argc < 2 || !ParseNumber(argv[1], port) || port > 65535) {
    return Usage();
  }
  turnkey::signal::ProtocolTestAppOptions options;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) {
      return Usage();
    }
    std::string_view flag = argv[i];
    uint64_t value = 0;
    if (!ParseNumber(argv[i + 1], value) || value == 0) {
      return Usage();
    }
    if (flag == "--ping-interval") {
      options.engineio.ping_interval = milliseconds(value);
    } else if (flag == "--ping-timeout") {
      options.engineio.ping_timeout = milliseconds(value);
    } else if (flag == "--max-payload") {
      options.engineio.max_payload = value;
    } else if (flag == "--connect-timeout") {
      options.connect_timeout = milliseconds(value);
    } else {
      return Usage();
    }
  }

  auto loop = turnkey::net::EventLoop::Create();
  if (!loop) {
    std::fprintf(stderr, "event loop: %s\n", loop.error().message.c_str());
    return 1;
  }
  auto app = turnkey::signal::ProtocolTestApp::Create(**loop, options);
  if (!app) {
    std::fprintf(stderr, "protocol test app: %s\n", app.error().message.c_str());
    return 1;
  }
  turnkey::net::Router router;
  if (auto mounted = (*app)->Mount(router); !mounted) {
    std::fprintf(stderr, "router: %s\n", mounted.error().message.c_str());
    return 1;
  }
  turnkey::net::HttpServerOptions http_options;
  // An oversized POST must reach the Engine.IO server (413 with CORS headers).
  http_options.max_body_bytes = options.engineio.max_payload + 64 * 1024;
  turnkey::signal::ProtocolTestApp& mounted_app = **app;
  http_options.on_body_pending = [&mounted_app](const turnkey::net::HttpRequest& head) {
    return mounted_app.OnBodyPending(head);
  };
  auto http = turnkey::net::HttpServer::Create(
      **loop, turnkey::base::SocketAddress::V4({127, 0, 0, 1}, static_cast<uint16_t>(port)),
      nullptr, http_options, router.AsHandler());
  if (!http) {
    std::fprintf(stderr, "listen: %s\n", http.error().message.c_str());
    return 1;
  }
  std::printf("%u\n", static_cast<unsigned>((*http)->local_address().port()));
  std::fflush(stdout);

  turnkey::net::EventLoop& event_loop = **loop;
  turnkey::signal::ProtocolTestApp& test_app = **app;
  std::thread input([&event_loop, &test_app] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line == "close-all") {
        event_loop.Post([&test_app] { test_app.CloseAll(EngineIoCloseReason::kForcedClose); });
      } else if (!line.empty()) {
        std::fprintf(stderr, "unknown command: %s\n", line.c_str());
      }
    }
    event_loop.Stop();
  });
  event_loop.Run();
  input.join();

  // The servers go before the HttpServer whose connections they took over.
  app->reset();
  http->reset();
  return 0;
}
