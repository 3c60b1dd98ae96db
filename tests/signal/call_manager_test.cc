// CallManager: initiateCall, acceptCall, rejectCall, endCall, their acks,
// events and records, and every error string they answer with.
// Signaling, timers, reconnects and glare: call_manager_flow_test.cc.
#include "signal/call_manager.h"

#include <gtest/gtest.h>

#include "tests/signal/call_manager_fixture.h"

namespace turnkey::signal {
namespace {

using metrics::CallStatus;
using metrics::CallType;
using std::chrono::seconds;

// ---- initiateCall ---------------------------------------------------------------

TEST_F(CallManagerTest, InitiateRingsEveryDeviceOfTheCallee) {
  Json ack = Initiate(kAlice, "bob-id", "video");

  EXPECT_EQ(ack, Json::parse(R"({"ok":true,"callId":"call-1","receiverId":"bob-id",
                                  "callType":"video"})"));
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"1:callInitiated", "10:incomingCall", "11:incomingCall"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","receiverId":"bob-id","callType":"video"})");
  const std::string incoming =
      R"({"callId":"call-1","callerId":"alice-id","callType":"video",)"
      R"("caller":{"id":"alice-id","handle":"Alice","displayName":"Alice A."}})";
  EXPECT_EQ(emitter_.all[1].payload.dump(), incoming);
  EXPECT_EQ(emitter_.all[2].payload.dump(), incoming);

  ASSERT_EQ(recorder_.created.size(), 1u);
  EXPECT_EQ(recorder_.created[0], (CallInfo{.id = "call-1",
                                            .caller_id = "alice-id",
                                            .callee_id = "bob-id",
                                            .type = CallType::kVideo,
                                            .created_at = now_}));
  EXPECT_TRUE(recorder_.ended.empty());
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(30));
  EXPECT_EQ(m().CurrentCallOf("alice-id"), "call-1");
  EXPECT_EQ(m().CurrentCallOf("bob-id"), "call-1");
  std::optional<CallManager::CallView> view = m().FindCall("call-1");
  ASSERT_TRUE(view);
  EXPECT_EQ(view->state, CallState::kRinging);
  EXPECT_EQ(view->caller_socket, kAlice);
  EXPECT_EQ(view->callee_socket, std::nullopt);
}

TEST_F(CallManagerTest, InitiateByHandleIgnoresCase) {
  Json ack = Send(kAlice, "initiateCall", {{"receiverHandle", "BOB"}, {"callType", "audio"}});
  EXPECT_EQ(ack.value("receiverId", ""), "bob-id");
  EXPECT_EQ(ack.value("callType", ""), "audio");
  EXPECT_EQ(emitter_.One(kBob, "incomingCall").value("callType", ""), "audio");
}

TEST_F(CallManagerTest, ReceiverIdWinsOverHandle) {
  Json ack = Send(kAlice, "initiateCall",
                  {{"receiverId", "carol-id"}, {"receiverHandle", "bob"}, {"callType", "audio"}});
  EXPECT_EQ(ack.value("receiverId", ""), "carol-id");
}

TEST_F(CallManagerTest, InitiatePayloadErrors) {
  struct Case {
    Json payload;
    std::string_view error;
  };
  const Case cases[] = {
      {Json::parse(R"({"callType":"audio"})"), kErrReceiverIdRequired},
      {Json::parse(R"({"receiverId":"","callType":"audio"})"), kErrReceiverIdRequired},
      {Json::parse(R"({"receiverHandle":"","callType":"audio"})"), kErrReceiverIdRequired},
      {Json::parse(R"({"receiverId":42,"callType":"audio"})"), kErrReceiverIdRequired},
      {Json::parse(R"("bob-id")"), kErrReceiverIdRequired},
      {Json::parse(R"(null)"), kErrReceiverIdRequired},
      {Json::parse(R"([{"receiverId":"bob-id"}])"), kErrReceiverIdRequired},
      {Json::parse(R"({"receiverId":"bob-id"})"), kErrInvalidCallType},
      {Json::parse(R"({"receiverId":"bob-id","callType":"VIDEO"})"), kErrInvalidCallType},
      {Json::parse(R"({"receiverId":"bob-id","callType":"chat"})"), kErrInvalidCallType},
      {Json::parse(R"({"receiverId":"bob-id","callType":1})"), kErrInvalidCallType},
      {Json::parse(R"({"receiverId":"nobody","callType":"audio"})"), kErrReceiverNotFound},
      {Json::parse(R"({"receiverHandle":"nobody","callType":"audio"})"), kErrReceiverNotFound},
      {Json{{"receiverId", std::string(129, 'b')}, {"callType", "audio"}}, kErrReceiverNotFound},
      {Json::parse(R"({"receiverId":"alice-id","callType":"audio"})"), kErrCannotCallYourself},
      {Json::parse(R"({"receiverHandle":"alice","callType":"audio"})"), kErrCannotCallYourself},
  };
  CallManagerOptions unlimited;
  unlimited.initiate_socket_burst = unlimited.initiate_user_burst = 100;
  Reset(unlimited);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.payload.dump());
    emitter_.Clear();
    ExpectError(Send(kAlice, "initiateCall", c.payload), kAlice, c.error, std::nullopt);
    EXPECT_EQ(emitter_.all.size(), 1u);  // the callError only
  }
  EXPECT_TRUE(recorder_.created.empty());
  EXPECT_EQ(m().call_count(), 0u);
}

TEST_F(CallManagerTest, InitiateFromUnknownSocketIsNotAuthorized) {
  ExpectError(Initiate(kStranger, "bob-id"), kStranger, kErrNotAuthorized, std::nullopt);
  EXPECT_EQ(directory_.lookups, 0);
}

TEST_F(CallManagerTest, SocketZeroIsRefused) {
  // 0 stands for "no socket" in what the manager remembers of ended calls.
  EXPECT_FALSE(m().OnSocketConnected(now_, 0, "dave-id"));
  ExpectError(Initiate(0, "bob-id"), 0, kErrNotAuthorized, std::nullopt);
}

TEST_F(CallManagerTest, OfflineCalleeIsUnavailableAndRecorded) {
  Json ack = Initiate(kAlice, "dave-id", "audio");
  ExpectError(ack, kAlice, kErrUserNotAvailable, "call-1");
  EXPECT_EQ(emitter_.One(kAlice, "userNotAvailable").dump(),
            R"({"callId":"call-1","receiverId":"dave-id"})");
  EXPECT_TRUE(emitter_.To(kAlice, "callInitiated").empty());
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.log, (std::vector<std::string>{"created:call-1", "ended:call-1"}));
  const CallEndRecord& end = recorder_.ended[0];
  EXPECT_EQ(end.status, CallStatus::kUnavailable);
  EXPECT_EQ(end.reason, "unavailable");
  EXPECT_EQ(end.ended_by, "");
  EXPECT_EQ(end.duration_seconds, 0);
  EXPECT_EQ(end.answered_at, std::nullopt);
  EXPECT_EQ(
      metrics_.ended,
      (std::vector<std::pair<CallType, CallStatus>>{{CallType::kAudio, CallStatus::kUnavailable}}));
  EXPECT_EQ(m().call_count(), 0u);
  EXPECT_EQ(m().CurrentCallOf("alice-id"), std::nullopt);
  // Alice is free again; a late event for that call is refused.
  ExpectError(WithCall("endCall", kAlice, "call-1"), kAlice, kErrCallAlreadyProcessed, "call-1");
  EXPECT_EQ(Initiate(kAlice, "bob-id").value("ok", false), true);
}

TEST_F(CallManagerTest, BusyCalleeRejectsAsBusy) {
  ASSERT_EQ(Initiate(kCarol, "bob-id").value("ok", false), true);  // call-1 rings bob
  emitter_.Clear();

  Json ack = Initiate(kAlice, "bob-id", "audio");
  ExpectError(ack, kAlice, kErrUserBusy, "call-2");
  EXPECT_EQ(emitter_.One(kAlice, "callRejected").dump(),
            R"({"callId":"call-2","receiverId":"bob-id","reason":"busy"})");
  EXPECT_TRUE(emitter_.To(kBob, "incomingCall").empty());
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].call.id, "call-2");
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kBusy);
  EXPECT_EQ(recorder_.ended[0].reason, "busy");
  EXPECT_EQ(metrics_.ended.back(), std::make_pair(CallType::kAudio, CallStatus::kBusy));
  // Bob's call goes on.
  EXPECT_EQ(m().CurrentCallOf("bob-id"), "call-1");
  EXPECT_EQ(m().CurrentCallOf("alice-id"), std::nullopt);
}

TEST_F(CallManagerTest, CalleeInAnActiveCallIsBusy) {
  Answered();
  Connect(kAlice2, "dave-id");
  ExpectError(Initiate(kAlice2, "bob-id"), kAlice2, kErrUserBusy, "call-2");
  ExpectError(Initiate(kCarol, "alice-id"), kCarol, kErrUserBusy, "call-3");
}

TEST_F(CallManagerTest, CalleeWhoseSocketDroppedInACallIsBusyNotAway) {
  Answered();
  Disconnect(kBob);
  Disconnect(kBob2);  // the chosen device: the reconnect grace runs
  emitter_.Clear();
  ExpectError(Initiate(kCarol, "bob-id"), kCarol, kErrUserBusy, "call-2");
  EXPECT_TRUE(emitter_.To(kCarol, "userNotAvailable").empty());
  EXPECT_EQ(recorder_.ended.back().status, CallStatus::kBusy);
}

TEST_F(CallManagerTest, CallerAlreadyInACallCannotStartAnother) {
  const std::string id = Ring();
  Connect(kAlice2, "alice-id");
  ExpectError(Initiate(kAlice2, "carol-id"), kAlice2, kErrAlreadyInCall, id);
  // Bob, being rung, cannot call carol either.
  ExpectError(Initiate(kBob, "carol-id"), kBob, kErrAlreadyInCall, id);
  EXPECT_EQ(m().call_count(), 1u);
  EXPECT_TRUE(emitter_.To(kCarol, "incomingCall").empty());
}

TEST_F(CallManagerTest, DrainingRefusesNewCallsOnly) {
  const std::string id = Ring();
  m().SetDraining(true);
  EXPECT_TRUE(m().draining());
  ExpectError(Initiate(kCarol, "alice-id"), kCarol, kErrShuttingDown, std::nullopt);
  EXPECT_EQ(WithCall("acceptCall", kBob, id).value("ok", false), true);
  EXPECT_EQ(WithCall("endCall", kAlice, id).value("ok", false), true);
  m().SetDraining(false);
  EXPECT_EQ(Initiate(kCarol, "alice-id").value("ok", false), true);
}

TEST_F(CallManagerTest, InitiateIsRateLimitedPerSocket) {
  CallManagerOptions options;
  options.initiate_socket_burst = 3;
  options.initiate_socket_rate = 0.5;  // a token every 2 s
  Reset(options);
  for (int i = 0; i < 3; ++i) {
    ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  }
  const int lookups = directory_.lookups;
  ExpectError(Initiate(kAlice, "bob-id"), kAlice, kErrRateLimited, std::nullopt);
  EXPECT_EQ(directory_.lookups, lookups);  // refused before any lookup
  // Another socket of another user is not affected.
  EXPECT_EQ(Initiate(kCarol, "bob-id").value("ok", false), true);
  now_ += std::chrono::milliseconds(1999);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrRateLimited, std::nullopt);
  now_ += std::chrono::milliseconds(1);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrRateLimited, std::nullopt);
}

TEST_F(CallManagerTest, APayloadWithoutAReceiverCostsNoToken) {
  CallManagerOptions options;
  options.initiate_socket_burst = 1;
  options.initiate_user_burst = 1;
  Reset(options);
  for (int i = 0; i < 5; ++i) {
    ExpectError(Send(kAlice, "initiateCall", Json::parse(R"({"callType":"audio"})")), kAlice,
                kErrReceiverIdRequired, std::nullopt);
    ExpectError(Send(kAlice, "initiateCall", Json::parse(R"({"receiverId":"bob-id"})")), kAlice,
                kErrInvalidCallType, std::nullopt);
  }
  EXPECT_EQ(Initiate(kAlice, "bob-id").value("ok", false), true);
}

// A per-user initiateCall limit of 2 at once, one more per second; the
// per-socket limit out of the way.
CallManagerOptions UserLimitOfTwo() {
  CallManagerOptions options;
  options.initiate_socket_burst = 10;
  options.initiate_user_burst = 2;
  options.initiate_user_rate = 1;
  return options;
}

TEST_F(CallManagerTest, InitiateIsRateLimitedPerUserAcrossDevices) {
  Reset(UserLimitOfTwo());
  ExpectError(Initiate(kBob, "nobody"), kBob, kErrReceiverNotFound, std::nullopt);
  ExpectError(Initiate(kBob2, "nobody"), kBob2, kErrReceiverNotFound, std::nullopt);
  ExpectError(Initiate(kBob, "nobody"), kBob, kErrRateLimited, std::nullopt);
  ExpectError(Initiate(kBob2, "nobody"), kBob2, kErrRateLimited, std::nullopt);
  now_ += seconds(1);
  ExpectError(Initiate(kBob2, "nobody"), kBob2, kErrReceiverNotFound, std::nullopt);
}

// Reconnecting does not refill the user's bucket: a loop of reconnects got
// a fresh burst each time (and rang an offline user at any rate).
TEST_F(CallManagerTest, TheUserLimitOutlivesAReconnect) {
  Reset(UserLimitOfTwo());
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  Disconnect(kAlice);
  Connect(kAlice, "alice-id");
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrRateLimited, std::nullopt);
  now_ += seconds(1);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  // Away long enough to refill: a full burst again, as for a new user.
  Disconnect(kAlice);
  now_ += seconds(2);
  Connect(kAlice, "alice-id");
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrRateLimited, std::nullopt);
}

TEST_F(CallManagerTest, RateZeroTurnsAnInitiateLimitOff) {
  CallManagerOptions options;
  options.initiate_socket_burst = 1;
  options.initiate_socket_rate = 0;
  options.initiate_user_burst = 1;
  options.initiate_user_rate = 0;
  Reset(options);
  for (int i = 0; i < 50; ++i) {
    ExpectError(Initiate(kAlice, "nobody"), kAlice, kErrReceiverNotFound, std::nullopt);
  }
}

TEST_F(CallManagerTest, TwoStepInitiate) {
  std::expected<InitiateRequest, Json> request = m().BeginInitiateCall(
      now_, kAlice, Json::parse(R"({"receiverHandle":"bob","callType":"audio"})"));
  ASSERT_TRUE(request);
  EXPECT_EQ(*request, (InitiateRequest{
                          .receiver_id = "", .receiver_handle = "bob", .type = CallType::kAudio}));
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_EQ(directory_.lookups, 0);

  const UserInfo alice{"alice-id", "Alice", "Alice A."};
  const UserInfo bob{"bob-id", "bob", "Bob B."};
  // The receiver was not found.
  ExpectError(m().FinishInitiateCall(now_, kAlice, *request, std::nullopt, alice), kAlice,
              kErrReceiverNotFound, std::nullopt);
  // The caller summary must be the socket's user.
  ExpectError(m().FinishInitiateCall(now_, kAlice, *request, bob, bob), kAlice, kErrNotAuthorized,
              std::nullopt);
  // Draining began while the lookup ran.
  m().SetDraining(true);
  ExpectError(m().FinishInitiateCall(now_, kAlice, *request, bob, alice), kAlice, kErrShuttingDown,
              std::nullopt);
  m().SetDraining(false);
  Json ack = m().FinishInitiateCall(now_, kAlice, *request, bob, alice);
  EXPECT_EQ(ack.value("callId", ""), "call-1");
  EXPECT_EQ(emitter_.One(kBob2, "incomingCall")["caller"].dump(),
            R"({"id":"alice-id","handle":"Alice","displayName":"Alice A."})");
  // The socket closed while the lookup ran.
  Disconnect(kCarol);
  ExpectError(m().FinishInitiateCall(now_, kCarol, *request, bob, {"carol-id", "carol", ""}),
              kCarol, kErrNotAuthorized, std::nullopt);

  std::expected<InitiateRequest, Json> bad =
      m().BeginInitiateCall(now_, kBob, Json::parse(R"({"callType":"audio"})"));
  ASSERT_FALSE(bad);
  ExpectError(bad.error(), kBob, kErrReceiverIdRequired, std::nullopt);
}

TEST_F(CallManagerTest, CallerMissingFromTheDirectoryStillRings) {
  directory_.users.erase(directory_.users.begin());  // alice's account
  Initiate(kAlice, "bob-id");
  EXPECT_EQ(emitter_.One(kBob, "incomingCall")["caller"].dump(),
            R"({"id":"alice-id","handle":"","displayName":""})");
}

TEST_F(CallManagerTest, RepeatedIdsFromTheGeneratorAreSkipped) {
  int n = 0;
  manager_.reset();
  manager_.emplace(CallManagerOptions{}, emitter_, recorder_, metrics_,
                   [&n] { return n++ < 3 ? std::string("same") : "other-" + std::to_string(n); });
  Connect(kAlice, "alice-id");
  Connect(kBob, "bob-id");
  Connect(kCarol, "carol-id");
  Connect(kAlice2, "dave-id");
  EXPECT_EQ(Initiate(kAlice, "bob-id").value("callId", ""), "same");
  EXPECT_EQ(Initiate(kCarol, "dave-id").value("callId", ""), "other-4");
}

// ---- acceptCall -----------------------------------------------------------------

TEST_F(CallManagerTest, FirstAcceptWinsAndOtherDevicesAreTold) {
  const std::string id = Ring();
  now_ += seconds(4);
  Json ack = WithCall("acceptCall", kBob2, id);

  EXPECT_EQ(ack.dump(),
            R"({"ok":true,"callId":"call-1","callerId":"alice-id","callType":"video"})");
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"11:callAcceptedConfirm", "1:callAccepted",
                                      "10:callAnsweredElsewhere"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","callerId":"alice-id","callType":"video"})");
  EXPECT_EQ(emitter_.all[1].payload.dump(), R"({"callId":"call-1","receiverId":"bob-id"})");
  EXPECT_EQ(emitter_.all[2].payload.dump(), R"({"callId":"call-1"})");
  ASSERT_EQ(recorder_.answered.size(), 1u);
  EXPECT_EQ(recorder_.answered[0].call.id, id);
  EXPECT_EQ(recorder_.answered[0].at, now_);
  EXPECT_EQ(m().NextDeadline(), std::nullopt);  // no ring timeout any more
  EXPECT_EQ(m().FindCall(id)->state, CallState::kActive);
  EXPECT_EQ(m().FindCall(id)->callee_socket, kBob2);

  emitter_.Clear();
  ExpectError(WithCall("acceptCall", kBob, id), kBob, kErrCallAlreadyProcessed, id);
  ExpectError(WithCall("acceptCall", kBob2, id), kBob2, kErrCallAlreadyProcessed, id);
  EXPECT_EQ(recorder_.answered.size(), 1u);
}

TEST_F(CallManagerTest, AcceptErrors) {
  const std::string id = Ring();
  ExpectError(Send(kBob, "acceptCall", Json::object()), kBob, kErrCallIdRequired, std::nullopt);
  ExpectError(Send(kBob, "acceptCall", {{"callId", ""}}), kBob, kErrCallIdRequired, std::nullopt);
  ExpectError(Send(kBob, "acceptCall", {{"callId", 7}}), kBob, kErrCallIdRequired, std::nullopt);
  ExpectError(Send(kBob, "acceptCall", "call-1"), kBob, kErrCallIdRequired, std::nullopt);
  ExpectError(WithCall("acceptCall", kBob, "call-9"), kBob, kErrCallNotFound, "call-9");
  ExpectError(WithCall("acceptCall", kAlice, id), kAlice, kErrNotAuthorized, id);
  ExpectError(WithCall("acceptCall", kCarol, id), kCarol, kErrNotAuthorized, id);
  ExpectError(WithCall("acceptCall", kStranger, id), kStranger, kErrNotAuthorized, id);
  EXPECT_EQ(m().FindCall(id)->state, CallState::kRinging);
  EXPECT_TRUE(recorder_.answered.empty());
}

// ---- rejectCall -----------------------------------------------------------------

TEST_F(CallManagerTest, RejectFromOneDeviceStopsEveryDevice) {
  const std::string id = Ring();
  Json ack = WithCall("rejectCall", kBob, id);

  EXPECT_EQ(ack.dump(), R"({"ok":true,"callId":"call-1"})");
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"10:callRejectedConfirm", "1:callRejected", "11:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(), R"({"callId":"call-1"})");
  EXPECT_EQ(emitter_.all[1].payload.dump(),
            R"({"callId":"call-1","receiverId":"bob-id","reason":"rejected"})");
  EXPECT_EQ(emitter_.all[2].payload.dump(),
            R"({"callId":"call-1","endedBy":"bob-id","reason":"rejected"})");
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kRejected);
  EXPECT_EQ(recorder_.ended[0].reason, "rejected");
  EXPECT_EQ(recorder_.ended[0].ended_by, "bob-id");
  EXPECT_EQ(metrics_.ended.back(), std::make_pair(CallType::kVideo, CallStatus::kRejected));
  EXPECT_EQ(m().call_count(), 0u);
  EXPECT_EQ(m().CurrentCallOf("bob-id"), std::nullopt);
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(60));  // only forgetting the id is left
}

TEST_F(CallManagerTest, RejectErrors) {
  const std::string id = Ring();
  ExpectError(WithCall("rejectCall", kAlice, id), kAlice, kErrNotAuthorized, id);
  ExpectError(WithCall("rejectCall", kCarol, id), kCarol, kErrNotAuthorized, id);
  ExpectError(Send(kBob, "rejectCall", Json::object()), kBob, kErrCallIdRequired, std::nullopt);
  ExpectError(WithCall("rejectCall", kBob, "nope"), kBob, kErrCallNotFound, "nope");
  WithCall("acceptCall", kBob, id);
  ExpectError(WithCall("rejectCall", kBob2, id), kBob2, kErrCallAlreadyProcessed, id);
  ExpectError(WithCall("rejectCall", kBob, id), kBob, kErrCallAlreadyProcessed, id);
  EXPECT_EQ(m().FindCall(id)->state, CallState::kActive);
}

// ---- endCall --------------------------------------------------------------------

TEST_F(CallManagerTest, HangUpCompletesWithDurationFromAccept) {
  const std::string id = Ring();
  now_ += seconds(5);
  const base::MonoTime answered = now_;
  WithCall("acceptCall", kBob2, id);
  emitter_.Clear();
  now_ += std::chrono::milliseconds(61'900);

  Json ack = WithCall("endCall", kAlice, id);
  EXPECT_EQ(ack.dump(), R"({"ok":true,"callId":"call-1"})");
  // Bob's other device was told when the call was answered, not now.
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callEndedConfirm", "11:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(), R"({"callId":"call-1"})");
  EXPECT_EQ(emitter_.all[1].payload.dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"hangup"})");
  ASSERT_EQ(recorder_.ended.size(), 1u);
  const CallEndRecord& end = recorder_.ended[0];
  EXPECT_EQ(end.status, CallStatus::kCompleted);
  EXPECT_EQ(end.reason, "hangup");
  EXPECT_EQ(end.ended_by, "alice-id");
  EXPECT_EQ(end.answered_at, answered);
  EXPECT_EQ(end.ended_at, now_);
  EXPECT_EQ(end.duration_seconds, 61);
  EXPECT_EQ(recorder_.log, (std::vector<std::string>{"answered:call-1", "ended:call-1"}));
  EXPECT_EQ(metrics_.ended.back(), std::make_pair(CallType::kVideo, CallStatus::kCompleted));
}

TEST_F(CallManagerTest, CalleeHangsUp) {
  const std::string id = Answered();
  now_ += seconds(2);
  EXPECT_EQ(WithCall("endCall", kBob2, id).value("ok", false), true);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"11:callEndedConfirm", "1:callEnded"}));
  EXPECT_EQ(emitter_.all[1].payload.dump(),
            R"({"callId":"call-1","endedBy":"bob-id","reason":"hangup"})");
  EXPECT_EQ(recorder_.ended[0].duration_seconds, 2);
  EXPECT_EQ(recorder_.ended[0].ended_by, "bob-id");
}

TEST_F(CallManagerTest, AnotherDeviceOfAParticipantMayHangUp) {
  const std::string id = Answered();
  EXPECT_EQ(WithCall("endCall", kBob, id).value("ok", false), true);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"10:callEndedConfirm", "1:callEnded", "11:callEnded"}));
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kCompleted);
}

TEST_F(CallManagerTest, CallerHangingUpWhileRingingCancels) {
  const std::string id = Ring();
  EXPECT_EQ(WithCall("endCall", kAlice, id).value("ok", false), true);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"1:callEndedConfirm", "10:callEnded", "11:callEnded"}));
  EXPECT_EQ(emitter_.all[1].payload.dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"cancelled"})");
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kCancelled);
  EXPECT_EQ(recorder_.ended[0].reason, "cancelled");
  EXPECT_EQ(metrics_.ended.back(), std::make_pair(CallType::kVideo, CallStatus::kCancelled));
}

TEST_F(CallManagerTest, CallerOtherDeviceCancelsAndTheCallingSocketIsTold) {
  const std::string id = Ring();
  Connect(kAlice2, "alice-id");
  EXPECT_EQ(WithCall("endCall", kAlice2, id).value("ok", false), true);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"2:callEndedConfirm", "1:callEnded",
                                                          "10:callEnded", "11:callEnded"}));
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kCancelled);
}

TEST_F(CallManagerTest, CalleeEndCallWhileRingingRejects) {
  const std::string id = Ring();
  EXPECT_EQ(WithCall("endCall", kBob2, id).value("ok", false), true);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"11:callEndedConfirm", "1:callRejected", "10:callEnded"}));
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kRejected);
}

TEST_F(CallManagerTest, EndErrors) {
  const std::string id = Ring();
  ExpectError(WithCall("endCall", kCarol, id), kCarol, kErrNotAuthorized, id);
  ExpectError(Send(kAlice, "endCall", Json::object()), kAlice, kErrCallIdRequired, std::nullopt);
  ExpectError(WithCall("endCall", kAlice, "zzz"), kAlice, kErrCallNotFound, "zzz");
  EXPECT_EQ(m().call_count(), 1u);
}

// ---- Ended calls ----------------------------------------------------------------

TEST_F(CallManagerTest, EndedCallsBeyondTheBoundAreForgottenOldestFirst) {
  CallManagerOptions options;
  options.max_remembered_ended_calls = 2;
  Reset(options);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(Answered());
    WithCall("endCall", kAlice, ids.back());
    Advance(seconds(1));
  }
  EXPECT_EQ(m().remembered_ended_calls(), 2u);
  ExpectError(WithCall("endCall", kAlice, ids[0]), kAlice, kErrCallNotFound, ids[0]);
  ExpectError(WithCall("endCall", kAlice, ids[1]), kAlice, kErrCallAlreadyProcessed, ids[1]);
  ExpectError(WithCall("endCall", kAlice, ids[2]), kAlice, kErrCallAlreadyProcessed, ids[2]);
  // The rest are forgotten at the end of their retention, as always.
  Advance(seconds(60));
  EXPECT_EQ(m().remembered_ended_calls(), 0u);
  EXPECT_EQ(m().NextDeadline(), std::nullopt);
}

TEST_F(CallManagerTest, EventsForAnEndedCallAreRefusedThenForgotten) {
  const std::string id = Answered();
  WithCall("endCall", kAlice, id);
  ASSERT_EQ(m().remembered_ended_calls(), 1u);
  const char* events[] = {"acceptCall", "rejectCall",       "endCall",   "sendOffer",
                          "sendAnswer", "sendIceCandidate", "reportIce", "rejoinCall"};
  for (const char* event : events) {
    SCOPED_TRACE(event);
    // A participant's late reportIce is taken (call_manager_flow_test.cc).
    if (std::string_view(event) != "reportIce") {
      ExpectError(WithCall(event, kBob2, id), kBob2, kErrCallAlreadyProcessed, id);
      ExpectError(WithCall(event, kAlice, id), kAlice, kErrCallAlreadyProcessed, id);
    }
    ExpectError(WithCall(event, kCarol, id), kCarol, kErrNotAuthorized, id);
  }
  EXPECT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(60));
  Advance(seconds(59));
  EXPECT_EQ(m().remembered_ended_calls(), 1u);
  Advance(seconds(1));
  EXPECT_EQ(m().remembered_ended_calls(), 0u);
  EXPECT_EQ(m().NextDeadline(), std::nullopt);
  for (const char* event : events) {
    ExpectError(WithCall(event, kAlice, id), kAlice, kErrCallNotFound, id);
  }
}

TEST_F(CallManagerTest, EveryCallEventNeedsACallId) {
  for (const char* event : {"acceptCall", "rejectCall", "endCall", "sendOffer", "sendAnswer",
                            "sendIceCandidate", "reportIce", "rejoinCall"}) {
    SCOPED_TRACE(event);
    ExpectError(Send(kAlice, event, Json::object()), kAlice, kErrCallIdRequired, std::nullopt);
    ExpectError(WithCall(event, kAlice, "missing"), kAlice, kErrCallNotFound, "missing");
  }
}

TEST_F(CallManagerTest, OtherEventsAreTheAppsToHandle) {
  EXPECT_EQ(m().OnEvent(now_, kAlice, "getIceServers", Json::object(), directory_), std::nullopt);
  EXPECT_EQ(m().OnEvent(now_, kAlice, "callInitiated", Json::object(), directory_), std::nullopt);
  EXPECT_TRUE(emitter_.all.empty());
}

}  // namespace
}  // namespace turnkey::signal
