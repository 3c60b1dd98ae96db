// WebSocket handshake helpers and WebSocketSession over a real loopback
// listener. The client is a raw blocking socket on the test thread that
// writes RFC 6455 frames byte by byte (masked unless a test says otherwise)
// and parses the server's frames itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "net/blocking_client.h"
#include "net/event_loop.h"
#include "net/http_headers.h"
#include "net/stream_listener.h"
#include "net/websocket_handshake.h"
#include "net/websocket_session.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using base::Bytes;
using base::ByteView;
using testing::LoopThread;
using testing::MakeLoop;

constexpr std::string_view kSampleKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 s1.3
// RFC 6455 s1.3 and s4.2.2 (computed independently: SHA-1 of key + GUID, base64).
constexpr std::string_view kSampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// ---- Handshake helpers ------------------------------------------------------

WebSocketHandshakeRequest GoodRequest() {
  WebSocketHandshakeRequest request;
  request.method = "GET";
  request.upgrade = "websocket";
  request.connection = "Upgrade";
  request.version = "13";
  request.key = kSampleKey;
  return request;
}

TEST(WebSocketHandshakeTest, AcceptKeyMatchesRfc6455Example) {
  EXPECT_EQ(WebSocketAcceptKey(kSampleKey), kSampleAccept);
  EXPECT_EQ(WebSocketAcceptKey(" dGhlIHNhbXBsZSBub25jZQ==\t"), kSampleAccept);
}

TEST(WebSocketHandshakeTest, AcceptsValidRequests) {
  EXPECT_TRUE(ValidateWebSocketHandshake(GoodRequest()).has_value());
  // Firefox sends "keep-alive, Upgrade"; tokens are case-insensitive.
  WebSocketHandshakeRequest request = GoodRequest();
  request.connection = "keep-alive, Upgrade";
  request.upgrade = "WebSocket";
  request.version = " 13 ";
  EXPECT_TRUE(ValidateWebSocketHandshake(request).has_value());
  request.connection = "upgrade,keep-alive";
  request.upgrade = "h2c, websocket";
  EXPECT_TRUE(ValidateWebSocketHandshake(request).has_value());
}

TEST(WebSocketHandshakeTest, RejectsMalformedRequests) {
  struct Case {
    const char* name;
    void (*edit)(WebSocketHandshakeRequest&);
    WebSocketHandshakeError error;
  };
  const Case cases[] = {
      {"post", [](WebSocketHandshakeRequest& r) { r.method = "POST"; },
       WebSocketHandshakeError::kNotGet},
      {"lower-case get", [](WebSocketHandshakeRequest& r) { r.method = "get"; },
       WebSocketHandshakeError::kNotGet},
      {"no upgrade", [](WebSocketHandshakeRequest& r) { r.upgrade = ""; },
       WebSocketHandshakeError::kNoUpgrade},
      {"upgrade h2c", [](WebSocketHandshakeRequest& r) { r.upgrade = "h2c"; },
       WebSocketHandshakeError::kNoUpgrade},
      {"upgrade prefix", [](WebSocketHandshakeRequest& r) { r.upgrade = "websockets"; },
       WebSocketHandshakeError::kNoUpgrade},
      {"no connection", [](WebSocketHandshakeRequest& r) { r.connection = ""; },
       WebSocketHandshakeError::kNoConnectionToken},
      {"keep-alive only", [](WebSocketHandshakeRequest& r) { r.connection = "keep-alive"; },
       WebSocketHandshakeError::kNoConnectionToken},
      {"version 8", [](WebSocketHandshakeRequest& r) { r.version = "8"; },
       WebSocketHandshakeError::kBadVersion},
      {"no version", [](WebSocketHandshakeRequest& r) { r.version = ""; },
       WebSocketHandshakeError::kBadVersion},
      {"version list", [](WebSocketHandshakeRequest& r) { r.version = "13, 8"; },
       WebSocketHandshakeError::kBadVersion},
      {"no key", [](WebSocketHandshakeRequest& r) { r.key = ""; },
       WebSocketHandshakeError::kBadKey},
      {"15-byte key", [](WebSocketHandshakeRequest& r) { r.key = "AAAAAAAAAAAAAAAAAAAA"; },
       WebSocketHandshakeError::kBadKey},
      {"17-byte key", [](WebSocketHandshakeRequest& r) { r.key = "AAAAAAAAAAAAAAAAAAAAAAA="; },
       WebSocketHandshakeError::kBadKey},
      {"not base64", [](WebSocketHandshakeRequest& r) { r.key = "dGhlIHNhbXBsZSBub25jZQ!!"; },
       WebSocketHandshakeError::kBadKey},
  };
  for (const Case& c : cases) {
    WebSocketHandshakeRequest request = GoodRequest();
    c.edit(request);
    auto result = ValidateWebSocketHandshake(request);
    ASSERT_FALSE(result.has_value()) << c.name;
    EXPECT_EQ(result.error(), c.error) << c.name;
    EXPECT_NE(std::string(WebSocketHandshakeErrorText(result.error())), "") << c.name;
  }
}

TEST(WebSocketHandshakeTest, SelectsTheFirstOfferedSubprotocol) {
  // As the ws server's default handleProtocols: the client's first choice.
  struct Case {
    std::vector<std::string> offered;  // one Sec-WebSocket-Protocol field each
    std::optional<std::string_view> selected;
  };
  const Case cases[] = {
      {{"v1.signal"}, "v1.signal"},
      {{"chat, superchat"}, "chat"},
      {{" chat ,superchat\t"}, "chat"},
      {{"x-Custom_1!"}, "x-Custom_1!"},
      // Several fields are one list; empty elements do not count (RFC 9110
      // section 5.6.1).
      {{"chat", "superchat"}, "chat"},
      {{",chat"}, "chat"},
      {{"chat,,superchat"}, "chat"},
      // None offered, or an element that is not a token: none selected.
      {{}, std::nullopt},
      {{""}, std::nullopt},
      {{"  "}, std::nullopt},
      {{"chat super"}, std::nullopt},
      {{"chat, super/chat"}, std::nullopt},
      {{"chat", "super chat"}, std::nullopt},
      {{"\"chat\""}, std::nullopt},
      {{std::string("chat\0", 5)}, std::nullopt},
  };
  for (const Case& c : cases) {
    HttpHeaders headers;
    headers.Add("Host", "example.org");
    for (const std::string& field : c.offered) {
      headers.Add("Sec-WebSocket-Protocol", field);
    }
    const std::string label = c.offered.empty() ? "-" : c.offered[0];
    EXPECT_EQ(SelectWebSocketSubprotocol(headers), c.selected) << label;
  }
}

TEST(WebSocketHandshakeTest, ParsesRequestHeadersAndRefusesARepeatedKey) {
  HttpHeaders headers;
  headers.Add("Host", "example.org");
  headers.Add("Upgrade", "websocket");
  headers.Add("Connection", "keep-alive, Upgrade");
  headers.Add("Sec-WebSocket-Version", "13");
  headers.Add("Sec-WebSocket-Key", std::string(kSampleKey));
  auto request = ParseWebSocketHandshake("GET", headers);
  ASSERT_TRUE(request.has_value()) << WebSocketHandshakeErrorText(request.error());
  EXPECT_EQ(request->method, "GET");
  EXPECT_EQ(request->upgrade, "websocket");
  EXPECT_EQ(request->connection, "keep-alive, Upgrade");
  EXPECT_EQ(request->version, "13");
  EXPECT_EQ(request->key, kSampleKey);
  EXPECT_EQ(ParseWebSocketHandshake("POST", headers).error(), WebSocketHandshakeError::kNotGet);

  // RFC 6455 s11.3.1: Sec-WebSocket-Key MUST NOT appear more than once,
  // neither as a second field (even with the same key) nor joined in one.
  const std::string other_key = "AQIDBAUGBwgJCgsMDQ4PEA==";
  for (const std::string& second : {other_key, std::string(kSampleKey)}) {
    HttpHeaders twice = headers;
    twice.Add("Sec-WebSocket-Key", second);
    auto refused = ParseWebSocketHandshake("GET", twice);
    ASSERT_FALSE(refused.has_value()) << second;
    EXPECT_EQ(refused.error(), WebSocketHandshakeError::kBadKey) << second;
  }
  HttpHeaders joined = headers;
  joined.Set("Sec-WebSocket-Key", std::string(kSampleKey) + ", " + other_key);
  EXPECT_EQ(ParseWebSocketHandshake("GET", joined).error(), WebSocketHandshakeError::kBadKey);
  HttpHeaders none = headers;
  none.Remove("Sec-WebSocket-Key");
  EXPECT_EQ(ParseWebSocketHandshake("GET", none).error(), WebSocketHandshakeError::kBadKey);

  // The Connection and Upgrade tokens may come in separate field lines
  // (RFC 9110 section 5.3), as some proxies send them.
  HttpHeaders split = headers;
  split.Set("Connection", "keep-alive");
  split.Add("Connection", "Upgrade");
  split.Set("Upgrade", "h2c");
  split.Add("Upgrade", "websocket");
  EXPECT_TRUE(ParseWebSocketHandshake("GET", split).has_value());
  HttpHeaders neither = headers;
  neither.Set("Connection", "keep-alive");
  EXPECT_EQ(ParseWebSocketHandshake("GET", neither).error(),
            WebSocketHandshakeError::kNoConnectionToken);
}

TEST(WebSocketHandshakeTest, BuildsExactResponse) {
  auto response = AcceptWebSocketHandshake(GoodRequest());
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(*response,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "\r\n");
  const std::pair<std::string_view, std::string_view> extra[] = {
      {"Access-Control-Allow-Origin", "https://app.example"}, {"X-Test", "1"}};
  response = BuildWebSocketHandshakeResponse(kSampleKey, extra);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(*response,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Access-Control-Allow-Origin: https://app.example\r\n"
            "X-Test: 1\r\n"
            "\r\n");
}

TEST(WebSocketHandshakeTest, RefusesHeaderInjection) {
  const std::pair<std::string_view, std::string_view> bad_value[] = {
      {"Access-Control-Allow-Origin", "x\r\nSet-Cookie: a=b"}};
  EXPECT_EQ(BuildWebSocketHandshakeResponse(kSampleKey, bad_value).error(),
            WebSocketHandshakeError::kBadExtraHeader);
  const std::pair<std::string_view, std::string_view> bad_name[] = {{"Bad Name", "v"}};
  EXPECT_EQ(BuildWebSocketHandshakeResponse(kSampleKey, bad_name).error(),
            WebSocketHandshakeError::kBadExtraHeader);
  const std::pair<std::string_view, std::string_view> empty_name[] = {{"", "v"}};
  EXPECT_EQ(BuildWebSocketHandshakeResponse(kSampleKey, empty_name).error(),
            WebSocketHandshakeError::kBadExtraHeader);
}

// ---- Raw client framing -----------------------------------------------------

constexpr uint8_t kContinuation = 0x0;
constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xA;

struct FrameSpec {
  uint8_t opcode = kText;
  bool fin = true;
  bool masked = true;
  uint8_t rsv = 0;
};

// One client frame (RFC 6455 s5.2), masked with a fixed key unless told not to.
Bytes MakeFrame(FrameSpec spec, ByteView payload) {
  Bytes out;
  out.push_back(static_cast<uint8_t>((spec.fin ? 0x80 : 0) | (spec.rsv << 4) | spec.opcode));
  const uint8_t mask_bit = spec.masked ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<uint8_t>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    out.push_back(mask_bit | 126);
    base::AppendBe16(out, static_cast<uint16_t>(payload.size()));
  } else {
    out.push_back(mask_bit | 127);
    base::AppendBe32(out, 0);
    base::AppendBe32(out, static_cast<uint32_t>(payload.size()));
  }
  const uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};
  if (spec.masked) {
    out.insert(out.end(), key, key + 4);
  }
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(spec.masked ? static_cast<uint8_t>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return out;
}

Bytes MakeFrame(FrameSpec spec, std::string_view payload) {
  return MakeFrame(spec, base::AsBytes(payload));
}

// A frame with a hand-made header (`head`: the first byte, the mask bit with
// the 7-bit length, any extended length), then the mask key and `payload`
// masked: for length encodings MakeFrame never produces.
Bytes MakeRawFrame(std::initializer_list<uint8_t> head, std::string_view payload) {
  Bytes out(head);
  const uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};
  out.insert(out.end(), key, key + 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<uint8_t>(payload[i] ^ key[i % 4]));
  }
  return out;
}

Bytes ClosePayload(uint16_t code, std::string_view reason) {
  // Sized up front: GCC 12 warns wrongly (-Warray-bounds) about an insert
  // after two push_backs once optimized.
  Bytes out(2 + reason.size());
  base::StoreBe16(out.data(), code);
  std::copy(reason.begin(), reason.end(), out.begin() + 2);
  return out;
}

// Length of the first complete server frame in `buffered`, 0 if incomplete.
base::Result<size_t> ServerFrameLength(ByteView buffered) {
  if (buffered.size() < 2) {
    return 0;
  }
  size_t header = 2;
  uint64_t length = buffered[1] & 0x7F;
  if (length == 126) {
    header = 4;
    if (buffered.size() < header) {
      return 0;
    }
    length = base::LoadBe16(buffered.data() + 2);
  } else if (length == 127) {
    header = 10;
    if (buffered.size() < header) {
      return 0;
    }
    length = base::LoadBe64(buffered.data() + 2);
  }
  if ((buffered[1] & 0x80) != 0) {
    return base::InvalidArgument("server frames must not be masked");
  }
  return buffered.size() >= header + length ? header + length : 0;
}

base::Result<size_t> HttpHeadLength(ByteView buffered) {
  size_t end = base::AsString(buffered).find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : end + 4;
}

struct ServerFrame {
  bool fin = false;
  uint8_t opcode = 0xFF;
  std::string payload;
  uint16_t close_code() const {
    return payload.size() >= 2 ? base::LoadBe16(reinterpret_cast<const uint8_t*>(payload.data()))
                               : 0;
  }
  std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

ServerFrame ParseServerFrame(const Bytes& frame) {
  ServerFrame out;
  out.fin = (frame[0] & 0x80) != 0;
  out.opcode = frame[0] & 0x0F;
  size_t header = 2;
  if ((frame[1] & 0x7F) == 126) {
    header = 4;
  } else if ((frame[1] & 0x7F) == 127) {
    header = 10;
  }
  out.payload.assign(frame.begin() + static_cast<ptrdiff_t>(header), frame.end());
  return out;
}

// ---- Server under test ------------------------------------------------------

struct ServerOptions {
  WebSocketOptions websocket;
  // Consume the whole first read in the "HTTP" handler and hand the bytes
  // after the request to the session as already_read.
  bool hand_over_leftover = false;
  // Close(4000, "done") when a text message "close-me" arrives.
  bool close_on_request = true;
  // When set, answers the text messages other than "close-me" and
  // "ping-me" instead of the echo.
  std::function<void(WebSocketSession& session, std::string_view text)> on_text;
};

// An echo server: text and binary messages come back unchanged; "ping-me"
// makes the server ping with payload "srv"; "close-me" makes it close.
class WsServer {
 public:
  explicit WsServer(ServerOptions options) : options_(std::move(options)) {
    loop_ = MakeLoop();
    if (!loop_) {
      return;
    }
    auto listener = StreamListener::Create(
        *loop_, *base::SocketAddress::ParseIp("127.0.0.1", 0), {}, nullptr,
        [this](StreamConnection& connection) {
          connection.SetCallbacks(
              [this](StreamConnection& c, ByteView data) { return OnHttp(c, data); }, nullptr);
        });
    EXPECT_TRUE(listener.has_value()) << listener.error().message;
    if (listener) {
      listener_ = std::move(*listener);
    }
  }
  ~WsServer() {
    // Sessions go before the listener that owns their connections.
    sessions_.clear();
    listener_.reset();
  }

  bool ok() const { return listener_ != nullptr; }
  EventLoop& loop() { return *loop_; }
  uint16_t port() const { return listener_->local_address().port(); }
  std::future<WebSocketCloseInfo> closed() { return closed_.get_future(); }
  std::future<std::string> pong() { return pong_.get_future(); }

 private:
  size_t OnHttp(StreamConnection& connection, ByteView data) {
    auto head = HttpHeadLength(data);
    if (!head || *head == 0) {
      return 0;
    }
    // A deliberately small parser: request line, then "Name: value" lines.
    std::string_view text = base::AsString(data.first(*head));
    std::map<std::string, std::string> headers;
    std::string method(text.substr(0, text.find(' ')));
    size_t pos = text.find("\r\n") + 2;
    while (pos < text.size()) {
      size_t end = text.find("\r\n", pos);
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        continue;
      }
      std::string name(line.substr(0, colon));
      for (char& ch : name) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      headers[name] = std::string(line.substr(colon + 1));
    }
    WebSocketHandshakeRequest request;
    request.method = method;
    request.upgrade = headers["upgrade"];
    request.connection = headers["connection"];
    request.version = headers["sec-websocket-version"];
    request.key = headers["sec-websocket-key"];
    auto response = AcceptWebSocketHandshake(request);
    if (!response) {
      connection.Write(base::AsBytes("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
      connection.Close();
      return data.size();
    }
    connection.Write(base::AsBytes(*response));
    ByteView leftover = options_.hand_over_leftover ? data.subspan(*head) : ByteView();
    auto session =
        WebSocketSession::Create(*loop_, connection, leftover, options_.websocket, MakeCallbacks());
    EXPECT_TRUE(session.has_value());
    if (session) {
      sessions_[connection.id()] = std::move(*session);
    }
    return options_.hand_over_leftover ? data.size() : *head;
  }

  WebSocketSession::Callbacks MakeCallbacks() {
    WebSocketSession::Callbacks callbacks;
    callbacks.on_text = [this](WebSocketSession& session, std::string_view text) {
      if (text == "close-me" && options_.close_on_request) {
        session.Close(4000, "done");
        EXPECT_FALSE(session.is_open());
        EXPECT_FALSE(session.SendText("late"));
        return;
      }
      if (text == "ping-me") {
        EXPECT_TRUE(session.Ping(base::AsBytes(std::string_view("srv"))));
        return;
      }
      if (options_.on_text) {
        options_.on_text(session, text);
        return;
      }
      EXPECT_TRUE(session.SendText(text));
    };
    callbacks.on_binary = [](WebSocketSession& session, ByteView data) {
      EXPECT_TRUE(session.SendBinary(data));
    };
    callbacks.on_pong = [this](WebSocketSession&, ByteView payload) {
      pong_.set_value(std::string(base::AsString(payload)));
    };
    callbacks.on_close = [this](WebSocketSession& session, const WebSocketCloseInfo& info) {
      EXPECT_FALSE(session.is_open());
      EXPECT_FALSE(session.SendText("after close"));
      EXPECT_EQ(session.buffered_amount(), 0u);
      closed_.set_value(info);
      auto it = sessions_.find(session.id());
      if (it != sessions_.end()) {
        loop_->DeleteLater(std::move(it->second));
        sessions_.erase(it);
      }
    };
    return callbacks;
  }

  ServerOptions options_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<StreamListener> listener_;
  std::unordered_map<uint64_t, std::unique_ptr<WebSocketSession>> sessions_;  // loop thread
  std::promise<WebSocketCloseInfo> closed_;
  std::promise<std::string> pong_;
};

std::string UpgradeRequest() {
  return "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
         "Host: 127.0.0.1\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         std::string(kSampleKey) +
         "\r\n"
         "Sec-WebSocket-Version: 13\r\n"
         "\r\n";
}

// A connected client that has completed the opening handshake.
class WsClient {
 public:
  explicit WsClient(uint16_t port, ByteView after_request = {}) {
    BlockingClientOptions options;
    options.transport = Transport::kTcp;
    auto client = BlockingClient::Connect("127.0.0.1", port, options);
    EXPECT_TRUE(client.has_value()) << client.error().message;
    if (!client) {
      return;
    }
    client_ = std::move(*client);
    const std::string upgrade = UpgradeRequest();
    Bytes request(upgrade.begin(), upgrade.end());
    base::AppendBytes(request, after_request);
    EXPECT_TRUE(client_->Send(request, 5s).has_value());
    auto head = client_->ReceiveFrame(HttpHeadLength, 5s);
    EXPECT_TRUE(head.has_value()) << head.error().message;
    if (head) {
      head_ = std::string(base::AsString(*head));
    }
  }

  bool ok() const { return client_ != nullptr && !head_.empty(); }
  const std::string& head() const { return head_; }

  void Send(const Bytes& bytes) { EXPECT_TRUE(client_->Send(bytes, 5s).has_value()); }

  // The next server frame; opcode 0xFF if none arrived.
  ServerFrame Next() {
    const Bytes frame = NextRaw();
    return frame.empty() ? ServerFrame{} : ParseServerFrame(frame);
  }

  // The next server frame as it came, header included; empty if none arrived.
  Bytes NextRaw() {
    auto frame = client_->ReceiveFrame(ServerFrameLength, 5s);
    EXPECT_TRUE(frame.has_value()) << frame.error().message;
    return frame ? std::move(*frame) : Bytes();
  }

  // True if the server closed TCP with no further frame.
  bool AtEof() {
    auto frame = client_->ReceiveFrame(ServerFrameLength, 5s);
    return !frame.has_value() && frame.error().message.find("peer closed") != std::string::npos;
  }

  void Disconnect() { client_.reset(); }

 private:
  std::unique_ptr<BlockingClient> client_;
  std::string head_;
};

WebSocketCloseInfo WaitClosed(std::future<WebSocketCloseInfo>& closed) {
  EXPECT_EQ(closed.wait_for(5s), std::future_status::ready);
  return closed.valid() ? closed.get() : WebSocketCloseInfo{};
}

class WebSocketSessionTest : public ::testing::Test {
 protected:
  // Starts the server with `options` on its own loop thread.
  void Start(ServerOptions options = {}) {
    server_ = std::make_unique<WsServer>(std::move(options));
    ASSERT_TRUE(server_->ok());
    closed_ = server_->closed();
    thread_ = std::make_unique<LoopThread>(server_->loop());
    thread_->Start();
  }
  void TearDown() override {
    thread_.reset();  // joins the loop before the server goes
    server_.reset();
  }
  uint16_t port() const { return server_->port(); }
  // Starts the server with messages of at most `bytes`.
  void StartWithMessageLimit(size_t bytes) {
    ServerOptions options;
    options.websocket.max_message_bytes = bytes;
    Start(options);
  }
  // The server failed the connection: a close frame with `code`, then TCP
  // closed, and the session reports `code`. Returns what it reported.
  WebSocketCloseInfo ExpectFailedWith(WsClient& client, uint16_t code) {
    ServerFrame close = client.Next();
    EXPECT_EQ(close.opcode, kClose);
    EXPECT_EQ(close.close_code(), code);
    EXPECT_TRUE(client.AtEof());
    WebSocketCloseInfo info = WaitClosed(closed_);
    EXPECT_EQ(info.code, code);
    return info;
  }

  std::unique_ptr<WsServer> server_;
  std::unique_ptr<LoopThread> thread_;
  std::future<WebSocketCloseInfo> closed_;
};

TEST_F(WebSocketSessionTest, HandshakeAndTextBinaryEcho) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.head().rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(client.head().find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);

  client.Send(MakeFrame({.opcode = kText}, "hello"));
  ServerFrame echo = client.Next();
  EXPECT_TRUE(echo.fin);
  EXPECT_EQ(echo.opcode, kText);
  EXPECT_EQ(echo.payload, "hello");

  const uint8_t bytes[] = {0x00, 0x01, 0x02, 0xFF, 0x1E};
  client.Send(MakeFrame({.opcode = kBinary}, ByteView(bytes)));
  echo = client.Next();
  EXPECT_EQ(echo.opcode, kBinary);
  EXPECT_EQ(echo.payload, std::string("\x00\x01\x02\xFF\x1E", 5));

  // Empty and 16-bit-length messages.
  client.Send(MakeFrame({.opcode = kText}, ""));
  EXPECT_EQ(client.Next().payload, "");
  std::string big(70000, 'x');
  client.Send(MakeFrame({.opcode = kText}, big));
  EXPECT_EQ(client.Next().payload, big);
}

TEST_F(WebSocketSessionTest, WholeFramesInOneReadAndAFrameCutAcrossReads) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  // Three whole messages in one send (with 7-, 16- and 64-bit lengths),
  // then the first half of a fourth: the whole ones come back in order and
  // the cut one once its end arrives.
  const std::string mid(300, 'm');
  const std::string big(70000, 'b');
  Bytes all = MakeFrame({.opcode = kText}, "one");
  base::AppendBytes(all, MakeFrame({.opcode = kText}, mid));
  base::AppendBytes(all, MakeFrame({.opcode = kBinary}, big));
  const Bytes fourth = MakeFrame({.opcode = kText}, "h\xC3\xA9llo");
  const size_t cut = 5;  // inside the mask
  all.insert(all.end(), fourth.begin(), fourth.begin() + cut);
  client.Send(all);
  EXPECT_EQ(client.Next().payload, "one");
  EXPECT_EQ(client.Next().payload, mid);
  ServerFrame echo = client.Next();
  EXPECT_EQ(echo.opcode, kBinary);
  EXPECT_EQ(echo.payload, big);
  client.Send(Bytes(fourth.begin() + cut, fourth.end()));
  EXPECT_EQ(client.Next().payload, "h\xC3\xA9llo");
  // And a whole message after that, with a ping behind it in the same read.
  Bytes more = MakeFrame({.opcode = kText}, "two");
  base::AppendBytes(more, MakeFrame({.opcode = kPing}, "p2"));
  client.Send(more);
  EXPECT_EQ(client.Next().payload, "two");
  ServerFrame pong = client.Next();
  EXPECT_EQ(pong.opcode, kPong);
  EXPECT_EQ(pong.payload, "p2");
}

// ---- SendText(head, text) ----------------------------------------------------

// `size` letters in which no two places a few bytes or a few pages apart
// look alike, so a byte lost, repeated or moved shows.
std::string TextOf(size_t size) {
  std::string text(size, ' ');
  for (size_t i = 0; i < size; ++i) {
    uint64_t x = (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15u;
    x ^= x >> 29;
    text[i] = static_cast<char>('a' + (x >> 32) % 26);
  }
  return text;
}

// ServerOptions::on_text: answers "<head>|<n>" with SendText(head, TextOf(n)).
void AnswerWithHead(WebSocketSession& session, std::string_view request) {
  const size_t bar = request.find('|');
  ASSERT_NE(bar, std::string_view::npos) << request;
  const std::string text = TextOf(std::stoul(std::string(request.substr(bar + 1))));
  EXPECT_TRUE(session.SendText(request.substr(0, bar), text));
}

// The request AnswerWithHead answers with `head` and `size` letters.
Bytes AskWithHead(std::string_view head, size_t size) {
  return MakeFrame({.opcode = kText}, std::string(head) + "|" + std::to_string(size));
}

// `frame` (as the client received it, header included) is one final text
// frame holding `payload`, its length in the form s5.2 prescribes for it: 7
// bits up to 125, 126 and 16 bits up to 65535, 127 and 64 bits above.
void ExpectTextFrame(const Bytes& frame, const std::string& payload) {
  ASSERT_GE(frame.size(), 2u);
  EXPECT_EQ(frame[0], 0x80 | kText);
  size_t header = 2;
  if (payload.size() < 126) {
    EXPECT_EQ(frame[1], payload.size());
  } else if (payload.size() <= 0xFFFF) {
    ASSERT_GE(frame.size(), 4u);
    EXPECT_EQ(frame[1], 126);
    EXPECT_EQ(base::LoadBe16(frame.data() + 2), payload.size());
    header = 4;
  } else {
    ASSERT_GE(frame.size(), 10u);
    EXPECT_EQ(frame[1], 127);
    EXPECT_EQ(base::LoadBe64(frame.data() + 2), payload.size());
    header = 10;
  }
  ASSERT_EQ(frame.size(), header + payload.size());
  const std::string_view got = base::AsString(ByteView(frame).subspan(header));
  // Where they differ first, not a megabyte of text.
  const auto mismatch = std::mismatch(got.begin(), got.end(), payload.begin());
  EXPECT_TRUE(mismatch.first == got.end())
      << "payload of " << payload.size() << " bytes wrong from byte "
      << (mismatch.first - got.begin());
}

TEST_F(WebSocketSessionTest, SendTextWithAHeadIsOneMessageOfTheHeadThenTheText) {
  ServerOptions options;
  options.on_text = AnswerWithHead;
  Start(options);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  struct Case {
    std::string_view head;
    size_t text;  // letters after it
  };
  // Payloads at the edges of the three length forms (1 to 125 bytes, 126 to
  // 65535, then 65536 and up), an empty head and an empty text, and 1.5 MB
  // (a frame the socket may take in several sends, the rest queued).
  const Case cases[] = {
      {"4", 0},  {"4", 6},    {"42[\"event\",", 114}, {"4", 125}, {"42", 65533}, {"4", 65535},
      {"", 300}, {"", 70000}, {"4", 1'500'000},       {"4", 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.head) + "|" + std::to_string(c.text));
    client.Send(AskWithHead(c.head, c.text));
    ExpectTextFrame(client.NextRaw(), std::string(c.head) + TextOf(c.text));
  }
}

TEST_F(WebSocketSessionTest, SendTextWithAHeadQueuedBehindWslaysOutputArrivesWholeAndInOrder) {
  // A ping and three requests in one read: wslay takes them in one receive
  // and queues its pong before the handler runs. The answers, made inside
  // that receive, must not overtake the pong, so they are queued with wslay
  // (head and text joined) and leave after it, whole and in order, with
  // each of the three length forms.
  ServerOptions options;
  options.on_text = AnswerWithHead;
  Start(options);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes all = MakeFrame({.opcode = kPing}, "first");
  base::AppendBytes(all, AskWithHead("4", 9));
  base::AppendBytes(all, AskWithHead("42", 300));
  base::AppendBytes(all, AskWithHead("4", 70000));
  client.Send(all);
  ServerFrame pong = client.Next();
  EXPECT_EQ(pong.opcode, kPong);
  EXPECT_EQ(pong.payload, "first");
  ExpectTextFrame(client.NextRaw(), "4" + TextOf(9));
  ExpectTextFrame(client.NextRaw(), "42" + TextOf(300));
  ExpectTextFrame(client.NextRaw(), "4" + TextOf(70000));
  // With nothing queued any more, written straight again.
  client.Send(AskWithHead("4", 5));
  ExpectTextFrame(client.NextRaw(), "4" + TextOf(5));
}

TEST_F(WebSocketSessionTest, MessagesBehindACloseInTheSameReadAreDropped) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes all = MakeFrame({.opcode = kText}, "close-me");
  base::AppendBytes(all, MakeFrame({.opcode = kText}, "dropped"));
  client.Send(all);
  ServerFrame close = client.Next();
  EXPECT_EQ(close.opcode, kClose);
  EXPECT_EQ(close.close_code(), 4000);
  client.Send(MakeFrame({.opcode = kClose}, ClosePayload(4000, "")));
  EXPECT_TRUE(client.AtEof());
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 4000);
  EXPECT_TRUE(info.clean);
}

TEST_F(WebSocketSessionTest, ReassemblesFragmentsWithControlFramesBetween) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  // "héllo" with the two bytes of "é" (C3 A9) in different fragments, and a
  // ping between fragments (s5.4: control frames may be interleaved).
  Bytes all = MakeFrame({.opcode = kText, .fin = false}, "h\xC3");
  base::AppendBytes(all, MakeFrame({.opcode = kPing}, "p1"));
  base::AppendBytes(all, MakeFrame({.opcode = kContinuation, .fin = false}, "\xA9l"));
  base::AppendBytes(all, MakeFrame({.opcode = kContinuation, .fin = true}, "lo"));
  client.Send(all);
  ServerFrame pong = client.Next();
  EXPECT_EQ(pong.opcode, kPong);
  EXPECT_EQ(pong.payload, "p1");
  ServerFrame echo = client.Next();
  EXPECT_EQ(echo.opcode, kText);
  EXPECT_EQ(echo.payload, "h\xC3\xA9llo");

  // A fragmented binary message delivered byte by byte.
  Bytes binary = MakeFrame({.opcode = kBinary, .fin = false}, "ab");
  base::AppendBytes(binary, MakeFrame({.opcode = kContinuation}, "cd"));
  for (uint8_t b : binary) {
    client.Send(Bytes{b});
  }
  echo = client.Next();
  EXPECT_EQ(echo.opcode, kBinary);
  EXPECT_EQ(echo.payload, "abcd");
}

TEST_F(WebSocketSessionTest, AMessageSpreadOverRoundTripsSurvivesTheIdleRelease) {
  // The session drops its wslay context between messages; mid-message (and
  // mid-frame) it must keep it. The pong proves the first fragment was read.
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes first = MakeFrame({.opcode = kText, .fin = false}, "ab");
  base::AppendBytes(first, MakeFrame({.opcode = kPing}, "mid"));
  client.Send(first);
  ServerFrame pong = client.Next();
  EXPECT_EQ(pong.opcode, kPong);
  EXPECT_EQ(pong.payload, "mid");
  client.Send(MakeFrame({.opcode = kContinuation, .fin = true}, "cd"));
  ServerFrame echo = client.Next();
  EXPECT_EQ(echo.opcode, kText);
  EXPECT_EQ(echo.payload, "abcd");

  // A frame with a 16-bit length, its header and payload in two sends, then
  // whole messages again.
  const std::string long_text(300, 'z');
  Bytes frame = MakeFrame({.opcode = kText}, long_text);
  client.Send(Bytes(frame.begin(), frame.begin() + 3));
  client.Send(Bytes(frame.begin() + 3, frame.end()));
  EXPECT_EQ(client.Next().payload, long_text);
  for (const char* text : {"one", "two"}) {
    client.Send(MakeFrame({.opcode = kText}, text));
    EXPECT_EQ(client.Next().payload, text);
  }
}

TEST_F(WebSocketSessionTest, AnswersPingWithPongAndReportsPongs) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  client.Send(MakeFrame({.opcode = kPing}, "are you there"));
  ServerFrame pong = client.Next();
  EXPECT_EQ(pong.opcode, kPong);
  EXPECT_EQ(pong.payload, "are you there");

  auto server_pong = server_->pong();
  client.Send(MakeFrame({.opcode = kText}, "ping-me"));
  ServerFrame ping = client.Next();
  EXPECT_EQ(ping.opcode, kPing);
  EXPECT_EQ(ping.payload, "srv");
  client.Send(MakeFrame({.opcode = kPong}, "srv"));
  ASSERT_EQ(server_pong.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(server_pong.get(), "srv");
}

TEST_F(WebSocketSessionTest, LeftoverBytesFromTheHttpLayerAreProcessed) {
  ServerOptions options;
  options.hand_over_leftover = true;
  Start(options);
  // The first frame travels in the same write as the upgrade request.
  WsClient client(port(), MakeFrame({.opcode = kText}, "early"));
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.Next().payload, "early");
  client.Send(MakeFrame({.opcode = kText}, "later"));
  EXPECT_EQ(client.Next().payload, "later");
}

TEST_F(WebSocketSessionTest, BytesBehindTheRequestReachTheSessionThroughTheConnection) {
  Start();
  Bytes two = MakeFrame({.opcode = kText}, "one");
  base::AppendBytes(two, MakeFrame({.opcode = kText}, "two"));
  WsClient client(port(), two);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.Next().payload, "one");
  EXPECT_EQ(client.Next().payload, "two");
}

TEST_F(WebSocketSessionTest, OversizedMessageCloses1009) {
  StartWithMessageLimit(16);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  client.Send(MakeFrame({.opcode = kBinary}, std::string(16, 'a')));  // at the limit
  EXPECT_EQ(client.Next().payload.size(), 16u);
  client.Send(MakeFrame({.opcode = kBinary}, std::string(17, 'a')));
  WebSocketCloseInfo info = ExpectFailedWith(client, 1009);
  EXPECT_FALSE(info.by_peer);
  EXPECT_FALSE(info.clean);
}

TEST_F(WebSocketSessionTest, OversizedFragmentedMessageCloses1009) {
  StartWithMessageLimit(16);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes frames = MakeFrame({.opcode = kText, .fin = false}, std::string(10, 'a'));
  base::AppendBytes(frames, MakeFrame({.opcode = kContinuation}, std::string(10, 'b')));
  client.Send(frames);
  ExpectFailedWith(client, 1009);
}

TEST_F(WebSocketSessionTest, OversizedFrameHeaderCloses1009BeforeItsPayload) {
  // The header alone says the message cannot fit: the close must not wait
  // for a payload byte (a peer could announce 2^62 bytes and send nothing).
  const uint8_t mask[4] = {0x37, 0xFA, 0x21, 0x3D};
  struct Case {
    const char* name;
    Bytes before;  // whole frames first
    Bytes header;  // then just this header, mask key included
  };
  Bytes fragment = MakeFrame({.opcode = kText, .fin = false}, std::string(10, 'a'));
  const Case cases[] = {
      {"17 bytes", {}, {0x82, 0x80 | 17}},
      {"2^62 bytes", {}, {0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0}},
      {"continuation past the rest", fragment, {0x80, 0x80 | 7}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    StartWithMessageLimit(16);
    WsClient client(port());
    ASSERT_TRUE(client.ok());
    Bytes bytes = c.before;
    base::AppendBytes(bytes, c.header);
    bytes.insert(bytes.end(), mask, mask + 4);
    client.Send(bytes);
    WebSocketCloseInfo info = ExpectFailedWith(client, 1009);
    EXPECT_FALSE(info.by_peer);
    TearDown();
  }
}

TEST_F(WebSocketSessionTest, AFailedConnectionLingersSoAPeerStillSendingGetsTheClose) {
  // The peer announces 1 MB and keeps sending it after the 1009: the server
  // must not close with that input unread (a reset, which fails the peer's
  // send and can cost it the close frame), but half-close and drop the rest.
  StartWithMessageLimit(16);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  const std::string payload(1000 * 1000, 'a');
  const Bytes frame = MakeFrame({.opcode = kBinary}, payload);
  const size_t half = frame.size() / 2;
  client.Send(Bytes(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(half)));
  // The session is done with it at once: on_close does not wait for the linger.
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 1009);
  client.Send(Bytes(frame.begin() + static_cast<std::ptrdiff_t>(half), frame.end()));
  ServerFrame close = client.Next();
  EXPECT_EQ(close.opcode, kClose);
  EXPECT_EQ(close.close_code(), 1009);
  EXPECT_TRUE(client.AtEof());
}

TEST_F(WebSocketSessionTest, FragmentsUpToTheLimitPassAndControlFramesDoNotCount) {
  StartWithMessageLimit(16);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes frames = MakeFrame({.opcode = kText, .fin = false}, std::string(10, 'a'));
  base::AppendBytes(frames, MakeFrame({.opcode = kPing}, std::string(5, 'p')));
  base::AppendBytes(frames, MakeFrame({.opcode = kContinuation}, std::string(6, 'b')));
  base::AppendBytes(frames, MakeFrame({.opcode = kBinary}, std::string(16, 'c')));
  client.Send(frames);
  ServerFrame pong = client.Next();
  EXPECT_EQ(pong.opcode, kPong) << pong.close_code();
  EXPECT_EQ(client.Next().payload, std::string(10, 'a') + std::string(6, 'b'));
  EXPECT_EQ(client.Next().payload, std::string(16, 'c'));
}

// RFC 6455 s10.4: a message of many tiny fragments costs more memory than
// its payload; past 16 fragments each counts 128 bytes toward the limit.
TEST_F(WebSocketSessionTest, AMessageOfManyTinyFragmentsCloses1009WithinItsPayloadLimit) {
  StartWithMessageLimit(500);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes frames = MakeFrame({.opcode = kText, .fin = false}, "a");
  for (int i = 0; i < 20; ++i) {
    base::AppendBytes(frames, MakeFrame({.opcode = kContinuation, .fin = false}, "b"));
  }
  client.Send(frames);
  ExpectFailedWith(client, 1009);  // 21 payload bytes, and 5 x 128 past the 16th frame
}

TEST_F(WebSocketSessionTest, SixteenFragmentsCountTheirPayloadOnly) {
  StartWithMessageLimit(16);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  Bytes frames = MakeFrame({.opcode = kText, .fin = false}, "a");
  for (int i = 0; i < 14; ++i) {
    base::AppendBytes(frames, MakeFrame({.opcode = kContinuation, .fin = false}, "b"));
  }
  base::AppendBytes(frames, MakeFrame({.opcode = kContinuation}, "c"));
  client.Send(frames);
  EXPECT_EQ(client.Next().payload, "a" + std::string(14, 'b') + "c");
}

// Frames that fail the connection with a close code, one connection each.
struct ViolationCase {
  const char* name;
  Bytes frames;
  uint16_t wire_code;  // the code in the server's close frame
};

std::vector<ViolationCase> ViolationCases() {
  std::vector<ViolationCase> cases;
  cases.push_back({"unmasked text", MakeFrame({.opcode = kText, .masked = false}, "hi"), 1002});
  cases.push_back({"unmasked ping", MakeFrame({.opcode = kPing, .masked = false}, ""), 1002});
  cases.push_back({"bad utf-8", MakeFrame({.opcode = kText}, "\xC3\x28"), 1007});
  cases.push_back({"truncated utf-8", MakeFrame({.opcode = kText}, "ok\xE2\x82"), 1007});
  cases.push_back({"utf-16 surrogate", MakeFrame({.opcode = kText}, "\xED\xA0\x80"), 1007});
  cases.push_back({"overlong", MakeFrame({.opcode = kText}, "\xC0\xAF"), 1007});
  Bytes split_bad = MakeFrame({.opcode = kText, .fin = false}, "\xE2\x82");
  base::AppendBytes(split_bad, MakeFrame({.opcode = kContinuation}, "x"));
  cases.push_back({"bad utf-8 across fragments", split_bad, 1007});
  cases.push_back({"rsv1 set", MakeFrame({.opcode = kText, .rsv = 4}, "hi"), 1002});
  cases.push_back({"reserved opcode 3", MakeFrame({.opcode = 0x3}, "hi"), 1002});
  cases.push_back({"reserved opcode B", MakeFrame({.opcode = 0xB}, ""), 1002});
  cases.push_back({"continuation first", MakeFrame({.opcode = kContinuation}, "hi"), 1002});
  Bytes interleaved = MakeFrame({.opcode = kText, .fin = false}, "a");
  base::AppendBytes(interleaved, MakeFrame({.opcode = kText}, "b"));
  cases.push_back({"new message inside a fragmented one", interleaved, 1002});
  cases.push_back({"close code 1005", MakeFrame({.opcode = kClose}, ClosePayload(1005, "")), 1002});
  cases.push_back({"close code 999", MakeFrame({.opcode = kClose}, ClosePayload(999, "")), 1002});
  cases.push_back(
      {"close reason not utf-8", MakeFrame({.opcode = kClose}, ClosePayload(1000, "\xFF")), 1007});
  // Frame-level violations (wslay alone would close them without a code).
  cases.push_back({"fragmented ping", MakeFrame({.opcode = kPing, .fin = false}, "x"), 1002});
  cases.push_back({"fragmented close", MakeFrame({.opcode = kClose, .fin = false}, ""), 1002});
  cases.push_back({"126-byte ping", MakeFrame({.opcode = kPing}, std::string(126, 'p')), 1002});
  cases.push_back({"126-byte pong", MakeFrame({.opcode = kPong}, std::string(126, 'p')), 1002});
  cases.push_back({"126-byte close",
                   MakeFrame({.opcode = kClose}, ClosePayload(1000, std::string(124, 'r'))), 1002});
  cases.push_back({"1-byte close", MakeFrame({.opcode = kClose}, "\x03"), 1002});
  cases.push_back({"16-bit length under 126", MakeRawFrame({0x81, 0xFE, 0x00, 0x03}, "4ab"), 1002});
  cases.push_back({"64-bit length under 65536",
                   MakeRawFrame({0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, std::string(256, 'a')),
                   1002});
  cases.push_back({"64-bit length with the top bit set",
                   MakeRawFrame({0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0x04}, "4abc"), 1002});
  Bytes after_good = MakeFrame({.opcode = kText}, "fine");
  base::AppendBytes(after_good, MakeFrame({.opcode = kPing, .fin = false}, "x"));
  cases.push_back({"bad header right after a good frame", after_good, 1002});
  return cases;
}

TEST_F(WebSocketSessionTest, ProtocolViolationsFailTheConnection) {
  for (const ViolationCase& c : ViolationCases()) {
    SCOPED_TRACE(c.name);
    Start();
    WsClient client(port());
    ASSERT_TRUE(client.ok());
    client.Send(c.frames);
    ServerFrame close = client.Next();
    if (close.opcode == kText) {
      EXPECT_EQ(close.payload, "fine");  // the good frame before the bad one
      close = client.Next();
    }
    EXPECT_EQ(close.opcode, kClose);
    EXPECT_EQ(close.close_code(), c.wire_code);
    EXPECT_TRUE(client.AtEof());
    WebSocketCloseInfo info = WaitClosed(closed_);
    EXPECT_EQ(info.code, c.wire_code);
    EXPECT_FALSE(info.by_peer);
    EXPECT_FALSE(info.clean);
    TearDown();
  }
}

TEST_F(WebSocketSessionTest, BadHeaderCutAcrossReadsFails1002) {
  // The 16-bit length of the second frame is not in its shortest form; its
  // first bytes arrive with a good frame, the rest after the echo, so the
  // session sees the header in two reads.
  const Bytes bad = MakeRawFrame({0x81, 0xFE, 0x00, 0x05}, "hello");
  for (size_t cut : {1, 2, 3}) {
    SCOPED_TRACE(cut);
    Start();
    WsClient client(port());
    ASSERT_TRUE(client.ok());
    Bytes first = MakeFrame({.opcode = kText}, "fine");
    first.insert(first.end(), bad.begin(), bad.begin() + static_cast<ptrdiff_t>(cut));
    client.Send(first);
    EXPECT_EQ(client.Next().payload, "fine");
    client.Send(Bytes(bad.begin() + static_cast<ptrdiff_t>(cut), bad.end()));
    ExpectFailedWith(client, 1002);
    TearDown();
  }
}

TEST_F(WebSocketSessionTest, ClientInitiatedCloseHandshake) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  client.Send(MakeFrame({.opcode = kClose}, ClosePayload(1000, "bye")));
  ServerFrame close = client.Next();
  EXPECT_EQ(close.opcode, kClose);
  EXPECT_EQ(close.close_code(), 1000);
  EXPECT_TRUE(client.AtEof());  // s7.1.1: the server closes TCP first
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 1000);
  EXPECT_EQ(info.reason, "bye");
  EXPECT_TRUE(info.by_peer);
  EXPECT_TRUE(info.clean);
}

TEST_F(WebSocketSessionTest, ClientCloseWithoutCodeReports1005) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  // Data after the close frame is ignored (s5.5.1).
  Bytes frames = MakeFrame({.opcode = kClose}, "");
  base::AppendBytes(frames, MakeFrame({.opcode = kText}, "ignored"));
  client.Send(frames);
  ServerFrame close = client.Next();
  EXPECT_EQ(close.opcode, kClose);
  EXPECT_EQ(close.payload, "");
  EXPECT_TRUE(client.AtEof());
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 1005);
  EXPECT_TRUE(info.by_peer);
  EXPECT_TRUE(info.clean);
}

TEST_F(WebSocketSessionTest, ServerInitiatedCloseHandshake) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  client.Send(MakeFrame({.opcode = kText}, "close-me"));
  ServerFrame close = client.Next();
  EXPECT_EQ(close.opcode, kClose);
  EXPECT_EQ(close.close_code(), 4000);
  EXPECT_EQ(close.close_reason(), "done");
  // Messages sent before our close frame are dropped; the server waits for
  // the close reply before closing TCP.
  Bytes reply = MakeFrame({.opcode = kText}, "dropped");
  base::AppendBytes(reply, MakeFrame({.opcode = kClose}, ClosePayload(4000, "")));
  client.Send(reply);
  EXPECT_TRUE(client.AtEof());
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 4000);
  EXPECT_EQ(info.reason, "done");
  EXPECT_FALSE(info.by_peer);
  EXPECT_TRUE(info.clean);
}

TEST_F(WebSocketSessionTest, ServerCloseGivesUpWhenThePeerNeverAnswers) {
  ServerOptions options;
  options.websocket.close_timeout = 50ms;
  Start(options);
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  client.Send(MakeFrame({.opcode = kText}, "close-me"));
  EXPECT_EQ(client.Next().opcode, kClose);
  EXPECT_TRUE(client.AtEof());
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 4000);
  EXPECT_FALSE(info.by_peer);
  EXPECT_FALSE(info.clean);
}

TEST_F(WebSocketSessionTest, PeerDroppingTcpReports1006) {
  Start();
  WsClient client(port());
  ASSERT_TRUE(client.ok());
  client.Send(MakeFrame({.opcode = kText}, "x"));
  EXPECT_EQ(client.Next().payload, "x");
  client.Disconnect();
  WebSocketCloseInfo info = WaitClosed(closed_);
  EXPECT_EQ(info.code, 1006);
  EXPECT_TRUE(info.by_peer);
  EXPECT_FALSE(info.clean);
}

TEST_F(WebSocketSessionTest, CloseReasonIsCutAtACharacterBoundary) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  // Driven on this thread: the session closes from the accept path, so the
  // long reason goes out before any client frame.
  std::unique_ptr<WebSocketSession> session;
  std::promise<WebSocketCloseInfo> closed;
  auto listener = StreamListener::Create(
      *loop, *base::SocketAddress::ParseIp("127.0.0.1", 0), {}, nullptr,
      [&](StreamConnection& connection) {
        connection.SetCallbacks(
            [&](StreamConnection& c, ByteView data) -> size_t {
              auto head = HttpHeadLength(data);
              if (!head || *head == 0) {
                return 0;
              }
              c.Write(base::AsBytes(*BuildWebSocketHandshakeResponse(kSampleKey)));
              WebSocketSession::Callbacks callbacks;
              callbacks.on_close = [&](WebSocketSession&, const WebSocketCloseInfo& info) {
                closed.set_value(info);
              };
              auto created = WebSocketSession::Create(*loop, c, {}, {}, std::move(callbacks));
              EXPECT_TRUE(created.has_value());
              session = std::move(*created);
              // 61 two-byte characters = 122 bytes, then one more: 124 > 123.
              std::string reason;
              for (int i = 0; i < 62; ++i) {
                reason += "\xC3\xA9";
              }
              session->Close(1001, reason);
              return *head;
            },
            nullptr);
      });
  ASSERT_TRUE(listener.has_value());
  const uint16_t port = (*listener)->local_address().port();
  {
    LoopThread thread(*loop);
    thread.Start();
    WsClient client(port);
    ASSERT_TRUE(client.ok());
    ServerFrame close = client.Next();
    EXPECT_EQ(close.opcode, kClose);
    EXPECT_EQ(close.close_code(), 1001);
    EXPECT_EQ(close.close_reason().size(), 122u);
    client.Send(MakeFrame({.opcode = kClose}, ClosePayload(1001, "")));
    EXPECT_TRUE(client.AtEof());
    auto future = closed.get_future();
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(future.get().reason.size(), 122u);
  }
  session.reset();
  listener->reset();
}

TEST_F(WebSocketSessionTest, DestroyingAnOpenSessionAbortsTheConnection) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::unique_ptr<WebSocketSession> session;
  bool session_closed = false;
  CloseReason tcp_reason = CloseReason::kPeerClosed;
  bool tcp_closed = false;
  auto listener = StreamListener::Create(
      *loop, *base::SocketAddress::ParseIp("127.0.0.1", 0), {}, nullptr,
      [&](StreamConnection& connection) {
        connection.SetCallbacks(
            [&](StreamConnection& c, ByteView data) -> size_t {
              auto head = HttpHeadLength(data);
              if (!head || *head == 0) {
                return 0;
              }
              c.Write(base::AsBytes(*BuildWebSocketHandshakeResponse(kSampleKey)));
              WebSocketSession::Callbacks callbacks;
              callbacks.on_text = [&](WebSocketSession& s, std::string_view) {
                // Destroyed after this callback returns, never inside it.
                loop->DeleteLater(std::move(session));
                EXPECT_TRUE(s.is_open());
              };
              callbacks.on_close = [&](WebSocketSession&, const WebSocketCloseInfo&) {
                session_closed = true;
              };
              auto created = WebSocketSession::Create(*loop, c, {}, {}, std::move(callbacks));
              EXPECT_TRUE(created.has_value());
              session = std::move(*created);
              return *head;
            },
            [&](StreamConnection&, CloseReason reason) {
              tcp_closed = true;
              tcp_reason = reason;
            });
      });
  ASSERT_TRUE(listener.has_value());
  const uint16_t port = (*listener)->local_address().port();
  {
    LoopThread thread(*loop);
    thread.Start();
    WsClient client(port);
    ASSERT_TRUE(client.ok());
    client.Send(MakeFrame({.opcode = kText}, "bye"));
    EXPECT_TRUE(client.AtEof());
  }
  EXPECT_EQ(session, nullptr);
  EXPECT_FALSE(session_closed);  // destroying does not report
  EXPECT_FALSE(tcp_closed);      // and the HTTP layer's old callback is gone too
  (void)tcp_reason;
  listener->reset();
}

}  // namespace
}  // namespace turnkey::net
