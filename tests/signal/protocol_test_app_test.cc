// ProtocolTestApp with the byte-level examples of reference/socketio.md
// sections 1.9.4 and 1.10 (the ones conformance tools compare as strings).
#include "signal/protocol_test_app.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/signal/server_fixture.h"

namespace turnkey::signal {
namespace {

using testing::RawClient;

class ProtocolTestAppTest : public testing::ServerFixture {
 protected:
  void StartApp(ProtocolTestAppOptions options = {}) {
    auto app = ProtocolTestApp::Create(loop(), options);
    ASSERT_TRUE(app.has_value()) << app.error().message;
    app_ = std::move(*app);
    ASSERT_TRUE(app_->Mount(router()).has_value());
    Start();
  }

  void DestroyServers() override { app_.reset(); }

  std::unique_ptr<RawClient> OpenWs(const std::string& path) {
    auto ws = Client();
    auto reply = ws->Upgrade(path + "?EIO=4&transport=websocket");
    EXPECT_TRUE(reply.has_value() && reply->status == 101);
    auto open = ws->ReadMessage();
    EXPECT_TRUE(open.has_value() && open->payload.starts_with("0{"));
    return ws;
  }

  static std::string Next(RawClient& ws) {
    auto message = ws.ReadMessage();
    return message ? message->payload : "<nothing>";
  }

  // The next frame that is not a ping; pings are answered.
  static std::string NextNotPing(RawClient& ws) {
    while (true) {
      std::string next = Next(ws);
      if (next != "2") {
        return next;
      }
      ws.SendText("3");
    }
  }

  std::unique_ptr<ProtocolTestApp> app_;
};

const std::regex kConnectReply("40\\{\"sid\":\"[A-Za-z0-9_-]{15}\"\\}");

TEST_F(ProtocolTestAppTest, EngineIoEchoKeepsTextAndBinary) {
  StartApp();
  auto ws = OpenWs("/engine.io/");
  ASSERT_TRUE(ws->SendText("4hello"));
  EXPECT_EQ(Next(*ws), "4hello");
  ASSERT_TRUE(ws->SendBinary(std::string("\x00\xff", 2)));
  auto binary = ws->ReadMessage();
  ASSERT_TRUE(binary.has_value());
  EXPECT_EQ(binary->opcode, 2);
  EXPECT_EQ(binary->payload, std::string("\x00\xff", 2));
}

TEST_F(ProtocolTestAppTest, ConnectEmitsAuthOnRootAndCustom) {
  StartApp();
  auto ws = OpenWs("/socket.io/");
  ASSERT_TRUE(ws->SendText(R"(40{"token":"123"})"));
  EXPECT_TRUE(std::regex_match(Next(*ws), kConnectReply));
  EXPECT_EQ(Next(*ws), R"(42["auth",{"token":"123"}])");
  ASSERT_TRUE(ws->SendText("40/custom,"));
  EXPECT_TRUE(std::regex_match(Next(*ws), std::regex("40/custom,\\{\"sid\":\"[^\"]{15}\"\\}")));
  EXPECT_EQ(Next(*ws), R"(42/custom,["auth",{}])");
  ASSERT_TRUE(ws->SendText("40/random"));
  EXPECT_EQ(Next(*ws), R"(44/random,{"message":"Invalid namespace"})");
}

TEST_F(ProtocolTestAppTest, MessagesAndAcksByteForByte) {
  StartApp();
  auto ws = OpenWs("/socket.io/");
  ASSERT_TRUE(ws->SendText("40"));
  EXPECT_TRUE(std::regex_match(Next(*ws), kConnectReply));
  EXPECT_EQ(Next(*ws), R"(42["auth",{}])");
  ASSERT_TRUE(ws->SendText(R"(42["message",1,"2",{"3":[true]}])"));
  EXPECT_EQ(Next(*ws), R"(42["message-back",1,"2",{"3":[true]}])");
  ASSERT_TRUE(ws->SendText(R"(42456["message-with-ack",1,"2",{"3":[false]}])"));
  EXPECT_EQ(Next(*ws), R"(43456[1,"2",{"3":[false]}])");

  const std::string placeholders = R"({"_placeholder":true,"num":0},{"_placeholder":true,"num":1})";
  ASSERT_TRUE(ws->SendText(R"(452-["message",)" + placeholders + "]"));
  ASSERT_TRUE(ws->SendBinary(std::string("\x01\x02\x03", 3)));
  ASSERT_TRUE(ws->SendBinary(std::string("\x04\x05\x06", 3)));
  EXPECT_EQ(Next(*ws), R"(452-["message-back",)" + placeholders + "]");
  EXPECT_EQ(Next(*ws), std::string("\x01\x02\x03", 3));
  EXPECT_EQ(Next(*ws), std::string("\x04\x05\x06", 3));

  ASSERT_TRUE(ws->SendText(R"(452-789["message-with-ack",)" + placeholders + "]"));
  ASSERT_TRUE(ws->SendBinary(std::string("\x01\x02\x03", 3)));
  ASSERT_TRUE(ws->SendBinary(std::string("\x04\x05\x06", 3)));
  EXPECT_EQ(Next(*ws), "462-789[" + placeholders + "]");
  EXPECT_EQ(Next(*ws), std::string("\x01\x02\x03", 3));
  EXPECT_EQ(Next(*ws), std::string("\x04\x05\x06", 3));
}

TEST_F(ProtocolTestAppTest, BinaryOverPollingIsBase64) {
  StartApp();
  auto client = Client();
  auto open = client->Request("GET", "/socket.io/?EIO=4&transport=polling", {},
                              {{"Origin", "https://conformance.example"}});
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->headers.Get("Access-Control-Allow-Origin"), "*");
  std::string sid = Json::parse(open->body.substr(1))["sid"];
  std::string url = "/socket.io/?EIO=4&transport=polling&sid=" + sid;
  EXPECT_EQ(client->Request("POST", url, "40")->body, "ok");
  // The CONNECT answer and `auth` in one GET, as from the reference
  // (reference/socketio.md: "Multiple packets in one GET").
  auto poll = client->Request("GET", url);
  ASSERT_TRUE(poll.has_value());
  std::vector<std::string> records = testing::SplitPayload(poll->body);
  ASSERT_EQ(records.size(), 2u) << poll->body;
  EXPECT_TRUE(std::regex_match(records[0], kConnectReply));
  EXPECT_EQ(records[1], R"(42["auth",{}])");
  EXPECT_EQ(client
                ->Request("POST", url,
                          "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1e"
                          "bAQIDBA==")
                ->body,
            "ok");
  EXPECT_EQ(client->Request("GET", url)->body,
            "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1e"
            "bAQIDBA==");
}

TEST_F(ProtocolTestAppTest, NamespaceDisconnectKeepsTheEngineConnection) {
  ProtocolTestAppOptions options;
  options.engineio.ping_interval = std::chrono::milliseconds(50);
  StartApp(options);
  auto ws = OpenWs("/socket.io/");
  ASSERT_TRUE(ws->SendText("40"));
  EXPECT_TRUE(std::regex_match(NextNotPing(*ws), kConnectReply));
  EXPECT_EQ(NextNotPing(*ws), R"(42["auth",{}])");
  ASSERT_TRUE(ws->SendText("41"));
  // Section 1.9.3: after "41" the next frame is the ping.
  EXPECT_EQ(Next(*ws), "2");
}

}  // namespace
}  // namespace turnkey::signal
