// CallService on a real SignalService (loopback HTTP, in-memory SQLite):
// token checks at CONNECT, iceServers, the call flow over WebSocket with its
// acks and its rows in the store, the REST call routes, logout, draining,
// reload and the shutdown that ends live calls. The same flow runs against
// the real binary with the npm client in tests/js/signaling_calls.js.
#include "signal/call_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "sql/sqlite_store.h"
#include "tests/signal/http_test_client.h"
#include "tests/signal/sio_test_client.h"

namespace turnkey::signal {
namespace {

using namespace std::chrono_literals;
using testing::SendJson;
using testing::SioTestClient;
using PlainJson = nlohmann::json;

// The system's clocks, with a wall clock the test can step (as NTP or an
// admin does) while the monotonic one goes on.
class SteppableClock final : public base::Clock {
 public:
  base::MonoTime Now() const override { return base::SystemClock::Instance().Now(); }
  int64_t UnixSeconds() const override { return UnixMillis() / 1000; }
  int64_t UnixMillis() const override {
    return base::SystemClock::Instance().UnixMillis() + step_ms_.load();
  }
  void StepWall(std::chrono::milliseconds d) { step_ms_ += d.count(); }

 private:
  std::atomic<int64_t> step_ms_{0};
};

struct TestUser {
  std::string id;
  std::string handle;
  std::string token;
  std::string refresh_token;
};

class CallServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(CallServiceOptions()); }
  void TearDown() override {
    if (service_) {
      service_->Stop();
    }
  }

  // Stops the running service and starts another one.
  void Restart(CallServiceOptions options, std::chrono::seconds ice_ttl) {
    service_->Stop();
    calls_.reset();
    service_.reset();
    registry_ = std::make_unique<metrics::Registry>();  // families register once per registry
    Start(std::move(options), ice_ttl);
  }

  void Start(CallServiceOptions options, std::chrono::seconds ice_ttl = std::chrono::hours(1)) {
    SignalServiceOptions service_options;
    service_options.clock = &clock_;
    service_options.jwt_key = std::string(32, 'k');
    service_options.work_queue.threads = 2;
    service_options.settings.ice_urls = {"stun:127.0.0.1:3478",
                                         "turn:127.0.0.1:3478?transport=udp"};
    service_options.settings.turn_secret = "unit-test-turn-secret";
    service_options.settings.ice_ttl = ice_ttl;
    sql::SqliteStoreOptions store_options;
    store_options.path = ":memory:";
    auto store = sql::SqliteStore::Open(store_options);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    ASSERT_TRUE((*store)->Migrate().has_value());
    auto service = SignalService::Create(std::move(service_options), std::move(*store), *registry_);
    ASSERT_TRUE(service.has_value()) << service.error().message;
    service_ = std::move(*service);
    auto calls = CallService::Create(*service_, std::move(options));
    ASSERT_TRUE(calls.has_value()) << calls.error().message;
    calls_ = *calls;
    service_->Start();
    port_ = service_->local_address().port();
  }

  TestUser Register(const std::string& name) {
    PlainJson body{{"email", name + "@example.test"},
                   {"password", "password-123"},
                   {"handle", name},
                   {"displayName", "User " + name}};
    testing::HttpTestResponse response =
        SendJson(service_->local_address(), "POST", "/api/auth/register", body);
    EXPECT_EQ(response.status, 201) << response.body;
    PlainJson data = response.Json()["data"];
    return TestUser{data["user"]["id"], data["user"]["handle"], data["token"],
                    data["refreshToken"]};
  }

  testing::HttpTestResponse Rest(const std::string& path, const PlainJson& body,
                                 const TestUser& user) {
    return SendJson(service_->local_address(), "POST", path, body, user.token);
  }

  std::unique_ptr<SioTestClient> Connect(const TestUser& user) {
    auto client = SioTestClient::Open(port_);
    EXPECT_NE(client, nullptr);
    if (client == nullptr) {
      return nullptr;
    }
    std::optional<std::string> answer = client->Connect(Json{{"token", user.token}});
    EXPECT_TRUE(answer && answer->starts_with("40{\"sid\":")) << answer.value_or("(none)");
    return client;
  }

  // The CONNECT_ERROR data.code for `auth`.
  std::string RefusedCode(const Json& auth) {
    auto client = SioTestClient::Open(port_);
    EXPECT_NE(client, nullptr);
    std::optional<std::string> answer = client->Connect(auth);
    if (!answer || !answer->starts_with("44")) {
      ADD_FAILURE() << "expected CONNECT_ERROR, got " << answer.value_or("(none)");
      return "";
    }
    Json error = Json::parse(answer->substr(2));
    EXPECT_TRUE(error["message"].is_string());
    return error["data"]["code"].get<std::string>();
  }

  // Waits until the calls row has `status`, at most 10 s.
  std::optional<sql::Call> WaitCall(const std::string& call_id, sql::CallStatus status) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto row = service_->store().GetCall(call_id);
      if (row && row->status == status) {
        return *row;
      }
      std::this_thread::sleep_for(2ms);
    }
    return std::nullopt;
  }

  // A rings B (each with one socket) and B accepts; returns the call id.
  std::string ActiveCall(SioTestClient& a, const TestUser& b_user, SioTestClient& b) {
    auto ack = a.Call("initiateCall", Json{{"receiverId", b_user.id}, {"callType", "audio"}});
    EXPECT_TRUE(ack && (*ack)["ok"] == true) << (ack ? ack->dump() : "no ack");
    const std::string call_id = (*ack)["callId"];
    EXPECT_TRUE(b.WaitEvent("incomingCall"));
    auto accepted = b.Call("acceptCall", Json{{"callId", call_id}});
    EXPECT_TRUE(accepted && (*accepted)["ok"] == true);
    EXPECT_TRUE(a.WaitEvent("callAccepted"));
    return call_id;
  }

  SteppableClock clock_;
  std::unique_ptr<metrics::Registry> registry_ = std::make_unique<metrics::Registry>();
  std::unique_ptr<SignalService> service_;
  std::shared_ptr<CallService> calls_;
  uint16_t port_ = 0;
};

TEST_F(CallServiceTest, ConnectNeedsAValidToken) {
  EXPECT_EQ(RefusedCode(Json::object()), "TOKEN_MISSING");
  EXPECT_EQ(RefusedCode(Json{{"token", nullptr}}), "TOKEN_MISSING");  // a logged-out app
  EXPECT_EQ(RefusedCode(Json{{"token", ""}}), "TOKEN_MISSING");
  // There, but not a token at all.
  EXPECT_EQ(RefusedCode(Json{{"token", 42}}), "TOKEN_INVALID");
  EXPECT_EQ(RefusedCode(Json{{"token", Json::object()}}), "TOKEN_INVALID");
  EXPECT_EQ(RefusedCode(Json{{"token", "not-a-jwt"}}), "TOKEN_INVALID");
  TestUser alice = Register("alice");
  EXPECT_NE(Connect(alice), nullptr);
  // The "Bearer " form some clients send works too.
  auto client = SioTestClient::Open(port_);
  ASSERT_NE(client, nullptr);
  auto answer = client->Connect(Json{{"token", "Bearer " + alice.token}});
  EXPECT_TRUE(answer && answer->starts_with("40"));
}

TEST_F(CallServiceTest, AnAccountHoldsAtMostSocketsPerUser) {
  CallServiceOptions options;
  options.sockets_per_user = 2;
  Restart(std::move(options), std::chrono::hours(1));
  TestUser alice = Register("alice");
  auto first = Connect(alice);
  auto second = Connect(alice);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(RefusedCode(Json{{"token", alice.token}}), "TOO_MANY_CONNECTIONS");
  // Others are not affected, and a closed socket frees its place.
  TestUser bob = Register("bob");
  EXPECT_NE(Connect(bob), nullptr);
  first.reset();
  std::unique_ptr<SioTestClient> third;
  for (int i = 0; i < 500 && third == nullptr; ++i) {
    auto client = SioTestClient::Open(port_);
    ASSERT_NE(client, nullptr);
    auto answer = client->Connect(Json{{"token", alice.token}});
    if (answer && answer->starts_with("40")) {
      third = std::move(client);
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_NE(third, nullptr);
}

TEST_F(CallServiceTest, AConnectedSocketGetsIceServersAndAnswersEveryEvent) {
  TestUser alice = Register("alice");
  auto a = Connect(alice);
  ASSERT_NE(a, nullptr);
  auto pushed = a->WaitEvent("iceServers");
  ASSERT_TRUE(pushed);
  EXPECT_EQ((*pushed)["ttl"], 3600);
  ASSERT_EQ((*pushed)["iceServers"].size(), 2u);
  EXPECT_EQ((*pushed)["iceServers"][0], Json({{"urls", {"stun:127.0.0.1:3478"}}}));
  EXPECT_TRUE((*pushed)["iceServers"][1]["username"].get<std::string>().ends_with(":" + alice.id));

  auto ice = a->Call("getIceServers", Json::object());
  ASSERT_TRUE(ice);
  EXPECT_EQ((*ice)["ok"], true);
  EXPECT_EQ((*ice)["iceServers"].size(), 2u);
  auto unknown = a->Call("dance", Json::object());
  ASSERT_TRUE(unknown);
  EXPECT_EQ(*unknown, Json({{"ok", false}, {"error", "Unknown event"}}));
  auto no_payload = a->WaitAck(a->Emit("acceptCall", nullptr));
  ASSERT_TRUE(no_payload);
  EXPECT_EQ(*no_payload, Json({{"ok", false}, {"error", "callId required"}}));
  auto error = a->WaitEvent("callError");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, Json({{"error", "callId required"}, {"callId", nullptr}}));
}

TEST_F(CallServiceTest, IceServersAreSentAgainBeforeTheyExpire) {
  CallServiceOptions options;
  options.ice_refresh_at = 0.5;
  Restart(std::move(options), std::chrono::seconds(1));
  TestUser alice = Register("alice");
  auto a = Connect(alice);
  ASSERT_NE(a, nullptr);
  auto first = a->WaitEvent("iceServers");
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)["ttl"], 1);
  // Half of the one-second lifetime later, and again after that.
  auto second = a->WaitEvent("iceServers");
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["ttl"], 1);
  EXPECT_TRUE(a->WaitEvent("iceServers"));
}

TEST_F(CallServiceTest, AfterTheWallClockStepsForwardIceServersAndCallTimesFollowIt) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto a = Connect(alice);
  auto b = Connect(bob);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->WaitEvent("iceServers"));  // an hour's credentials
  ASSERT_TRUE(b->WaitEvent("iceServers"));
  // NTP puts a clock that was two hours behind right: those credentials
  // have expired by the new time, and must be replaced now, not in 48 min.
  clock_.StepWall(2h);
  auto renewed = a->WaitEvent("iceServers");
  ASSERT_TRUE(renewed);
  const std::string username = (*renewed)["iceServers"][1]["username"];
  EXPECT_GT(std::stoll(username.substr(0, username.find(':'))), clock_.UnixSeconds() + 3000);
  // A call made now is stored at the new time.
  const std::string call_id = ActiveCall(*a, bob, *b);
  auto row = WaitCall(call_id, sql::CallStatus::kActive);
  ASSERT_TRUE(row);
  EXPECT_NEAR(static_cast<double>(row->created_at_ms), static_cast<double>(clock_.UnixMillis()),
              5000.0);
}

TEST_F(CallServiceTest, AReloadThatChangesTheTurnSecretSendsEverySocketNewIceServers) {
  // The guide's "a secret leaked" rotation: clients must not keep, for the
  // hours until their next refresh, credentials the relay now refuses.
  TestUser alice = Register("alice");
  auto a = Connect(alice);
  ASSERT_NE(a, nullptr);
  auto first = a->WaitEvent("iceServers");
  ASSERT_TRUE(first);
  SignalSettings settings;
  settings.ice_urls = {"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"};
  settings.turn_secret = "rotated-turn-secret";
  settings.ice_ttl = std::chrono::hours(1);
  service_->Reload(settings, nullptr);
  calls_->Reload(CallServiceSettings{});
  auto second = a->WaitEvent("iceServers");
  ASSERT_TRUE(second);
  EXPECT_NE((*second)["iceServers"][1]["credential"], (*first)["iceServers"][1]["credential"]);
  // A new URL list reaches them the same way.
  settings.ice_urls = {"turn:turn2.example.org:3478?transport=udp"};
  service_->Reload(settings, nullptr);
  calls_->Reload(CallServiceSettings{});
  auto third = a->WaitEvent("iceServers");
  ASSERT_TRUE(third);
  ASSERT_EQ((*third)["iceServers"].size(), 1u);
  EXPECT_EQ((*third)["iceServers"][0]["urls"], Json({"turn:turn2.example.org:3478?transport=udp"}));
}

TEST_F(CallServiceTest, ACallIsRungOnEveryDeviceAndPersisted) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto a = Connect(alice);
  auto b1 = Connect(bob);
  auto b2 = Connect(bob);
  ASSERT_TRUE(a && b1 && b2);
  // By handle: looked up in the store, ignoring case.
  auto ack = a->Call("initiateCall", Json{{"receiverHandle", "BOB"}, {"callType", "video"}});
  ASSERT_TRUE(ack);
  ASSERT_EQ((*ack)["ok"], true) << ack->dump();
  const std::string call_id = (*ack)["callId"];
  EXPECT_EQ((*ack)["receiverId"], bob.id);
  auto initiated = a->WaitEvent("callInitiated");
  ASSERT_TRUE(initiated);
  EXPECT_EQ((*initiated)["callId"], call_id);
  for (SioTestClient* device : {b1.get(), b2.get()}) {
    auto incoming = device->WaitEvent("incomingCall");
    ASSERT_TRUE(incoming);
    EXPECT_EQ((*incoming)["callId"], call_id);
    EXPECT_EQ((*incoming)["caller"],
              Json({{"id", alice.id}, {"handle", "alice"}, {"displayName", "User alice"}}));
  }
  auto accepted = b2->Call("acceptCall", Json{{"callId", call_id}});
  ASSERT_TRUE(accepted);
  EXPECT_EQ((*accepted)["ok"], true);
  EXPECT_TRUE(b1->WaitEvent("callAnsweredElsewhere"));
  EXPECT_TRUE(a->WaitEvent("callAccepted"));
  ASSERT_TRUE(WaitCall(call_id, sql::CallStatus::kActive));

  Json offer = {{"type", "offer"}, {"sdp", "v=0\r\n"}};
  EXPECT_EQ((*a->Call("sendOffer", Json{{"callId", call_id}, {"offer", offer}}))["ok"], true);
  auto relayed = b2->WaitEvent("receiveOffer");
  ASSERT_TRUE(relayed);
  EXPECT_EQ(*relayed, Json({{"callId", call_id}, {"from", alice.id}, {"offer", offer}}));
  auto report = a->Call("reportIce", Json{{"callId", call_id},
                                          {"state", "connected"},
                                          {"localCandidateType", "relay"},
                                          {"remoteCandidateType", "relay"}});
  EXPECT_EQ((*report)["ok"], true);

  EXPECT_EQ((*a->Call("endCall", Json{{"callId", call_id}}))["ok"], true);
  auto ended = b2->WaitEvent("callEnded");
  ASSERT_TRUE(ended);
  EXPECT_EQ((*ended)["reason"], "hangup");
  auto row = WaitCall(call_id, sql::CallStatus::kCompleted);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->caller_id, alice.id);
  EXPECT_EQ(row->callee_id, bob.id);
  EXPECT_EQ(row->type, sql::CallType::kVideo);
  EXPECT_EQ(row->end_reason, "hangup");
  ASSERT_TRUE(row->caller_ice);
  EXPECT_EQ(row->caller_ice->local_candidate_type, "relay");
  EXPECT_EQ(calls_->active_calls(), 0u);
  EXPECT_EQ(calls_->recorder_stats().writes_failed, 0u);
}

TEST_F(CallServiceTest, ADeviceConnectingWhileACallRingsGetsIceServersFirst) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto a = Connect(alice);
  auto b1 = Connect(bob);
  ASSERT_TRUE(a && b1);
  auto ack = a->Call("initiateCall", Json{{"receiverId", bob.id}, {"callType", "audio"}});
  ASSERT_TRUE(ack && (*ack)["ok"] == true);
  ASSERT_TRUE(b1->WaitEvent("incomingCall"));
  // The new device rings too, after it has what it needs to answer: the
  // client files one message per read, so iceServers is already waiting when
  // incomingCall is read only if it came first.
  auto b2 = Connect(bob);
  ASSERT_TRUE(b2);
  auto incoming = b2->WaitEvent("incomingCall");
  ASSERT_TRUE(incoming);
  EXPECT_EQ((*incoming)["callId"], (*ack)["callId"]);
  EXPECT_TRUE(b2->HasEvent("iceServers"));
}

TEST_F(CallServiceTest, RestInitiateAndAcceptActAsTheRequestingLoginsSocket) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  // Bob's second login (another device): its own access token and sid.
  testing::HttpTestResponse login =
      SendJson(service_->local_address(), "POST", "/api/auth/login",
               PlainJson{{"email", "bob@example.test"}, {"password", "password-123"}});
  ASSERT_EQ(login.status, 200) << login.body;
  TestUser bob_laptop = bob;
  bob_laptop.token = login.Json()["data"]["token"];
  auto a = Connect(alice);
  auto phone = Connect(bob);
  auto laptop = Connect(bob_laptop);  // connected last: bob's newest socket
  ASSERT_TRUE(a && phone && laptop);

  auto initiated =
      Rest("/api/calls/initiate", {{"receiverId", bob.id}, {"callType", "audio"}}, alice);
  ASSERT_EQ(initiated.status, 200) << initiated.body;
  const std::string call_id = initiated.Json()["data"]["callId"];
  ASSERT_TRUE(phone->WaitEvent("incomingCall"));
  ASSERT_TRUE(laptop->WaitEvent("incomingCall"));
  // The phone answers over REST: the phone is bob's device in the call.
  auto accepted = Rest("/api/calls/accept", {{"callId", call_id}}, bob);
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_TRUE(phone->WaitEvent("callAcceptedConfirm"));
  EXPECT_TRUE(laptop->WaitEvent("callAnsweredElsewhere"));
  EXPECT_FALSE(phone->HasEvent("callAnsweredElsewhere"));
  EXPECT_FALSE(laptop->HasEvent("callAcceptedConfirm"));
  ASSERT_TRUE(a->WaitEvent("callAccepted"));
  auto sent = a->Call("sendOffer", Json{{"callId", call_id}, {"offer", Json{{"sdp", "v=0"}}}});
  ASSERT_TRUE(sent);
  EXPECT_EQ((*sent)["ok"], true);
  EXPECT_TRUE(phone->WaitEvent("receiveOffer"));
  EXPECT_FALSE(laptop->HasEvent("receiveOffer"));
  ASSERT_EQ(Rest("/api/calls/end", {{"callId", call_id}}, bob).status, 200);
  ASSERT_TRUE(a->WaitEvent("callEnded"));

  // Likewise the phone's REST initiate makes the phone the caller's device.
  auto from_phone =
      Rest("/api/calls/initiate", {{"receiverId", alice.id}, {"callType", "video"}}, bob);
  ASSERT_EQ(from_phone.status, 200) << from_phone.body;
  EXPECT_TRUE(phone->WaitEvent("callInitiated"));
  EXPECT_FALSE(laptop->HasEvent("callInitiated"));
}

TEST_F(CallServiceTest, AnOfflineCalleeIsAMissedCall) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto a = Connect(alice);
  ASSERT_NE(a, nullptr);
  auto ack = a->Call("initiateCall", Json{{"receiverId", bob.id}, {"callType", "audio"}});
  ASSERT_TRUE(ack);
  EXPECT_EQ((*ack)["error"], "User not available");
  EXPECT_TRUE(a->WaitEvent("userNotAvailable"));
  auto row = WaitCall((*ack)["callId"], sql::CallStatus::kMissed);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->end_reason, "unavailable");
  auto missing =
      a->Call("initiateCall", Json{{"receiverId", "no-such-user"}, {"callType", "audio"}});
  ASSERT_TRUE(missing);
  EXPECT_EQ((*missing)["error"], "Receiver not found");
}

// A refused REST initiate says when the next one may pass: one token at the
// slower bucket's rate (per socket, 0.5/s by default), not 1 s after which
// a client that waits as told is refused again.
TEST_F(CallServiceTest, ARateLimitedRestInitiateSaysWhenToTryAgain) {
  TestUser alice = Register("alice");
  TestUser carol = Register("carol");  // offline: every call ends at once
  auto a = Connect(alice);
  ASSERT_TRUE(a);
  testing::HttpTestResponse refused;
  for (int i = 0; i < 20 && refused.status != 429; ++i) {
    refused = Rest("/api/calls/initiate", {{"receiverId", carol.id}, {"callType", "audio"}}, alice);
  }
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.Header("retry-after"), "2");
  EXPECT_EQ(refused.Json()["message"], "Rate limited");
}

TEST_F(CallServiceTest, RestRoutesDriveTheSameCalls) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto refused =
      Rest("/api/calls/initiate", {{"receiverId", bob.id}, {"callType", "audio"}}, alice);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(refused.Json()["code"], "NOT_CONNECTED");

  auto a = Connect(alice);
  auto b = Connect(bob);
  ASSERT_TRUE(a && b);
  auto initiated =
      Rest("/api/calls/initiate", {{"receiverId", bob.id}, {"callType", "audio"}}, alice);
  ASSERT_EQ(initiated.status, 200) << initiated.body;
  const std::string call_id = initiated.Json()["data"]["callId"];
  EXPECT_TRUE(a->WaitEvent("callInitiated"));
  EXPECT_TRUE(b->WaitEvent("incomingCall"));

  auto not_mine = Rest("/api/calls/accept", {{"callId", call_id}}, alice);
  EXPECT_EQ(not_mine.status, 403) << not_mine.body;
  EXPECT_EQ(not_mine.Json()["message"], "Not authorized");
  EXPECT_EQ(not_mine.Json()["data"]["callId"], call_id);
  EXPECT_EQ(Rest("/api/calls/accept", PlainJson::object(), bob).Json()["field"], "callId");
  EXPECT_EQ(Rest("/api/calls/end", {{"callId", "nope"}}, bob).status, 404);

  auto rejected = Rest("/api/calls/reject", {{"callId", call_id}}, bob);
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(rejected.Json()["data"], PlainJson({{"ok", true}, {"callId", call_id}}));
  auto told = a->WaitEvent("callRejected");
  ASSERT_TRUE(told);
  EXPECT_EQ((*told)["reason"], "rejected");
  // The stand-in is no socket: bob's own device is told too.
  auto stop = b->WaitEvent("callEnded");
  ASSERT_TRUE(stop);
  EXPECT_EQ((*stop)["reason"], "rejected");
  EXPECT_TRUE(WaitCall(call_id, sql::CallStatus::kRejected));
  auto again = Rest("/api/calls/reject", {{"callId", call_id}}, bob);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.Json()["code"], "CALL_CONFLICT");
}

TEST_F(CallServiceTest, LogoutDisconnectsTheUsersSockets) {
  TestUser bob = Register("bob");
  auto b = Connect(bob);
  ASSERT_NE(b, nullptr);
  auto logout = Rest("/api/auth/logout", {{"refreshToken", bob.refresh_token}}, bob);
  ASSERT_EQ(logout.status, 200) << logout.body;
  EXPECT_TRUE(b->WaitDisconnected());
  EXPECT_EQ(RefusedCode(Json{{"token", bob.token}}), "TOKEN_REVOKED");
  // The Engine.IO connection is left to the client, as the reference
  // server's disconnect() does: logged in again, it joins over the same one.
  testing::HttpTestResponse login =
      SendJson(service_->local_address(), "POST", "/api/auth/login",
               PlainJson{{"email", "bob@example.test"}, {"password", "password-123"}});
  ASSERT_EQ(login.status, 200) << login.body;
  auto again = b->Connect(Json{{"token", login.Json()["data"]["token"]}});
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->starts_with("40{\"sid\":")) << *again;
}

TEST_F(CallServiceTest, DrainingRefusesNewCallsOnly) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  TestUser carol = Register("carol");
  auto a = Connect(alice);
  auto b = Connect(bob);
  auto c = Connect(carol);
  ASSERT_TRUE(a && b && c);
  const std::string call_id = ActiveCall(*a, bob, *b);
  calls_->SetDraining(true);
  EXPECT_TRUE(calls_->draining());
  auto refused = c->Call("initiateCall", Json{{"receiverId", alice.id}, {"callType", "audio"}});
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["error"], "Server is shutting down");
  EXPECT_EQ(calls_->active_calls(), 1u);
  EXPECT_EQ((*b->Call("endCall", Json{{"callId", call_id}}))["ok"], true);
  EXPECT_EQ(calls_->active_calls(), 0u);
}

TEST_F(CallServiceTest, AReloadedRingTimeoutAppliesToTheNextCall) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto a = Connect(alice);
  auto b = Connect(bob);
  ASSERT_TRUE(a && b);
  CallServiceSettings settings;
  settings.ring_timeout = 200ms;
  calls_->Reload(settings);
  auto ack = a->Call("initiateCall", Json{{"receiverId", bob.id}, {"callType", "audio"}});
  ASSERT_TRUE(ack && (*ack)["ok"] == true);
  auto timeout = a->WaitEvent("callTimeout");
  ASSERT_TRUE(timeout);
  EXPECT_EQ((*timeout)["callId"], (*ack)["callId"]);
  auto ended = b->WaitEvent("callEnded");
  ASSERT_TRUE(ended);
  EXPECT_EQ((*ended)["reason"], "timeout");
  EXPECT_TRUE(WaitCall((*ack)["callId"], sql::CallStatus::kMissed));
}

TEST_F(CallServiceTest, ConnectionsAreCountedByTransport) {
  TestUser alice = Register("alice");
  auto a1 = Connect(alice);
  auto a2 = Connect(alice);
  ASSERT_TRUE(a1 && a2);
  // Sent once the server registered each socket.
  EXPECT_TRUE(a1->WaitEvent("iceServers"));
  EXPECT_TRUE(a2->WaitEvent("iceServers"));
  EXPECT_EQ(calls_->connected_sockets(), 2u);
  EXPECT_EQ(service_->metrics().connections[metrics::SignalTransport::kWebSocket].Value(), 2);
  // Each WebSocket upgrade is an HTTP request answered 101 (docs/metrics.md).
  EXPECT_THAT(
      registry_->Render(),
      ::testing::HasSubstr("turnkey_http_requests_total{route=\"/socket.io/*\",code=\"101\"} 2"));
  // A client that leaves is counted by why its connection ended.
  a2.reset();
  const std::string left = "turnkey_signal_closed_connections_total{reason=\"transport_close\"} 1";
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (registry_->Render().find(left) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_THAT(registry_->Render(), ::testing::HasSubstr(left));
  EXPECT_THAT(
      registry_->Render(),
      ::testing::HasSubstr("turnkey_signal_closed_connections_total{reason=\"ping_timeout\"} 0"));
  // No history write waits: the database takes them.
  EXPECT_THAT(registry_->Render(),
              ::testing::HasSubstr("turnkey_call_history_writes_waiting{where=\"file\"} 0"));
}

TEST_F(CallServiceTest, StoppingEndsLiveCallsAsServerShutdown) {
  TestUser alice = Register("alice");
  TestUser bob = Register("bob");
  auto a = Connect(alice);
  auto b = Connect(bob);
  ASSERT_TRUE(a && b);
  const std::string call_id = ActiveCall(*a, bob, *b);
  auto stopped = std::async(std::launch::async, [this] { service_->Stop(); });
  for (SioTestClient* side : {a.get(), b.get()}) {
    auto ended = side->WaitEvent("callEnded");
    ASSERT_TRUE(ended);
    EXPECT_EQ(*ended,
              Json({{"callId", call_id}, {"endedBy", nullptr}, {"reason", "server_shutdown"}}));
    EXPECT_TRUE(side->WaitDisconnected());
  }
  stopped.get();
  // Stop() ran the queued writes before returning.
  auto row = service_->store().GetCall(call_id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, sql::CallStatus::kCompleted);
  EXPECT_EQ(row->end_reason, "server_shutdown");
  EXPECT_EQ(calls_->manager(), nullptr);
}

}  // namespace
}  // namespace turnkey::signal
