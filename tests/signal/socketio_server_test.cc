// SocketIoServer over a real HttpServer on loopback with a raw WebSocket /
// polling client: namespaces, the asynchronous authorizer, CONNECT_ERROR,
// acks both ways, server-side disconnects, the user index and the rate
// limit (reference/socketio.md section 1.9).
#include "signal/socketio_server.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "base/clock.h"
#include "net/event_loop.h"
#include "tests/signal/server_fixture.h"

namespace turnkey::signal {
namespace {

using testing::RawClient;
using testing::Recorder;

class SocketIoServerTest : public testing::ServerFixture {
 protected:
  // Creates the server; `setup` registers namespaces before clients come.
  void StartSocketIo(const std::function<void(SocketIoServer&)>& setup,
                     SocketIoServerOptions options = {}) {
    options.clock = &clock_;
    auto server = SocketIoServer::Create(loop(), options);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
    setup(*server_);
    ASSERT_TRUE(router().Add("*", "/socket.io/*", server_->AsHandler()).has_value());
    Start();
  }

  void DestroyServers() override { server_.reset(); }

  // A WebSocket-only Engine.IO connection (open packet consumed).
  std::unique_ptr<RawClient> OpenWs() {
    auto ws = Client();
    auto reply = ws->Upgrade("/socket.io/?EIO=4&transport=websocket");
    EXPECT_TRUE(reply.has_value() && reply->status == 101);
    auto open = ws->ReadMessage();
    EXPECT_TRUE(open.has_value() && open->payload.starts_with("0{"));
    return ws;
  }

  // Reads the next text frame.
  static std::string Next(RawClient& ws) {
    auto message = ws.ReadMessage();
    if (!message) {
      return "<nothing>";
    }
    return message->payload;
  }

  // Joins `nsp` ("" for "/") with `auth`; returns the socket id.
  static std::string Join(RawClient& ws, const std::string& nsp, const std::string& auth = "") {
    std::string prefix = nsp.empty() ? "" : nsp + ",";
    EXPECT_TRUE(ws.SendText("40" + prefix + auth));
    std::string reply = Next(ws);
    std::smatch match;
    if (!std::regex_match(reply, match,
                          std::regex("40" + prefix + "\\{\"sid\":\"([A-Za-z0-9_-]{15})\"\\}"))) {
      ADD_FAILURE() << "CONNECT reply: " << reply;
      return {};
    }
    return match[1];
  }

  base::FakeClock clock_;
  Recorder events_;
  std::unique_ptr<SocketIoServer> server_;
};

// A namespace whose authorizer answers on a later loop iteration: token
// "good-<user>" is accepted as that user, anything else refused.
void AsyncTokenAuth(SocketIoServer& server, net::EventLoop& loop, const std::string& nsp) {
  server.Of(nsp).set_authorizer([&loop](const Json& auth, const EngineIoHandshake&, auto done) {
    std::string token = auth.contains("token") ? auth["token"].get<std::string>() : "";
    const uint64_t login = auth.value("login", uint64_t{0});
    loop.Post([token, login, done = std::move(done)] {
      if (token.starts_with("good-")) {
        SocketIoSocketData data;
        data.user_id = token.substr(5);
        data.device_id = "device";
        data.session = login;
        done(SocketIoAuthResult::Accept(std::move(data)));
      } else {
        done(SocketIoAuthResult::Reject("Not authorized",
                                        Json::object({{"code", "E_TOKEN_INVALID"}})));
      }
    });
  });
}

TEST_F(SocketIoServerTest, AsyncAuthorizerAcceptsAndRejects) {
  SocketIoServerOptions options;
  options.keep_auth = true;
  StartSocketIo(
      [&](SocketIoServer& server) {
        AsyncTokenAuth(server, loop(), "/");
        AsyncTokenAuth(server, loop(), "/admin");
        server.Of("/").OnConnection([&](SocketIoSocket& socket) {
          events_.Add("connect:" + socket.data().user_id + ":" + socket.transport_name() + ":" +
                      socket.auth().dump());
        });
      },
      options);
  auto ws = OpenWs();
  ASSERT_TRUE(ws->SendText(R"(40{"token":"bad"})"));
  EXPECT_EQ(Next(*ws), R"(44{"message":"Not authorized","data":{"code":"E_TOKEN_INVALID"}})");
  ASSERT_TRUE(ws->SendText(R"(40/admin,{"token":"bad"})"));
  EXPECT_EQ(Next(*ws),
            R"(44/admin,{"message":"Not authorized","data":{"code":"E_TOKEN_INVALID"}})");
  // The connection stays usable after a refusal.
  std::string id = Join(*ws, "", R"({"token":"good-alice"})");
  EXPECT_TRUE(events_.WaitPrefix(R"(connect:alice:websocket:{"token":"good-alice"})"));
  EXPECT_TRUE(OnLoop([&] {
    auto socket = server_->FindSocket(id);
    return socket != nullptr && socket->data().device_id == "device" &&
           server_->IsUserConnected("alice") && server_->SocketsOfUser("alice").size() == 1;
  }));
  EXPECT_EQ(OnLoop([&] { return server_->stats().connect_errors; }), 2u);
}

// socket.io-client repeats its CONNECT when connect() is called before the answer: the
// connection stays, one socket joins, and its answer is the only one. A CONNECT once joined
// still closes the connection (ProtocolViolationsCloseTheConnection).
TEST_F(SocketIoServerTest, AConnectRepeatedWhileAuthorizingIsAnsweredOnce) {
  // The authorizer answers when the test says so.
  std::vector<std::function<void(SocketIoAuthResult)>> pending;
  StartSocketIo([&](SocketIoServer& server) {
    server.Of("/").set_authorizer([&](const Json&, const EngineIoHandshake&, auto done) {
      pending.push_back(std::move(done));
    });
    server.Of("/").OnConnection(
        [&](SocketIoSocket& socket) { events_.Add("connect:" + socket.data().user_id); });
  });
  auto ws = OpenWs();
  ASSERT_TRUE(ws->SendText(R"(40{"token":"t"})"));
  ASSERT_TRUE(ws->SendText(R"(40{"token":"t"})"));
  ASSERT_TRUE(OnLoopEventually([&] { return server_->stats().repeated_connects > 0; }));
  OnLoop([&] {
    ASSERT_EQ(pending.size(), 1u);
    SocketIoSocketData data;
    data.user_id = "alice";
    pending.front()(SocketIoAuthResult::Accept(std::move(data)));
  });
  EXPECT_TRUE(std::regex_match(Next(*ws), std::regex(R"(40\{"sid":"[A-Za-z0-9_-]{15}"\})")));
  // No second answer, and the connection stays open.
  EXPECT_FALSE(ws->ReadMessage(std::chrono::milliseconds(200)).has_value());
  EXPECT_FALSE(ws->WaitClosed(std::chrono::milliseconds(100)));
  EXPECT_EQ(events_.Count("connect:alice"), 1u);
  EXPECT_EQ(OnLoop([&] { return server_->SocketsOfUser("alice").size(); }), 1u);
  EXPECT_EQ(OnLoop([&] { return server_->stats().repeated_connects; }), 1u);
  EXPECT_EQ(OnLoop([&] { return server_->stats().protocol_errors; }), 0u);
}

TEST_F(SocketIoServerTest, TheConnectPayloadIsNotKeptByDefault) {
  StartSocketIo([&](SocketIoServer& server) {
    AsyncTokenAuth(server, loop(), "/");
    server.Of("/").OnConnection(
        [&](SocketIoSocket& socket) { events_.Add("auth:" + socket.auth().dump()); });
  });
  auto ws = OpenWs();
  Join(*ws, "", R"({"token":"good-alice"})");
  EXPECT_TRUE(events_.WaitPrefix("auth:{}"));
}

TEST_F(SocketIoServerTest, UnknownNamespaceGetsInvalidNamespace) {
  StartSocketIo([](SocketIoServer& server) { server.Of("/"); });
  auto ws = OpenWs();
  ASSERT_TRUE(ws->SendText("40/random,"));
  EXPECT_EQ(Next(*ws), R"(44/random,{"message":"Invalid namespace"})");
  ASSERT_TRUE(ws->SendText("40/random"));
  EXPECT_EQ(Next(*ws), R"(44/random,{"message":"Invalid namespace"})");
  EXPECT_FALSE(Join(*ws, "").empty());
}

// Refused CONNECTs are answered, a few of them in a row on one connection;
// past 16 the connection is closed (one polling POST may carry thousands of them, each
// answer a cost to the loop).
TEST_F(SocketIoServerTest, TooManyRefusedConnectsCloseTheConnection) {
  StartSocketIo([](SocketIoServer& server) { server.Of("/"); });
  auto ws = OpenWs();
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(ws->SendText("40/random,"));
    EXPECT_EQ(Next(*ws), R"(44/random,{"message":"Invalid namespace"})") << i;
  }
  // An accepted CONNECT starts the count again.
  EXPECT_FALSE(Join(*ws, "").empty());
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(ws->SendText("40/random,"));
    EXPECT_EQ(Next(*ws), R"(44/random,{"message":"Invalid namespace"})") << i;
  }
  EXPECT_FALSE(ws->WaitClosed(std::chrono::milliseconds(100)));
  ASSERT_TRUE(ws->SendText("40/random,"));
  EXPECT_EQ(Next(*ws), R"(44/random,{"message":"Invalid namespace"})");
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(OnLoop([&] { return server_->stats().protocol_errors; }), 1u);
}

TEST_F(SocketIoServerTest, EventsAndAcksBothWays) {
  StartSocketIo([&](SocketIoServer& server) {
    SocketIoNamespace& ns = server.Of("/");
    ns.On("echo", [](SocketIoSocket&, Json args, SocketIoAck ack) {
      EXPECT_TRUE(ack.requested());
      ack(args);
      ack(Json::array({"twice"}));  // ignored: at most one ACK per id
      EXPECT_FALSE(ack.requested());
    });
    ns.On("no-ack", [&](SocketIoSocket&, Json args, SocketIoAck ack) {
      events_.Add("no-ack:" + args.dump() + ":" + (ack.requested() ? "ack" : "none"));
      ack(Json::array({"dropped"}));
    });
    ns.OnAny([&](SocketIoSocket&, std::string_view event, Json args, SocketIoAck) {
      events_.Add("any:" + std::string(event) + ":" + args.dump());
    });
  });
  auto ws = OpenWs();
  std::string id = Join(*ws, "");
  ASSERT_TRUE(ws->SendText(R"(4212["echo",1,"2",{"3":[true]}])"));
  EXPECT_EQ(Next(*ws), R"(4312[1,"2",{"3":[true]}])");
  ASSERT_TRUE(ws->SendText(R"(42["no-ack",{"a":null}])"));
  EXPECT_TRUE(events_.WaitPrefix(R"(no-ack:[{"a":null}]:none)"));
  ASSERT_TRUE(ws->SendText(R"(42["other",true])"));
  EXPECT_TRUE(events_.WaitPrefix(R"(any:other:[true])"));
  // Server -> client with an ack.
  OnLoop([&] {
    server_->FindSocket(id)->EmitWithAck(
        "question", Json::array({42}), std::chrono::seconds(5),
        [&](SocketIoAckResult result) { events_.Add("answer:" + result.value().dump()); });
  });
  EXPECT_EQ(Next(*ws), R"(420["question",42])");
  ASSERT_TRUE(ws->SendText(R"(4399["unknown id is ignored"])"));
  ASSERT_TRUE(ws->SendText(R"(430["yes",{"x":1}])"));
  EXPECT_TRUE(events_.WaitPrefix(R"(answer:["yes",{"x":1}])"));
  ASSERT_TRUE(ws->SendText(R"(430["again"])"));  // answered already: ignored
  ASSERT_TRUE(ws->SendText(R"(4213["echo"])"));
  EXPECT_EQ(Next(*ws), "4313[]");
  EXPECT_EQ(events_.Count("answer:"), 1u);
  // A client's own event names (Dart socket_io_client 2.x sends a buffered
  // "disconnecting") reach no handler and do not close the connection.
  ASSERT_TRUE(ws->SendText(R"(42["disconnecting","transport close"])"));
  ASSERT_TRUE(ws->SendText(R"(427["connect",null])"));
  ASSERT_TRUE(ws->SendText(R"(4214["echo","still here"])"));
  EXPECT_EQ(Next(*ws), R"(4314["still here"])");
  EXPECT_EQ(events_.Count("any:disconnecting"), 0u);
  EXPECT_EQ(events_.Count("any:connect"), 0u);
  EXPECT_EQ(OnLoop([&] { return server_->stats().reserved_dropped; }), 2u);
}

TEST_F(SocketIoServerTest, EmitWithAckTimesOutOrFailsOnDisconnect) {
  StartSocketIo([](SocketIoServer& server) { server.Of("/"); });
  auto ws = OpenWs();
  std::string id = Join(*ws, "");
  OnLoop([&] {
    auto socket = server_->FindSocket(id);
    socket->EmitWithAck(
        "slow", Json::array(), std::chrono::milliseconds(20), [&](SocketIoAckResult result) {
          events_.Add(result                                         ? "slow:answered"
                      : result.error() == SocketIoAckError::kTimeout ? "slow:timeout"
                                                                     : "slow:disconnected");
        });
    socket->EmitWithAck("never", Json::array(), std::chrono::milliseconds(0),
                        [&](SocketIoAckResult result) {
                          events_.Add(!result && result.error() == SocketIoAckError::kDisconnected
                                          ? "never:disconnected"
                                          : "never:other");
                        });
  });
  EXPECT_TRUE(events_.WaitPrefix("slow:timeout"));
  ASSERT_TRUE(ws->SendText("41"));
  EXPECT_TRUE(events_.WaitPrefix("never:disconnected"));
  EXPECT_FALSE(OnLoop([&] { return server_->FindSocket(id) != nullptr; }));
}

TEST_F(SocketIoServerTest, BinaryAttachmentsBothWays) {
  StartSocketIo([&](SocketIoServer& server) {
    server.Of("/").On("upload", [&](SocketIoSocket& socket, Json args, SocketIoAck ack) {
      events_.Add("upload:" + std::to_string(args[0].get_binary().size()));
      socket.Emit("download", Json::array({args[0], "text"}));
      ack(Json::array({"ok", Json::binary({9, 8})}));
    });
  });
  auto ws = OpenWs();
  Join(*ws, "");
  ASSERT_TRUE(ws->SendText(R"(451-15["upload",{"_placeholder":true,"num":0}])"));
  ASSERT_TRUE(ws->SendBinary(std::string("\x01\x02\x03\x04", 4)));
  EXPECT_TRUE(events_.WaitPrefix("upload:4"));
  EXPECT_EQ(Next(*ws), R"(451-["download",{"_placeholder":true,"num":0},"text"])");
  auto attachment = ws->ReadMessage();
  ASSERT_TRUE(attachment.has_value());
  EXPECT_EQ(attachment->opcode, 2);
  EXPECT_EQ(attachment->payload, std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(Next(*ws), R"(461-15["ok",{"_placeholder":true,"num":0}])");
  EXPECT_EQ(ws->ReadMessage()->payload, std::string("\x09\x08", 2));
}

TEST_F(SocketIoServerTest, ServerDisconnectKeepsTheConnection) {
  StartSocketIo([&](SocketIoServer& server) {
    server.Of("/").OnDisconnect([&](SocketIoSocket& socket, std::string_view reason) {
      events_.Add("disconnect:" + socket.nsp() + ":" + std::string(reason));
    });
    server.Of("/admin");
  });
  auto ws = OpenWs();
  std::string id = Join(*ws, "");
  Join(*ws, "/admin");
  OnLoop([&] { server_->FindSocket(id)->Disconnect(); });
  EXPECT_EQ(Next(*ws), "41");
  EXPECT_TRUE(events_.WaitPrefix("disconnect:/:server namespace disconnect"));
  // The other namespace and the connection go on.
  ASSERT_TRUE(ws->SendText("41/admin,"));
  EXPECT_EQ(Join(*ws, "").size(), 15u);
  EXPECT_EQ(OnLoop([&] { return server_->connection_count(); }), 1u);
}

TEST_F(SocketIoServerTest, DisconnectUserClosesEveryConnectionOfThatUser) {
  StartSocketIo([&](SocketIoServer& server) {
    AsyncTokenAuth(server, loop(), "/");
    server.Of("/").OnDisconnect([&](SocketIoSocket& socket, std::string_view reason) {
      events_.Add("disconnect:" + socket.data().user_id + ":" + std::string(reason));
    });
  });
  auto phone = OpenWs();
  auto laptop = OpenWs();
  auto other = OpenWs();
  Join(*phone, "", R"({"token":"good-alice"})");
  Join(*laptop, "", R"({"token":"good-alice"})");
  Join(*other, "", R"({"token":"good-bob"})");
  EXPECT_EQ(
      OnLoop([&] { return server_->EmitToUser("alice", "/", "hello", Json::array({"alice"})); }),
      2u);
  EXPECT_EQ(Next(*phone), R"(42["hello","alice"])");
  EXPECT_EQ(Next(*laptop), R"(42["hello","alice"])");
  EXPECT_EQ(OnLoop([&] { return server_->DisconnectUser("alice"); }), 2u);
  EXPECT_EQ(Next(*phone), "41");
  EXPECT_TRUE(phone->WaitClosed());
  EXPECT_EQ(Next(*laptop), "41");
  EXPECT_TRUE(laptop->WaitClosed());
  EXPECT_TRUE(events_.WaitCount("disconnect:alice:server namespace disconnect", 2));
  EXPECT_FALSE(OnLoop([&] { return server_->IsUserConnected("alice"); }));
  EXPECT_TRUE(OnLoop([&] { return server_->IsUserConnected("bob"); }));
  ASSERT_TRUE(other->SendText("42[\"still here\"]"));
  EXPECT_EQ(OnLoop([&] { return server_->socket_count(); }), 1u);
}

TEST_F(SocketIoServerTest, DisconnectUserCanCloseTheSocketsOfOneLoginOnly) {
  StartSocketIo([&](SocketIoServer& server) { AsyncTokenAuth(server, loop(), "/"); });
  auto phone = OpenWs();
  auto laptop = OpenWs();
  Join(*phone, "", R"({"token":"good-alice","login":7})");
  Join(*laptop, "", R"({"token":"good-alice","login":8})");
  EXPECT_EQ(OnLoop([&] { return server_->DisconnectUser("alice", true, 7); }), 1u);
  EXPECT_EQ(Next(*phone), "41");
  EXPECT_TRUE(phone->WaitClosed());
  EXPECT_TRUE(OnLoop([&] { return server_->IsUserConnected("alice"); }));
  EXPECT_EQ(OnLoop([&] { return server_->DisconnectUser("bob", true, 8); }), 0u);
  EXPECT_EQ(OnLoop([&] { return server_->socket_count(); }), 1u);
}

TEST_F(SocketIoServerTest, RateLimitAnswersWithAnError) {
  SocketIoServerOptions options;
  options.rate_limit.events_per_second = 1;
  options.rate_limit.burst = 2;
  StartSocketIo(
      [](SocketIoServer& server) {
        server.Of("/").On("echo", [](SocketIoSocket&, Json args, SocketIoAck ack) { ack(args); });
      },
      options);
  auto ws = OpenWs();
  Join(*ws, "");
  ASSERT_TRUE(ws->SendText(R"(421["echo",1])"));
  EXPECT_EQ(Next(*ws), "431[1]");
  ASSERT_TRUE(ws->SendText(R"(422["echo",2])"));
  EXPECT_EQ(Next(*ws), "432[2]");
  ASSERT_TRUE(ws->SendText(R"(423["echo",3])"));
  EXPECT_EQ(Next(*ws), R"(433[{"ok":false,"error":"Rate limited"}])");
  EXPECT_EQ(Next(*ws), R"(42["error",{"error":"Rate limited","event":"echo"}])");
  OnLoop([&] { clock_.Advance(std::chrono::seconds(1)); });
  ASSERT_TRUE(ws->SendText(R"(424["echo",4])"));
  EXPECT_EQ(Next(*ws), "434[4]");
  EXPECT_EQ(OnLoop([&] { return server_->stats().rate_limited; }), 1u);
}

// A client that goes on sending far over the limit is closed: 1,000
// refusals (each answered) at once, refilled at the event rate.
TEST_F(SocketIoServerTest, EventsFarOverTheRateLimitCloseTheConnection) {
  SocketIoServerOptions options;
  options.rate_limit.events_per_second = 1;
  options.rate_limit.burst = 1;
  StartSocketIo([](SocketIoServer& server) { server.Of("/").On("x", [](auto&, auto, auto) {}); },
                options);
  auto ws = OpenWs();
  Join(*ws, "");
  auto flood = [&](int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(ws->SendText(R"(42["x"])"));
    }
  };
  auto wait_refused = [&](uint64_t count) {
    EXPECT_TRUE(OnLoopEventually([&] { return server_->stats().rate_limited >= count; }))
        << "the server did not refuse " << count << " events";
  };
  flood(1 + 1000);  // the one the burst allows, then 1,000 refused
  wait_refused(1000);
  OnLoop([&] { clock_.Advance(std::chrono::seconds(1)); });
  flood(2);  // one event and one refusal more came back in that second
  wait_refused(1001);
  EXPECT_FALSE(ws->WaitClosed(std::chrono::milliseconds(100)));
  flood(1);  // a refusal with none left
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(OnLoop([&] { return server_->stats().rate_limited; }), 1002u);
  EXPECT_EQ(OnLoop([&] { return server_->stats().protocol_errors; }), 1u);
}

// The call contract's callError is {error, callId}: with error_id_field set,
// a refused event's error names the id it carried, or null.
TEST_F(SocketIoServerTest, RateLimitErrorCarriesTheIdField) {
  SocketIoServerOptions options;
  options.rate_limit.events_per_second = 1;
  options.rate_limit.burst = 1;
  options.rate_limit.error_event = "callError";
  options.rate_limit.error_id_field = "callId";
  StartSocketIo(
      [](SocketIoServer& server) {
        server.Of("/").On("echo", [](SocketIoSocket&, Json args, SocketIoAck ack) { ack(args); });
      },
      options);
  auto ws = OpenWs();
  Join(*ws, "");
  ASSERT_TRUE(ws->SendText(R"(421["echo",1])"));
  EXPECT_EQ(Next(*ws), "431[1]");
  ASSERT_TRUE(ws->SendText(R"(42["echo",{"callId":"c1","offer":{}}])"));
  EXPECT_EQ(Next(*ws), R"(42["callError",{"error":"Rate limited","callId":"c1","event":"echo"}])");
  for (std::string refused :
       {R"(42["echo",{"callId":7}])", R"(42["echo","c1"])", R"(42["echo"])", R"(42["echo",{}])"}) {
    ASSERT_TRUE(ws->SendText(refused));
    EXPECT_EQ(Next(*ws), R"(42["callError",{"error":"Rate limited","callId":null,"event":"echo"}])")
        << refused;
  }
}

// A handler may replace itself while it runs: the running one goes on with
// its own state (ASan would see it freed), and the next event reaches the
// new one.
TEST_F(SocketIoServerTest, AHandlerMayReplaceItselfWhileItRuns) {
  StartSocketIo([](SocketIoServer& server) {
    SocketIoNamespace* ns = &server.Of("/");
    ns->On("swap", [ns, reply = std::string("the first handler, still alive")](
                       SocketIoSocket&, Json, SocketIoAck ack) {
      ns->On("swap", [](SocketIoSocket&, Json, SocketIoAck ack) {
        ack(Json::array({"the second handler"}));
      });
      ack(Json::array({reply}));
    });
  });
  auto ws = OpenWs();
  Join(*ws, "");
  ASSERT_TRUE(ws->SendText(R"(421["swap"])"));
  EXPECT_EQ(Next(*ws), R"(431["the first handler, still alive"])");
  ASSERT_TRUE(ws->SendText(R"(422["swap"])"));
  EXPECT_EQ(Next(*ws), R"(432["the second handler"])");
}

TEST_F(SocketIoServerTest, ProtocolViolationsCloseTheConnection) {
  StartSocketIo([&](SocketIoServer& server) {
    server.Of("/").OnDisconnect([&](SocketIoSocket&, std::string_view reason) {
      events_.Add("disconnect:" + std::string(reason));
    });
    server.Of("/other");
  });
  // Undecodable packets, a packet for a namespace not joined, a second
  // CONNECT, a CONNECT_ERROR from the client.
  for (std::string bad : {"4abc", "42{}", R"(42abc["x"])", R"(42/other,["x"])", "40", "44{}"}) {
    auto ws = OpenWs();
    Join(*ws, "");
    ASSERT_TRUE(ws->SendText(bad));
    EXPECT_TRUE(ws->WaitClosed()) << bad;
  }
  EXPECT_TRUE(events_.WaitCount("disconnect:parse error", 3));
  EXPECT_TRUE(events_.WaitCount("disconnect:forced server close", 3));
  EXPECT_EQ(OnLoop([&] { return server_->stats().protocol_errors; }), 6u);
}

TEST_F(SocketIoServerTest, ConnectionWithoutNamespaceTimesOut) {
  SocketIoServerOptions options;
  // Long enough for the second client to join in time on a loaded machine.
  options.connect_timeout = std::chrono::milliseconds(1000);
  StartSocketIo([](SocketIoServer& server) { server.Of("/"); }, options);
  auto ws = OpenWs();
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(OnLoop([&] { return server_->stats().connect_timeouts; }), 1u);
  // A client that joins in time stays.
  auto joined = OpenWs();
  Join(*joined, "");
  ASSERT_TRUE(joined->SendText("42[\"x\"]"));
  EXPECT_EQ(OnLoop([&] { return server_->socket_count(); }), 1u);
}

TEST_F(SocketIoServerTest, AConnectionWhoseLastNamespaceLeftMustJoinAgainInTime) {
  SocketIoServerOptions options;
  options.connect_timeout = std::chrono::milliseconds(1000);
  options.engineio.max_pending_per_address = 1;
  StartSocketIo([](SocketIoServer& server) { server.Of("/"); }, options);
  auto ws = OpenWs();
  std::string id = Join(*ws, "");
  auto handshake_status = [&] {
    auto client = Client();
    auto reply = client->Upgrade("/socket.io/?EIO=4&transport=websocket");
    return reply ? reply->status : 0;
  };
  // Joined: no longer pending, so another connection is let in (and joins,
  // so that it is not pending either).
  auto second = OpenWs();
  Join(*second, "");
  // Signed out by the server: the connection stays (the reference's
  // disconnect()), counted as pending again and given connect_timeout.
  OnLoop([&] { server_->FindSocket(id)->Disconnect(); });
  EXPECT_EQ(Next(*ws), "41");
  EXPECT_EQ(handshake_status(), 403);
  EXPECT_TRUE(ws->WaitClosed());
  EXPECT_EQ(OnLoop([&] { return server_->stats().connect_timeouts; }), 1u);
  // One that joins again in time stays.
  auto again = OpenWs();
  id = Join(*again, "");
  OnLoop([&] { server_->FindSocket(id)->Disconnect(); });
  EXPECT_EQ(Next(*again), "41");
  EXPECT_EQ(Join(*again, "").size(), 15u);
  ASSERT_TRUE(again->SendText("42[\"x\"]"));
  EXPECT_EQ(OnLoop([&] { return server_->socket_count(); }), 2u);  // second and again
}

TEST_F(SocketIoServerTest, ConnectOverPolling) {
  StartSocketIo([](SocketIoServer& server) {
    server.Of("/").OnConnection([](SocketIoSocket& socket) {
      socket.Emit("welcome", Json::array({socket.transport_name()}));
    });
  });
  auto client = Client();
  auto open = client->Request("GET", "/socket.io/?EIO=4&transport=polling");
  ASSERT_TRUE(open.has_value());
  std::string sid = Json::parse(open->body.substr(1))["sid"];
  std::string url = "/socket.io/?EIO=4&transport=polling&sid=" + sid;
  EXPECT_EQ(client->Request("POST", url, "40")->body, "ok");
  auto reply = client->Request("GET", url);
  ASSERT_TRUE(reply.has_value());
  std::smatch match;
  ASSERT_TRUE(std::regex_match(reply->body, match,
                               std::regex("40\\{\"sid\":\"([A-Za-z0-9_-]{15})\"\\}\x1e"
                                          R"(42\["welcome","polling"\])")))
      << reply->body;
  // Section 1.9.3: the socket id is not the Engine.IO sid.
  EXPECT_NE(match[1].str(), sid);
}

// Connection-state recovery (reference/socketio.md 1.9.3): an authorizer
// like AsyncTokenAuth's that resumes the socket a CONNECT's "pid" names when
// FindResumable finds one of the same user (`check_user` false leaves that
// check to the server alone).
void ResumingAuth(SocketIoServer& server, const std::string& nsp, bool check_user = true) {
  server.Of(nsp).set_authorizer(
      [&server, nsp, check_user](const Json& auth, const EngineIoHandshake&, auto done) {
        SocketIoSocketData data;
        data.user_id = auth.value("token", std::string()).substr(5);
        data.session = auth.value("login", uint64_t{0});
        SocketIoAuthResult result = SocketIoAuthResult::Accept(std::move(data));
        if (auto resume = server.FindResumable(nsp, auth.value("pid", std::string()));
            resume && (!check_user || resume->data.user_id == result.data.user_id)) {
          result.resume_sid = resume->sid;
        }
        done(std::move(result));
      });
}

// Joins "/" with `auth` when the server gives a pid; {sid, pid}.
std::pair<std::string, std::string> JoinWithPid(RawClient& ws, const std::string& auth) {
  EXPECT_TRUE(ws.SendText("40" + auth));
  auto reply = ws.ReadMessage();
  std::smatch match;
  if (!reply ||
      !std::regex_match(
          reply->payload, match,
          std::regex(R"re(40\{"sid":"([A-Za-z0-9_-]{15})","pid":"([A-Za-z0-9_.-]+)"\})re"))) {
    ADD_FAILURE() << "CONNECT reply: " << (reply ? reply->payload : "<nothing>");
    return {};
  }
  return {match[1], match[2]};
}

TEST_F(SocketIoServerTest, RecoveryResumesALostOrReplacedSocketUnderItsId) {
  SocketIoServerOptions options;
  options.recovery_window = std::chrono::seconds(10);
  StartSocketIo(
      [&](SocketIoServer& server) {
        ResumingAuth(server, "/");
        server.Of("/").OnConnection([&](SocketIoSocket& socket) {
          events_.Add("connect:" + socket.id() + (socket.recovered() ? ":recovered" : ":new"));
        });
        server.Of("/").OnDisconnect([&](SocketIoSocket& socket, std::string_view reason) {
          events_.Add("disconnect:" + socket.id() + ":" + std::string(reason));
        });
      },
      options);
  auto first = OpenWs();
  auto [sid, pid] = JoinWithPid(*first, R"({"token":"good-alice"})");
  ASSERT_FALSE(sid.empty());
  EXPECT_TRUE(pid.starts_with(sid + "."));
  EXPECT_TRUE(events_.WaitPrefix("connect:" + sid + ":new"));
  // The network drops the connection: the socket is lost, and resumable.
  first.reset();
  EXPECT_TRUE(events_.WaitPrefix("disconnect:" + sid + ":transport close"));
  EXPECT_EQ(OnLoop([&] { return server_->resumable_count(); }), 1u);
  auto second = OpenWs();
  EXPECT_EQ(JoinWithPid(*second, R"({"token":"good-alice","pid":")" + pid + R"(","offset":null})"),
            std::make_pair(sid, pid));
  EXPECT_TRUE(events_.WaitPrefix("connect:" + sid + ":recovered"));
  EXPECT_EQ(OnLoop([&] { return server_->resumable_count(); }), 0u);
  // The client moves again before this end saw its connection fail: the
  // live socket is taken over (DISCONNECT, in case a second client holds
  // it), its connection closed, and no disconnect handler runs for it.
  auto third = OpenWs();
  EXPECT_EQ(JoinWithPid(*third, R"({"token":"good-alice","pid":")" + pid + R"("})"),
            std::make_pair(sid, pid));
  EXPECT_EQ(Next(*second), "41");
  EXPECT_TRUE(second->WaitClosed());
  EXPECT_TRUE(events_.WaitCount("connect:" + sid + ":recovered", 2));
  EXPECT_EQ(events_.Count("disconnect:"), 1u);
  EXPECT_EQ(OnLoop([&] { return server_->SocketsOfUser("alice").size(); }), 1u);
  EXPECT_EQ(OnLoop([&] { return server_->connection_count(); }), 1u);
  ASSERT_TRUE(third->SendText(R"(42["still here"])"));
  EXPECT_TRUE(OnLoop([&] { return server_->FindSocket(sid) != nullptr; }));
}

TEST_F(SocketIoServerTest, RecoveryNeedsTheSameUserATruePidAndTime) {
  SocketIoServerOptions options;
  options.recovery_window = std::chrono::seconds(10);
  StartSocketIo(
      [&](SocketIoServer& server) {
        ResumingAuth(server, "/", /*check_user=*/false);
        server.Of("/").OnDisconnect([&](SocketIoSocket&, std::string_view reason) {
          events_.Add("disconnect:" + std::string(reason));
        });
      },
      options);
  size_t lost = 0;
  auto lose = [&](const std::string& auth) {
    auto ws = OpenWs();
    auto joined = JoinWithPid(*ws, auth);
    ws.reset();
    EXPECT_TRUE(events_.WaitCount("disconnect:transport close", ++lost));
    return joined;
  };
  // Another user's CONNECT does not get alice's socket, whatever its
  // authorizer says.
  auto [sid, pid] = lose(R"({"token":"good-alice"})");
  auto ws = OpenWs();
  EXPECT_NE(JoinWithPid(*ws, R"({"token":"good-bob","pid":")" + pid + R"("})").first, sid);
  // A pid with another MAC, or for another socket id, is nobody's.
  std::string forged = pid;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  auto ws2 = OpenWs();
  EXPECT_NE(JoinWithPid(*ws2, R"({"token":"good-alice","pid":")" + forged + R"("})").first, sid);
  // Past the window it is gone.
  clock_.Advance(std::chrono::seconds(11));
  auto ws3 = OpenWs();
  EXPECT_NE(JoinWithPid(*ws3, R"({"token":"good-alice","pid":")" + pid + R"("})").first, sid);
  // A socket its client left (41) is not resumable.
  auto ws4 = OpenWs();
  auto [left_sid, left_pid] = JoinWithPid(*ws4, R"({"token":"good-alice"})");
  ASSERT_TRUE(ws4->SendText("41"));
  EXPECT_TRUE(events_.WaitPrefix("disconnect:client namespace disconnect"));
  EXPECT_NE(JoinWithPid(*ws4, R"({"token":"good-alice","pid":")" + left_pid + R"("})").first,
            left_sid);
  // Signed out (DisconnectUser): the user's lost sockets go too.
  auto ws6 = OpenWs();
  auto [gone_sid, gone_pid] = JoinWithPid(*ws6, R"({"token":"good-alice","login":7})");
  ws6.reset();
  EXPECT_TRUE(events_.WaitCount("disconnect:transport close", ++lost));
  EXPECT_TRUE(OnLoop([&] { return server_->FindResumable("/", gone_pid).has_value(); }));
  EXPECT_EQ(OnLoop([&] { return server_->DisconnectUser("alice", true, 8); }), 0u);
  EXPECT_TRUE(OnLoop([&] { return server_->FindResumable("/", gone_pid).has_value(); }));
  OnLoop([&] { return server_->DisconnectUser("alice", true, 7); });
  EXPECT_FALSE(OnLoop([&] { return server_->FindResumable("/", gone_pid).has_value(); }));
  // Off: no pid, and a pid is ignored.
  OnLoop([&] {
    server_->SetRecoveryWindow(std::chrono::milliseconds::zero());
    return true;
  });
  auto ws5 = OpenWs();
  EXPECT_NE(Join(*ws5, "", R"({"token":"good-alice","pid":")" + left_pid + R"("})"), "");
}

TEST_F(SocketIoServerTest, CreateRefusesBadOptions) {
  SocketIoServerOptions options;
  options.connect_timeout = std::chrono::milliseconds(0);
  EXPECT_FALSE(SocketIoServer::Create(loop(), options).has_value());
  options = {};
  options.rate_limit.burst = 0;
  EXPECT_FALSE(SocketIoServer::Create(loop(), options).has_value());
}

}  // namespace
}  // namespace turnkey::signal
