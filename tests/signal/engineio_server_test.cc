// EngineIoServer over a real HttpServer on loopback, driven by a raw
// HTTP/WebSocket client: handshakes, long-polling, the upgrade, heartbeats,
// closes from either side, error answers and origin checks
// (reference/socketio.md sections 1.1-1.8, 1.11).
#include "signal/engineio_server.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "base/bytes.h"
#include "base/clock.h"
#include "tests/signal/server_fixture.h"

namespace turnkey::signal {
namespace {

using testing::HttpReply;
using testing::RawClient;
using testing::Recorder;
using testing::SplitPayload;

class EngineIoServerTest : public testing::ServerFixture {
 protected:
  // An echo server that records what happens at "/engine.io/".
  void StartEngine(EngineIoServerOptions options = {}, size_t max_body_bytes = 2 * 1024 * 1024) {
    EngineIoServer::Callbacks callbacks;
    callbacks.on_connection = [this](EngineIoSocket& socket) {
      events_.Add("connect:" + socket.id());
    };
    callbacks.on_message = [this](EngineIoSocket& socket, const EngineIoPacket& message) {
      if (message.binary) {
        events_.Add("binary:" + base::HexEncode(base::AsBytes(message.data)));
        socket.SendBinary(base::AsBytes(message.data));
      } else {
        events_.Add("message:" + message.data);
        if (message.data == "accept me") {
          socket.MarkAccepted();
        }
        socket.SendText(message.data);
      }
    };
    callbacks.on_close = [this](EngineIoSocket& socket, EngineIoCloseReason reason) {
      events_.Add("close:" + socket.id() + ":" + EngineIoCloseReasonName(reason));
    };
    auto server = EngineIoServer::Create(loop(), options, std::move(callbacks));
    ASSERT_TRUE(server.has_value());
    server_ = std::move(*server);
    ASSERT_TRUE(router().Add("*", "/engine.io/*", server_->AsHandler()).has_value());
    // Recorded so that a test can wait until the server has seen a head.
    set_body_pending([this](const net::HttpRequest& head) {
      std::shared_ptr<void> token = server_->OnBodyPending(head);
      events_.Add("body pending:" + head.target);
      return token;
    });
    set_error_response([this](const net::HttpRequest& head, int status) {
      return std::optional<net::HttpResponse>(server_->RefusalResponse(head, status));
    });
    set_body_limit([this](const net::HttpRequest& head) { return server_->BodyLimit(head); });
    Start(max_body_bytes);
  }

  void DestroyServers() override { server_.reset(); }

  // Opens a polling session; returns its sid.
  std::string Open(RawClient& client, const testing::HeaderList& headers = {}) {
    auto reply = client.Request("GET", "/engine.io/?EIO=4&transport=polling&t=abc", {}, headers);
    EXPECT_TRUE(reply.has_value());
    if (!reply || reply->status != 200 || reply->body.empty() || reply->body[0] != '0') {
      ADD_FAILURE() << "handshake failed";
      return {};
    }
    return nlohmann::json::parse(reply->body.substr(1))["sid"].get<std::string>();
  }

  static std::string Polling(const std::string& sid) {
    return "/engine.io/?EIO=4&transport=polling&sid=" + sid;
  }
  // Opens a polling session on `client` and starts a POST whose body has
  // not all arrived (PostHead); returns the sid.
  std::string OpenWithBodyPending(RawClient& client);
  static std::string WebSocketUrl(const std::string& sid) {
    return "/engine.io/?EIO=4&transport=websocket&sid=" + sid;
  }

  // Waits until the server has handled `n` GETs for `sid` (e.g. is holding one).
  bool WaitGets(const std::string& sid, size_t n) {
    return requests().WaitCount("handled:GET " + Polling(sid), n);
  }

  // Upgrades `sid` on `ws` up to the 3probe (the polling GET is not involved).
  void Probe(RawClient& ws, const std::string& sid) {
    auto reply = ws.Upgrade(WebSocketUrl(sid));
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->status, 101);
    ASSERT_TRUE(ws.SendText("2probe"));
    auto pong = ws.ReadMessage();
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(pong->opcode, 1);
    EXPECT_EQ(pong->payload, "3probe");
  }

  // Opens a polling session on `poller` with a GET held and probes it on
  // `ws`; section 1.7: the held GET gets a noop so that the client can pause
  // polling and send "5". Returns the sid.
  std::string OpenAndProbe(RawClient& poller, RawClient& ws) {
    std::string sid = Open(poller);
    EXPECT_TRUE(poller.SendRequest("GET", Polling(sid)));
    EXPECT_TRUE(WaitGets(sid, 1));
    Probe(ws, sid);
    auto noop = poller.ReadReply();
    EXPECT_TRUE(noop.has_value() && noop->body == "6");
    return sid;
  }

  // Section 1.7: an upgrade of a session that is upgrading or upgraded gets
  // its 101 and then a close frame (1008); no session takes it.
  void ExpectClosedAfterUpgrade(const std::string& target) {
    auto extra = Client();
    auto reply = extra->Upgrade(target);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 101);
    auto closing = extra->ReadMessage();
    ASSERT_TRUE(closing.has_value());
    EXPECT_EQ(closing->opcode, 8);
    EXPECT_EQ(closing->payload, std::string("\x03\xf0") + "session already upgraded");
    ASSERT_TRUE(extra->SendFrame(8, closing->payload.substr(0, 2)));
    EXPECT_TRUE(extra->WaitClosed());
  }

  size_t Sessions(EngineIoTransport transport) {
    return OnLoop([&] { return server_->session_count(transport); });
  }

  Recorder events_;
  std::unique_ptr<EngineIoServer> server_;
};

void ExpectError(const std::optional<HttpReply>& reply, int status, const std::string& body) {
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, status);
  EXPECT_EQ(reply->body, body);
  EXPECT_EQ(reply->headers.Get("Content-Type"), "application/json");
}

TEST_F(EngineIoServerTest, PollingHandshakeSendsExactlyTheOpenPacket) {
  StartEngine();
  auto client = Client();
  auto reply = client->Request("GET", "/engine.io/?EIO=4&transport=polling&t=PQx1f2a");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->headers.Get("Content-Type"), "text/plain; charset=UTF-8");
  EXPECT_EQ(reply->headers.Get("Cache-Control"), "no-store");
  std::smatch match;
  ASSERT_TRUE(std::regex_match(reply->body, match,
                               std::regex("0\\{\"sid\":\"([A-Za-z0-9_-]{15})\",\"upgrades\":"
                                          "\\[\"websocket\"\\],\"pingInterval\":25000,"
                                          "\"pingTimeout\":20000,\"maxPayload\":1000000\\}")))
      << reply->body;
  EXPECT_TRUE(events_.WaitPrefix("connect:" + match[1].str()));
  EXPECT_EQ(Sessions(EngineIoTransport::kPolling), 1u);
}

TEST_F(EngineIoServerTest, PostAndGetCarryTextAndBinaryMessages) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  auto post = client->Request("POST", Polling(sid),
                              "4hello\x1e"
                              "4world\x1e"
                              "bAQIDBA==",
                              {{"Content-Type", "text/plain;charset=UTF-8"}});
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  EXPECT_EQ(post->body, "ok");
  EXPECT_EQ(post->headers.Get("Content-Type"), "text/html");
  EXPECT_TRUE(events_.Has("message:hello"));
  EXPECT_TRUE(events_.Has("message:world"));
  EXPECT_TRUE(events_.Has("binary:01020304"));
  // The echoes were queued; one GET takes them all, binary as "b<base64>".
  auto get = client->Request("GET", Polling(sid));
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body,
            "4hello\x1e"
            "4world\x1e"
            "bAQIDBA==");
}

TEST_F(EngineIoServerTest, IllFormedUtf8InAPostBecomesReplacementCharacters) {
  // python-engineio 4.3 POSTs its text as Latin-1: "h\xE9llo" for "héllo".
  // The reference decodes the body as UTF-8 with U+FFFD for what is not.
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  auto post = client->Request("POST", Polling(sid),
                              "4h\xE9llo\x1e"
                              "4caf\xC3\xA9",
                              {{"Content-Type", "text/plain;charset=UTF-8"}});
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  EXPECT_TRUE(events_.Has("message:h\xEF\xBF\xBDllo"));
  EXPECT_TRUE(events_.Has("message:caf\xC3\xA9"));
  auto get = client->Request("GET", Polling(sid));
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->body,
            "4h\xEF\xBF\xBDllo\x1e"
            "4caf\xC3\xA9");
}

TEST_F(EngineIoServerTest, HeldGetIsAnsweredWhenAMessageIsQueued) {
  StartEngine();
  auto poller = Client();
  auto sender = Client();
  std::string sid = Open(*poller);
  ASSERT_TRUE(poller->SendRequest("GET", Polling(sid)));
  ASSERT_TRUE(WaitGets(sid, 1));
  auto post = sender->Request("POST", Polling(sid), "4ping me");
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  auto get = poller->ReadReply();
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->body, "4ping me");
}

TEST_F(EngineIoServerTest, AGetIsAnsweredWithAtMostSixteenPacketsAndTheRestWaits) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  // 40 messages in one POST: the echo server queues 40 answers.
  std::string body;
  std::vector<std::string> expected;
  for (int i = 0; i < 40; ++i) {
    expected.push_back("4m" + std::to_string(i));
    body += (i == 0 ? "" : "\x1e") + expected.back();
  }
  auto post = client->Request("POST", Polling(sid), body);
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  std::vector<std::string> received;
  for (size_t answer_size : {16u, 16u, 8u}) {
    auto get = client->Request("GET", Polling(sid));
    ASSERT_TRUE(get.has_value());
    ASSERT_EQ(get->status, 200);
    std::vector<std::string> packets;
    size_t start = 0;
    for (size_t sep; (sep = get->body.find('\x1e', start)) != std::string::npos; start = sep + 1) {
      packets.push_back(get->body.substr(start, sep - start));
    }
    packets.push_back(get->body.substr(start));
    EXPECT_EQ(packets.size(), answer_size) << get->body;
    received.insert(received.end(), packets.begin(), packets.end());
  }
  EXPECT_EQ(received, expected);
  static_assert(EngineIoSocket::kMaxPacketsPerPoll == 16);
}

TEST_F(EngineIoServerTest, AGetAnswerStaysWithinMaxPayloadBytes) {
  EngineIoServerOptions options;
  options.max_payload = 100;
  StartEngine(options);
  auto client = Client();
  std::string sid = Open(*client);
  const std::string a = "4" + std::string(60, 'a');
  const std::string b = "4" + std::string(60, 'b');
  const std::string c = "4" + std::string(10, 'c');
  for (const std::string& message : {a, b, c}) {
    ASSERT_EQ(client->Request("POST", Polling(sid), message)->status, 200);
  }
  // A first packet larger than maxPayload still goes out, alone.
  const std::string big(150, 'x');
  OnLoop([&] { server_->Find(sid)->SendText(big); });
  // 61 + 1 + 61 > 100, then 61 + 1 + 11 fits; 151 alone.
  for (const std::string& answer : {a, b + "\x1e" + c, "4" + big}) {
    auto get = client->Request("GET", Polling(sid));
    ASSERT_TRUE(get.has_value());
    ASSERT_EQ(get->status, 200);
    EXPECT_EQ(get->body, answer);
  }
}

// A polling client that does not fetch what it is sent holds at most
// kMaxQueuedBytes (4 MiB here) before its session ends, as a WebSocket's
// output limit does; the close comes from a later loop callback.
TEST_F(EngineIoServerTest, PacketsNobodyFetchesEndTheSessionPastTheQueueBound) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  const std::string mib(1024 * 1024, 'x');
  std::vector<bool> sent = OnLoop([&] {
    std::vector<bool> results;
    for (int i = 0; i < 5; ++i) {
      results.push_back(server_->Find(sid)->SendText(mib));
    }
    return results;
  });
  EXPECT_EQ(sent, (std::vector<bool>{true, true, true, false, false}));
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
  EXPECT_EQ(OnLoop([&] { return server_->stats().queue_overflows; }), 1u);
  EXPECT_EQ(
      OnLoop([&] {
        return server_->stats().closed[static_cast<size_t>(EngineIoCloseReason::kTransportError)];
      }),
      1u);
  ExpectError(client->Request("GET", Polling(sid)), 400,
              R"({"code":1,"message":"Session ID unknown"})");
  static_assert(EngineIoSocket::kMaxQueuedBytes == 4 * 1024 * 1024);
}

TEST_F(EngineIoServerTest, PendingSessionsPerAddressAreCapped) {
  EngineIoServerOptions options;
  options.max_pending_per_address = 2;
  StartEngine(options);
  // WebSocket handshakes the server refuses leave no session behind, and
  // no count either.
  for (int i = 0; i < 3; ++i) {
    auto refused_ws = Client();
    ASSERT_TRUE(refused_ws->SendRaw(
        "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"));
    auto reply = refused_ws->ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 426);
  }
  auto client = Client();
  std::string first = Open(*client);
  std::string second = Open(*client);
  auto refused = client->Request("GET", "/engine.io/?EIO=4&transport=polling&t=x");
  ExpectError(refused, 403, R"({"code":4,"message":"Forbidden"})");
  EXPECT_EQ(OnLoop([this] { return server_->stats().pending_refused; }), 1u);
  // Accepted by the application: no longer pending.
  auto post = client->Request("POST", Polling(first), "4accept me");
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  std::string third = Open(*client);
  EXPECT_FALSE(third.empty());
  // A session that ends frees its place too.
  post = client->Request("POST", Polling(second), "1");
  ASSERT_TRUE(post.has_value());
  ASSERT_TRUE(events_.WaitPrefix("close:" + second));
  EXPECT_FALSE(Open(*client).empty());
  ExpectError(client->Request("GET", "/engine.io/?EIO=4&transport=polling&t=y"), 403,
              R"({"code":4,"message":"Forbidden"})");
}

TEST_F(EngineIoServerTest, LoopbackSessionsMayBeExemptFromThePendingCap) {
  EngineIoServerOptions options;
  options.max_pending_per_address = 1;
  options.max_pending_payload = 10;
  options.pending_exempt_loopback = true;
  StartEngine(options);
  // This test's client is on loopback: neither capped nor held to the
  // pending payload limit.
  auto client = Client();
  std::string first = Open(*client);
  std::string second = Open(*client);
  EXPECT_FALSE(Open(*client).empty());
  EXPECT_EQ(OnLoop([this] { return server_->stats().pending_refused; }), 0u);
  auto post = client->Request("POST", Polling(first), "4" + std::string(100, 'x'));
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  EXPECT_FALSE(second.empty());
}

TEST_F(EngineIoServerTest, SecondConcurrentGetEndsTheSession) {
  StartEngine();
  auto first = Client();
  auto second = Client();
  std::string sid = Open(*first);
  ASSERT_TRUE(first->SendRequest("GET", Polling(sid)));
  ASSERT_TRUE(WaitGets(sid, 1));
  ExpectError(second->Request("GET", Polling(sid)), 400, R"({"code":3,"message":"Bad request"})");
  auto held = first->ReadReply();
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->body, "1");
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
  ExpectError(first->Request("GET", Polling(sid)), 400,
              R"({"code":1,"message":"Session ID unknown"})");
}

// The head of a polling POST and the first bytes of its 6-byte body.
std::string PostHead(const std::string& target) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
         "Content-Length: 6\r\n\r\n4fi";
}

std::string EngineIoServerTest::OpenWithBodyPending(RawClient& client) {
  std::string sid = Open(client);
  EXPECT_TRUE(client.SendRaw(PostHead(Polling(sid))));
  EXPECT_TRUE(events_.WaitPrefix("body pending:" + Polling(sid)));
  return sid;
}

TEST_F(EngineIoServerTest, PostsWhoseBodiesStreamInTurnAreAccepted) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  for (const char* rest : {"rst", "ve!"}) {
    ASSERT_TRUE(client->SendRaw(PostHead(Polling(sid))));
    ASSERT_TRUE(events_.WaitCount("body pending:" + Polling(sid), rest[0] == 'r' ? 1 : 2));
    ASSERT_TRUE(client->SendRaw(rest));
    auto reply = client->ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, "ok");
  }
  EXPECT_TRUE(events_.Has("message:first"));
  EXPECT_TRUE(events_.Has("message:five!"));
  EXPECT_EQ(events_.Count("close:"), 0u);
}

TEST_F(EngineIoServerTest, SecondPostWhileTheFirstBodyArrivesEndsTheSession) {
  // Section 1.6: one POST at a time. The first POST's body is still on its
  // way when a whole second POST arrives.
  StartEngine();
  auto first = Client();
  auto second = Client();
  std::string sid = OpenWithBodyPending(*first);
  ExpectError(second->Request("POST", Polling(sid), "4second"), 400,
              R"({"code":3,"message":"Bad request"})");
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
  ASSERT_TRUE(first->SendRaw("rst"));
  ExpectError(first->ReadReply(), 400, R"({"code":1,"message":"Session ID unknown"})");
  EXPECT_FALSE(events_.Has("message:second"));
  EXPECT_FALSE(events_.Has("message:first"));
}

TEST_F(EngineIoServerTest, TwoPostBodiesArrivingTogetherEndTheSession) {
  StartEngine();
  auto first = Client();
  auto second = Client();
  std::string sid = OpenWithBodyPending(*first);
  // The second head alone ends the session.
  ASSERT_TRUE(second->SendRaw(PostHead(Polling(sid))));
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
  for (RawClient* client : {first.get(), second.get()}) {
    ASSERT_TRUE(client->SendRaw("rst"));
    ExpectError(client->ReadReply(), 400, R"({"code":1,"message":"Session ID unknown"})");
  }
  EXPECT_FALSE(events_.Has("message:first"));
}

TEST_F(EngineIoServerTest, HeldGetDroppedByTheClientEndsTheSession) {
  // Section 1.8: the reference closes the session when the connection of a
  // pending GET goes away ("poll connection closed prematurely").
  StartEngine();
  auto poller = Client();
  auto other = Client();
  std::string sid = Open(*poller);
  ASSERT_TRUE(poller->SendRequest("GET", Polling(sid)));
  ASSERT_TRUE(WaitGets(sid, 1));
  poller.reset();
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
  ExpectError(other->Request("GET", Polling(sid)), 400,
              R"({"code":1,"message":"Session ID unknown"})");
}

TEST_F(EngineIoServerTest, ClientCloseAnswersTheHeldGetWithNoop) {
  StartEngine();
  auto poller = Client();
  auto sender = Client();
  std::string sid = Open(*poller);
  ASSERT_TRUE(poller->SendRequest("GET", Polling(sid)));
  ASSERT_TRUE(WaitGets(sid, 1));
  auto post = sender->Request("POST", Polling(sid), "1");
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 200);
  auto held = poller->ReadReply();
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->body, "6");
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport close"));
  EXPECT_EQ(poller->Request("GET", Polling(sid))->status, 400);
}

TEST_F(EngineIoServerTest, UndecodablePostEndsTheSession) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  // The first packet counts, then the bad one ends the session.
  ExpectError(client->Request("POST", Polling(sid),
                              "4first\x1e"
                              "abc"),
              400, R"({"code":3,"message":"Bad request"})");
  EXPECT_TRUE(events_.Has("message:first"));
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":parse error"));
  EXPECT_EQ(client->Request("GET", Polling(sid))->status, 400);
}

TEST_F(EngineIoServerTest, PingFromTheClientIsAProtocolViolation) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  client->Request("POST", Polling(sid), "2");
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":parse error"));
}

TEST_F(EngineIoServerTest, PostOverMaxPayloadIs413AndEndsTheSession) {
  EngineIoServerOptions options;
  options.max_payload = 100;
  StartEngine(options);
  auto client = Client();
  std::string sid = Open(*client);
  EXPECT_NE(client->Request("GET", "/engine.io/?EIO=4&transport=polling")
                ->body.find("\"maxPayload\":100}"),
            std::string::npos);
  auto ok = client->Request("POST", Polling(sid), "4" + std::string(99, 'x'));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
  auto big = client->Request("POST", Polling(sid), "4" + std::string(100, 'x'));
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->status, 413);
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
}

TEST_F(EngineIoServerTest, PostDeclaringMoreThanMaxPayloadIs413BeforeItsBody) {
  // Section 1.6: 413 at once, the body not read: only the head is sent.
  EngineIoServerOptions options;
  options.max_payload = 100;
  options.cors.allowed_origins = {"https://good.example"};
  StartEngine(options);
  auto client = Client();
  const testing::HeaderList good = {{"Origin", "https://good.example"}};
  std::string sid = Open(*client, good);
  ASSERT_TRUE(client->SendRaw("POST " + Polling(sid) +
                              " HTTP/1.1\r\nHost: x\r\nOrigin: https://good.example\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 101\r\n\r\n"));
  auto big = client->ReadReply();
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->headers.Get("Access-Control-Allow-Origin"), "https://good.example");
  // Up to max_payload still goes in, on another connection.
  auto other = Client();
  auto ok = other->Request("POST", Polling(sid), "4" + std::string(99, 'x'), good);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(EngineIoServerTest, PostOverTheHttpLimitIs413WithCorsHeaders) {
  // Section 1.11: a page on an allowed origin must be able to read every
  // error, including the HTTP server's own 413 for a body over its limit
  // (which never reaches HandleRequest).
  EngineIoServerOptions options;
  options.max_payload = 100;
  options.cors.allowed_origins = {"https://good.example"};
  StartEngine(options, /*max_body_bytes=*/1000);
  auto client = Client();
  const testing::HeaderList good = {{"Origin", "https://good.example"}};
  std::string sid = Open(*client, good);
  auto big = client->Request("POST", Polling(sid), "4" + std::string(2000, 'x'), good);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->headers.Get("Access-Control-Allow-Origin"), "https://good.example");
  EXPECT_EQ(big->headers.Get("Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(big->headers.Get("Vary"), "Origin");
  // Another origin gets none.
  auto evil = Client();
  auto refused = evil->Request("POST", Polling(sid), "4" + std::string(2000, 'x'),
                               {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 413);
  EXPECT_FALSE(refused->headers.Has("Access-Control-Allow-Origin"));
}

TEST_F(EngineIoServerTest, BinaryPostIsRefused) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  auto reply =
      client->Request("POST", Polling(sid), "4x", {{"Content-Type", "application/octet-stream"}});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400);
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport error"));
}

TEST_F(EngineIoServerTest, RequestErrorsHaveTheReferenceCodes) {
  StartEngine();
  auto client = Client();
  // Section 1.2: only a CORS preflight is answered before the checks, so a
  // bare OPTIONS is a handshake with the wrong method.
  ExpectError(client->Request("OPTIONS", "/engine.io/?EIO=4&transport=polling"), 400,
              R"({"code":2,"message":"Bad handshake method"})");
  ExpectError(client->Request("OPTIONS", "/engine.io/?EIO=4&transport=polling", {},
                              {{"Access-Control-Request-Method", "POST"}}),
              400, R"({"code":2,"message":"Bad handshake method"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=3&transport=polling"), 400,
              R"({"code":5,"message":"Unsupported protocol version"})");
  ExpectError(client->Request("GET", "/engine.io/?transport=polling"), 400,
              R"({"code":5,"message":"Unsupported protocol version"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=4"), 400,
              R"({"code":0,"message":"Transport unknown"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=4&transport=webtransport"), 400,
              R"({"code":0,"message":"Transport unknown"})");
  ExpectError(client->Request("POST", "/engine.io/?EIO=4&transport=polling", "40"), 400,
              R"({"code":2,"message":"Bad handshake method"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=4&transport=websocket"), 400,
              R"({"code":3,"message":"Bad request"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=4&transport=polling&sid=doesnotexist"), 400,
              R"({"code":1,"message":"Session ID unknown"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=4&transport=polling&j=0"), 400,
              R"({"code":3,"message":"Bad request"})");
  std::string sid = Open(*client);
  ExpectError(client->Request("PUT", Polling(sid), "x"), 400,
              R"({"code":3,"message":"Bad request"})");
  ExpectError(client->Request("GET", "/engine.io/?EIO=4&transport=websocket&sid=" + sid), 400,
              R"({"code":3,"message":"Bad request"})");
}

TEST_F(EngineIoServerTest, ServerPingsAndClosesWithoutPong) {
  EngineIoServerOptions options;
  options.ping_interval = std::chrono::milliseconds(50);
  // Long enough for a loaded machine to answer; the last wait is this long.
  options.ping_timeout = std::chrono::milliseconds(1500);
  StartEngine(options);
  auto client = Client();
  std::string sid = Open(*client);
  // The held GET is answered by the ping; a pong restarts the interval.
  for (int i = 0; i < 2; ++i) {
    auto ping = client->Request("GET", Polling(sid));
    ASSERT_TRUE(ping.has_value());
    EXPECT_EQ(ping->body, "2");
    EXPECT_EQ(client->Request("POST", Polling(sid), "3")->status, 200);
  }
  EXPECT_FALSE(events_.Has("close:" + sid + ":ping timeout"));
  // No pong this time.
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":ping timeout"));
  ExpectError(client->Request("GET", Polling(sid)), 400,
              R"({"code":1,"message":"Session ID unknown"})");
  EXPECT_EQ(OnLoop([&] { return server_->stats().ping_timeouts; }), 1u);
  // By reason, for turnkey_signal_closed_connections_total.
  auto closed = OnLoop([&] { return server_->stats().closed; });
  EXPECT_EQ(closed[static_cast<size_t>(EngineIoCloseReason::kPingTimeout)], 1u);
  EXPECT_EQ(closed[static_cast<size_t>(EngineIoCloseReason::kTransportClose)], 0u);
}

// Section 1.5: the session ends pingInterval + pingTimeout after the open or
// the last pong. A request that comes after that finds it gone even while
// the heartbeat timer has not run (here it never does: the clock is fake and
// the timers are 25 s and 20 s).
TEST_F(EngineIoServerTest, PollingSessionPastItsPongDeadlineIsGone) {
  base::FakeClock clock;
  EngineIoServerOptions options;
  options.clock = &clock;
  StartEngine(options);
  auto client = Client();
  std::string sid = Open(*client);
  OnLoop([&] { clock.Advance(std::chrono::seconds(44)); });
  EXPECT_EQ(client->Request("POST", Polling(sid), "4still here")->status, 200);
  EXPECT_EQ(client->Request("GET", Polling(sid))->body, "4still here");
  // A pong, even one not asked for yet, moves the deadline.
  EXPECT_EQ(client->Request("POST", Polling(sid), "3")->status, 200);
  OnLoop([&] { clock.Advance(std::chrono::seconds(44)); });
  EXPECT_EQ(client->Request("POST", Polling(sid), "4later")->status, 200);
  EXPECT_EQ(client->Request("GET", Polling(sid))->body, "4later");
  OnLoop([&] { clock.Advance(std::chrono::seconds(1)); });
  ExpectError(client->Request("GET", Polling(sid)), 400,
              R"({"code":1,"message":"Session ID unknown"})");
  EXPECT_TRUE(events_.Has("close:" + sid + ":ping timeout"));
  EXPECT_EQ(OnLoop([&] { return server_->stats().ping_timeouts; }), 1u);
}

TEST_F(EngineIoServerTest, WebSocketMessagePastThePongDeadlineEndsTheSession) {
  base::FakeClock clock;
  EngineIoServerOptions options;
  options.clock = &clock;
  StartEngine(options);
  auto ws = Client();
  ASSERT_EQ(ws->Upgrade("/engine.io/?EIO=4&transport=websocket")->status, 101);
  auto open = ws->ReadMessage();
  ASSERT_TRUE(open.has_value());
  std::string sid = nlohmann::json::parse(open->payload.substr(1))["sid"].get<std::string>();
  OnLoop([&] { clock.Advance(std::chrono::seconds(45)); });
  ASSERT_TRUE(ws->SendText("4too late"));
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":ping timeout"));
  // No echo: the next frame is the server's close.
  auto closing = ws->ReadMessage();
  ASSERT_TRUE(closing.has_value());
  EXPECT_EQ(closing->opcode, 8);
  EXPECT_FALSE(events_.Has("message:too late"));
}

TEST_F(EngineIoServerTest, ServerCloseOverPollingDeliversQueuedPacketsThenClose) {
  StartEngine();
  auto client = Client();
  std::string a = Open(*client);
  std::string b = Open(*client);
  OnLoop([&] {
    EngineIoSocket* socket = server_->Find(a);
    ASSERT_NE(socket, nullptr);
    socket->SendText("bye");
    socket->Close();
    EXPECT_FALSE(socket->SendText("late"));
    EXPECT_EQ(server_->Find(a), nullptr);
    server_->Find(b)->Close();
  });
  EXPECT_TRUE(events_.WaitPrefix("close:" + a + ":forced close"));
  // Section 1.6: queued packets, then "1"; with nothing queued, "6\x1e1".
  EXPECT_EQ(client->Request("GET", Polling(a))->body,
            "4bye\x1e"
            "1");
  EXPECT_EQ(client->Request("GET", Polling(b))->body,
            "6\x1e"
            "1");
  EXPECT_EQ(client->Request("GET", Polling(a))->status, 400);
  EXPECT_EQ(Sessions(EngineIoTransport::kPolling), 0u);
}

TEST_F(EngineIoServerTest, ServerCloseKeepsTheAnswerLimitsOverSeveralGets) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  const size_t queued = EngineIoSocket::kMaxPacketsPerPoll + 4;
  OnLoop([&] {
    EngineIoSocket* socket = server_->Find(sid);
    for (size_t i = 0; i < queued; ++i) {
      socket->SendText(std::to_string(i));
    }
    socket->Close();
  });
  // The first GET takes a full answer, without "1"; the rest and "1" follow.
  std::string first;
  for (size_t i = 0; i < EngineIoSocket::kMaxPacketsPerPoll; ++i) {
    first += (i > 0 ? std::string("\x1e") : std::string()) + "4" + std::to_string(i);
  }
  EXPECT_EQ(client->Request("GET", Polling(sid))->body, first);
  EXPECT_EQ(client->Request("GET", Polling(sid))->body,
            "416\x1e"
            "417\x1e"
            "418\x1e"
            "419\x1e"
            "1");
  EXPECT_EQ(client->Request("GET", Polling(sid))->status, 400);
}

TEST_F(EngineIoServerTest, ServerCloseAnswersTheHeldGetWithClose) {
  StartEngine();
  auto client = Client();
  std::string sid = Open(*client);
  ASSERT_TRUE(client->SendRequest("GET", Polling(sid)));
  ASSERT_TRUE(WaitGets(sid, 1));
  OnLoop([&] { server_->CloseAll(EngineIoCloseReason::kForcedClose); });
  auto held = client->ReadReply();
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->body, "1");
  EXPECT_EQ(client->Request("GET", Polling(sid))->status, 400);
}

TEST_F(EngineIoServerTest, UpgradeProbeNoopAndSwitch) {
  StartEngine();
  auto poller = Client();
  auto ws = Client();
  std::string sid = OpenAndProbe(*poller, *ws);
  EXPECT_EQ(Sessions(EngineIoTransport::kPolling), 1u);
  // Something queued before the "5" goes out on the WebSocket after it.
  OnLoop([&] { server_->Find(sid)->SendText("queued"); });
  ASSERT_TRUE(ws->SendText("5"));
  auto queued = ws->ReadMessage();
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->payload, "4queued");
  EXPECT_EQ(Sessions(EngineIoTransport::kWebSocket), 1u);
  EXPECT_EQ(Sessions(EngineIoTransport::kPolling), 0u);
  EXPECT_EQ(OnLoop([&] { return std::string(server_->Find(sid)->transport_name()); }), "websocket");
  ASSERT_TRUE(ws->SendText("4over ws"));
  EXPECT_EQ(ws->ReadMessage()->payload, "4over ws");
  ASSERT_TRUE(ws->SendBinary(std::string("\x01\x02", 2)));
  auto binary = ws->ReadMessage();
  ASSERT_TRUE(binary.has_value());
  EXPECT_EQ(binary->opcode, 2);
  EXPECT_EQ(binary->payload, std::string("\x01\x02", 2));
  // Polling with that sid is now a transport mismatch; a second upgrade is
  // closed right after its 101, and the session keeps its WebSocket.
  ExpectError(poller->Request("GET", Polling(sid)), 400, R"({"code":3,"message":"Bad request"})");
  ExpectClosedAfterUpgrade(WebSocketUrl(sid));
  ASSERT_TRUE(ws->SendText("4still upgraded"));
  EXPECT_EQ(ws->ReadMessage()->payload, "4still upgraded");
  EXPECT_EQ(OnLoop([&] { return server_->stats().upgrades; }), 1u);
  // The client closes the WebSocket: the session ends.
  ASSERT_TRUE(ws->SendFrame(8, std::string("\x03\xe8", 2)));
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":transport close"));
}

// A server close after "3probe", once the held GET had its noop: engine.io-client has paused
// its polling and only ever reads the probe from its "5" on, so the close goes there (what was
// queued, then the WebSocket's close), not to a GET that never comes. Without "3probe" the
// client still polls and the probe simply closes.
TEST_F(EngineIoServerTest, ServerCloseWhileTheClientMovesToTheProbeArrivesOverIt) {
  StartEngine();
  auto poller = Client();
  auto ws = Client();
  std::string sid = OpenAndProbe(*poller, *ws);
  OnLoop([&] {
    EngineIoSocket* socket = server_->Find(sid);
    socket->SendText("bye");
    socket->Close();
  });
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":forced close"));
  EXPECT_FALSE(ws->WaitClosed(std::chrono::milliseconds(100)));
  ASSERT_TRUE(ws->SendText("5"));
  auto bye = ws->ReadMessage();
  ASSERT_TRUE(bye.has_value());
  EXPECT_EQ(bye->payload, "4bye");
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(poller->Request("GET", Polling(sid))->status, 400);
  EXPECT_EQ(Sessions(EngineIoTransport::kPolling), 0u);

  // Before "3probe": the probe closes, the next GET gets "1".
  auto ws2 = Client();
  std::string other = Open(*poller);
  ASSERT_TRUE(ws2->Upgrade(WebSocketUrl(other)).has_value());
  ASSERT_TRUE(OnLoop([&] { return server_->Find(other)->state(); }) ==
              EngineIoSocket::State::kUpgrading);
  OnLoop([&] { server_->Find(other)->Close(); });
  EXPECT_TRUE(ws2->WaitClosed());
  EXPECT_EQ(poller->Request("GET", Polling(other))->body,
            "6\x1e"
            "1");
}

TEST_F(EngineIoServerTest, SecondProbeWhileUpgradingIsClosed) {
  StartEngine();
  auto poller = Client();
  auto ws = Client();
  std::string sid = Open(*poller);
  Probe(*ws, sid);
  ExpectClosedAfterUpgrade(WebSocketUrl(sid));
  // Until "5", packets still go to polling; the first probe still completes.
  OnLoop([&] { server_->Find(sid)->SendText("still polling"); });
  EXPECT_EQ(poller->Request("GET", Polling(sid))->body, "4still polling");
  ASSERT_TRUE(ws->SendText("5"));
  ASSERT_TRUE(ws->SendText("4upgraded"));
  EXPECT_EQ(ws->ReadMessage()->payload, "4upgraded");
  EXPECT_EQ(OnLoop([&] { return server_->stats().upgrades; }), 1u);
}

TEST_F(EngineIoServerTest, BadProbeMessageAbortsTheUpgradeOnly) {
  StartEngine();
  auto poller = Client();
  auto ws = Client();
  std::string sid = Open(*poller);
  Probe(*ws, sid);
  ASSERT_TRUE(ws->SendText("4not yet"));
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(poller->Request("POST", Polling(sid), "4still here")->status, 200);
  EXPECT_EQ(poller->Request("GET", Polling(sid))->body, "4still here");
  EXPECT_EQ(OnLoop([&] { return server_->stats().failed_upgrades; }), 1u);
}

TEST_F(EngineIoServerTest, UpgradeTimesOutWithoutFive) {
  EngineIoServerOptions options;
  options.upgrade_timeout = std::chrono::milliseconds(100);
  StartEngine(options);
  auto poller = Client();
  auto ws = Client();
  std::string sid = Open(*poller);
  auto reply = ws->Upgrade(WebSocketUrl(sid));
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->status, 101);
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(poller->Request("POST", Polling(sid), "4after")->status, 200);
  EXPECT_EQ(poller->Request("GET", Polling(sid))->body, "4after");
  EXPECT_EQ(OnLoop([&] { return server_->stats().failed_upgrades; }), 1u);
}

TEST_F(EngineIoServerTest, DirectWebSocketSession) {
  StartEngine();
  auto ws = Client();
  auto reply = ws->Upgrade("/engine.io/?EIO=4&transport=websocket");
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->status, 101);
  auto open = ws->ReadMessage();
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->opcode, 1);
  ASSERT_TRUE(std::regex_match(open->payload,
                               std::regex("0\\{\"sid\":\"[A-Za-z0-9_-]{15}\",\"upgrades\":\\[\\],"
                                          "\"pingInterval\":25000,\"pingTimeout\":20000,"
                                          "\"maxPayload\":1000000\\}")))
      << open->payload;
  ASSERT_TRUE(ws->SendText("4abc"));
  EXPECT_EQ(ws->ReadMessage()->payload, "4abc");
  EXPECT_EQ(Sessions(EngineIoTransport::kWebSocket), 1u);
  // Section 1.4: an undecodable frame ends the session; the server closes.
  ASSERT_TRUE(ws->SendText("abc"));
  EXPECT_TRUE(events_.WaitPrefix("close:"));
  EXPECT_NE(events_.WaitPrefix("close:")->find(":parse error"), std::string::npos);
  EXPECT_TRUE(ws->WaitClosed());
}

TEST_F(EngineIoServerTest, WebSocketWithB64GetsBinaryAsBase64Text) {
  StartEngine();
  auto ws = Client();
  ASSERT_EQ(ws->Upgrade("/engine.io/?EIO=4&transport=websocket&b64=1")->status, 101);
  ASSERT_TRUE(ws->ReadMessage().has_value());
  ASSERT_TRUE(ws->SendText("bAQIDBA=="));
  auto echo = ws->ReadMessage();
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->opcode, 1);
  EXPECT_EQ(echo->payload, "bAQIDBA==");
}

TEST_F(EngineIoServerTest, WebSocketAnswersTheFirstOfferedSubprotocol) {
  // engine.io-client's `protocols` option: the ws client and browsers fail a
  // handshake that asked for a subprotocol and got none back.
  StartEngine();
  auto offered = Client();
  auto reply = offered->Upgrade("/engine.io/?EIO=4&transport=websocket",
                                {{"Sec-WebSocket-Protocol", "v1.signal, v2.signal"}});
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->status, 101);
  EXPECT_EQ(reply->headers.Get("Sec-WebSocket-Protocol"), "v1.signal");
  EXPECT_TRUE(offered->ReadMessage().has_value());  // the open packet: the session works

  // The upgrade of a polling session answers the same way.
  auto polling = Client();
  std::string sid = Open(*polling);
  auto probe = Client();
  auto upgraded = probe->Upgrade(WebSocketUrl(sid), {{"Sec-WebSocket-Protocol", "chat"}});
  ASSERT_TRUE(upgraded.has_value());
  ASSERT_EQ(upgraded->status, 101);
  EXPECT_EQ(upgraded->headers.Get("Sec-WebSocket-Protocol"), "chat");

  // None offered (or none readable): none answered (RFC 6455 section 4.2.2).
  for (const testing::HeaderList& headers :
       {testing::HeaderList{}, testing::HeaderList{{"Sec-WebSocket-Protocol", "a b"}}}) {
    auto plain = Client();
    auto answer = plain->Upgrade("/engine.io/?EIO=4&transport=websocket", headers);
    ASSERT_TRUE(answer.has_value());
    ASSERT_EQ(answer->status, 101);
    EXPECT_FALSE(answer->headers.Has("Sec-WebSocket-Protocol"));
  }
}

TEST_F(EngineIoServerTest, WebSocketUpgradeOverHttp10IsRefused) {
  // RFC 6455 section 4.2.1: the opening handshake is HTTP/1.1 or later; the
  // HTTP layer ignores Upgrade in HTTP/1.0 (RFC 9110 section 7.8), which
  // leaves a websocket request without its upgrade.
  StartEngine();
  auto polling = Client();
  std::string sid = Open(*polling);
  for (const std::string& target :
       {std::string("/engine.io/?EIO=4&transport=websocket"), WebSocketUrl(sid)}) {
    SCOPED_TRACE(target);
    auto client = Client();
    ASSERT_TRUE(client->SendRaw("GET " + target +
                                " HTTP/1.0\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n"));
    ExpectError(client->ReadReply(), 400, R"({"code":3,"message":"Bad request"})");
    EXPECT_TRUE(client->WaitClosed());
  }
  EXPECT_EQ(Sessions(EngineIoTransport::kPolling), 1u);
  EXPECT_EQ(Sessions(EngineIoTransport::kWebSocket), 0u);
}

TEST_F(EngineIoServerTest, WebSocketUpgradeWithTwoKeysIsRefused) {
  // RFC 6455 section 11.3.1: Sec-WebSocket-Key appears once; two fields are
  // refused as two keys joined in one field are.
  StartEngine();
  const std::string head =
      "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
  for (const std::string& keys :
       {std::string("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"),
        std::string("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==, AQIDBAUGBwgJCgsMDQ4PEA==\r\n")}) {
    SCOPED_TRACE(keys);
    auto client = Client();
    ASSERT_TRUE(client->SendRaw(head + keys + "\r\n"));
    ExpectError(client->ReadReply(), 400, R"({"code":3,"message":"Bad request"})");
  }
  EXPECT_EQ(Sessions(EngineIoTransport::kWebSocket), 0u);
}

TEST_F(EngineIoServerTest, WebSocketWithPollingTransportIsAcceptedAsWebSocket) {
  // The Dart client on Flutter native (reference section 2.2).
  StartEngine();
  auto ws = Client();
  ASSERT_EQ(ws->Upgrade("/engine.io/?EIO=4&transport=polling")->status, 101);
  auto open = ws->ReadMessage();
  ASSERT_TRUE(open.has_value());
  EXPECT_NE(open->payload.find("\"upgrades\":[]"), std::string::npos);
}

TEST_F(EngineIoServerTest, ServerCloseOverWebSocketClosesTheSocket) {
  StartEngine();
  auto ws = Client();
  ASSERT_EQ(ws->Upgrade("/engine.io/?EIO=4&transport=websocket")->status, 101);
  auto open = ws->ReadMessage();
  ASSERT_TRUE(open.has_value());
  std::string sid = nlohmann::json::parse(open->payload.substr(1))["sid"];
  OnLoop([&] { server_->Find(sid)->Close(); });
  auto close = ws->ReadMessage();
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->opcode, 8);
  EXPECT_TRUE(events_.WaitPrefix("close:" + sid + ":forced close"));
}

TEST_F(EngineIoServerTest, WebSocketMessageOverMaxPayloadCloses1009) {
  EngineIoServerOptions options;
  options.max_payload = 64;
  StartEngine(options);
  auto ws = Client();
  ASSERT_EQ(ws->Upgrade("/engine.io/?EIO=4&transport=websocket")->status, 101);
  ASSERT_TRUE(ws->ReadMessage().has_value());
  ASSERT_TRUE(ws->SendText("4" + std::string(100, 'x')));
  auto close = ws->ReadMessage();
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->opcode, 8);
  ASSERT_GE(close->payload.size(), 2u);
  EXPECT_EQ(base::LoadBe16(base::AsBytes(close->payload).data()), 1009);
  EXPECT_TRUE(events_.WaitPrefix("close:"));
}

TEST_F(EngineIoServerTest, APendingSessionSendsAtMostMaxPendingPayloadUntilAccepted) {
  // Clients that never join cannot have the server hold max_payload each.
  EngineIoServerOptions options;
  options.max_payload = 1000;
  options.max_pending_per_address = 10;
  options.max_pending_payload = 100;
  StartEngine(options);
  // Polling: 413 over the pending limit, before the body is read.
  auto client = Client();
  std::string sid = Open(*client);
  EXPECT_EQ(client->Request("POST", Polling(sid), "4" + std::string(99, 'x'))->status, 200);
  EXPECT_EQ(client->Request("POST", Polling(sid), "4" + std::string(100, 'x'))->status, 413);
  auto accepted = Client();
  std::string joined = Open(*accepted);
  EXPECT_EQ(accepted->Request("POST", Polling(joined), "4accept me")->status, 200);
  EXPECT_TRUE(events_.WaitPrefix("message:accept me"));
  EXPECT_EQ(accepted->Request("POST", Polling(joined), "4" + std::string(500, 'x'))->status, 200);
  // WebSocket: 1009 over the pending limit; max_payload once accepted.
  for (bool accept : {false, true}) {
    SCOPED_TRACE(accept);
    auto ws = Client();
    ASSERT_EQ(ws->Upgrade("/engine.io/?EIO=4&transport=websocket")->status, 101);
    ASSERT_TRUE(ws->ReadMessage().has_value());
    if (accept) {
      ASSERT_TRUE(ws->SendText("4accept me"));
      auto echo = ws->ReadMessage();
      ASSERT_TRUE(echo.has_value());
      EXPECT_EQ(echo->payload, "4accept me");
    }
    ASSERT_TRUE(ws->SendText("4" + std::string(500, 'x')));
    auto reply = ws->ReadMessage();
    ASSERT_TRUE(reply.has_value());
    if (accept) {
      EXPECT_EQ(reply->payload, "4" + std::string(500, 'x'));
    } else {
      EXPECT_EQ(reply->opcode, 8);
      ASSERT_GE(reply->payload.size(), 2u);
      EXPECT_EQ(base::LoadBe16(base::AsBytes(reply->payload).data()), 1009);
    }
  }
}

TEST_F(EngineIoServerTest, OriginAllowListOnPollingAndWebSocket) {
  EngineIoServerOptions options;
  options.cors.allowed_origins = {"https://good.example"};
  StartEngine(options);
  auto client = Client();
  const testing::HeaderList good = {{"Origin", "https://good.example"}};
  const testing::HeaderList evil = {{"Origin", "https://evil.example"}};

  auto refused = client->Request("GET", "/engine.io/?EIO=4&transport=polling", {}, evil);
  ExpectError(refused, 403, R"({"code":4,"message":"Forbidden"})");
  EXPECT_FALSE(refused->headers.Has("Access-Control-Allow-Origin"));
  auto ws_refused = Client()->Upgrade("/engine.io/?EIO=4&transport=websocket", evil);
  ASSERT_TRUE(ws_refused.has_value());
  EXPECT_EQ(ws_refused->status, 403);

  auto accepted = client->Request("GET", "/engine.io/?EIO=4&transport=polling", {}, good);
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->status, 200);
  EXPECT_EQ(accepted->headers.Get("Access-Control-Allow-Origin"), "https://good.example");
  EXPECT_EQ(accepted->headers.Get("Access-Control-Allow-Credentials"), "true");
  std::string sid = nlohmann::json::parse(accepted->body.substr(1))["sid"];
  // An allowed session is still refused for a request from another origin.
  EXPECT_EQ(client->Request("GET", Polling(sid), {}, evil)->status, 403);
  // Errors carry the CORS headers so that the page can read them.
  auto error = client->Request("GET", Polling("nope"), {}, good);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->status, 400);
  EXPECT_EQ(error->headers.Get("Access-Control-Allow-Origin"), "https://good.example");
  auto ws = Client();
  auto upgraded = ws->Upgrade("/engine.io/?EIO=4&transport=websocket", good);
  ASSERT_TRUE(upgraded.has_value());
  EXPECT_EQ(upgraded->status, 101);
  // Native clients send no Origin.
  EXPECT_EQ(Client()->Request("GET", "/engine.io/?EIO=4&transport=polling")->status, 200);
  auto preflight = client->Request("OPTIONS", "/engine.io/?EIO=4&transport=polling", {},
                                   {{"Origin", "https://good.example"},
                                    {"Access-Control-Request-Method", "POST"},
                                    {"Access-Control-Request-Headers", "x-auth-token"}});
  ASSERT_TRUE(preflight.has_value());
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->headers.Get("Access-Control-Allow-Origin"), "https://good.example");
  // Section 1.11: a client's extraHeaders pass the preflight.
  EXPECT_EQ(preflight->headers.Get("Access-Control-Allow-Headers"), "x-auth-token");
  EXPECT_EQ(preflight->headers.Get("Vary"), "Origin, Access-Control-Request-Headers");
}

TEST_F(EngineIoServerTest, AnyOriginModeAndReload) {
  EngineIoServerOptions options;
  options.cors.allowed_origins = {"*"};
  StartEngine(options);
  auto reply = Client()->Request("GET", "/engine.io/?EIO=4&transport=polling", {},
                                 {{"Origin", "https://anyone.example"}});
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->headers.Get("Access-Control-Allow-Origin"), "*");
  // A reload narrows the list for new requests.
  OnLoop([&] {
    net::CorsOptions cors;
    cors.allowed_origins = {"https://only.example"};
    server_->SetCorsOptions(cors);
  });
  EXPECT_EQ(Client()
                ->Request("GET", "/engine.io/?EIO=4&transport=polling", {},
                          {{"Origin", "https://anyone.example"}})
                ->status,
            403);
}

TEST_F(EngineIoServerTest, CreateRefusesBadOptions) {
  EngineIoServerOptions options;
  options.ping_interval = std::chrono::milliseconds(0);
  EXPECT_FALSE(EngineIoServer::Create(loop(), options, {}).has_value());
  options = {};
  options.max_payload = 0;
  EXPECT_FALSE(EngineIoServer::Create(loop(), options, {}).has_value());
}

}  // namespace
}  // namespace turnkey::signal
