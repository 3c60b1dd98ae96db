// CallManager: SDP and candidate relay, reportIce, ring timeout, dropped
// sockets and rejoinCall, glare, EndAll, and presence.
#include <gtest/gtest.h>

#include "signal/call_manager.h"
#include "tests/signal/call_manager_fixture.h"

namespace turnkey::signal {
namespace {

using metrics::CallStatus;
using metrics::CallType;
using metrics::CandidateType;
using metrics::IceResult;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Json kOffer = Json::parse(R"({"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"})");
const Json kAnswer = Json::parse(R"({"type":"answer","sdp":"v=0\r\n"})");
const Json kCandidate = Json::parse(
    R"({"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host","sdpMid":"0",)"
    R"("sdpMLineIndex":0,"usernameFragment":null})");

Json Message(std::string_view call_id, std::string_view field, const Json& value) {
  Json out = Json::object();
  out["callId"] = call_id;
  out[std::string(field)] = value;
  return out;
}

// ---- Relay ----------------------------------------------------------------------

TEST_F(CallManagerTest, OfferAnswerAndCandidatesAreRelayedIntactBothWays) {
  const std::string id = Answered();
  EXPECT_EQ(Send(kAlice, "sendOffer", Message(id, "offer", kOffer)).dump(),
            R"({"ok":true,"callId":"call-1"})");
  EXPECT_EQ(Send(kBob2, "sendAnswer", Message(id, "answer", kAnswer)).value("ok", false), true);
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", kCandidate))["ok"], true);
  EXPECT_EQ(Send(kBob2, "sendIceCandidate", Message(id, "candidate", "end-of-candidates"))["ok"],
            true);

  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"11:receiveOffer", "1:receiveAnswer",
                                      "11:receiveIceCandidate", "1:receiveIceCandidate"}));
  Json offer = emitter_.One(kBob2, "receiveOffer");
  EXPECT_EQ(offer.dump(), Json({{"callId", id}, {"from", "alice-id"}, {"offer", kOffer}}).dump());
  EXPECT_EQ(emitter_.One(kAlice, "receiveAnswer"),
            (Json{{"callId", id}, {"from", "bob-id"}, {"answer", kAnswer}}));
  EXPECT_EQ(emitter_.To(kBob2, "receiveIceCandidate")[0]["candidate"], kCandidate);
  EXPECT_EQ(emitter_.To(kAlice, "receiveIceCandidate")[0]["candidate"], "end-of-candidates");
  EXPECT_TRUE(emitter_.To(kBob, "receiveOffer").empty());
}

TEST_F(CallManagerTest, OnlyTheChosenDevicesMaySignal) {
  const std::string id = Answered();
  Connect(kAlice2, "alice-id");
  for (uint64_t socket : {kBob, kAlice2, kCarol, kStranger}) {
    SCOPED_TRACE(socket);
    ExpectError(Send(socket, "sendOffer", Message(id, "offer", kOffer)), socket, kErrNotAuthorized,
                id);
    ExpectError(Send(socket, "sendIceCandidate", Message(id, "candidate", kCandidate)), socket,
                kErrNotAuthorized, id);
  }
  EXPECT_TRUE(emitter_.To(kAlice, "receiveOffer").empty());
  EXPECT_TRUE(emitter_.To(kBob2, "receiveOffer").empty());
}

TEST_F(CallManagerTest, RelayNeedsItsField) {
  const std::string id = Answered();
  ExpectError(WithCall("sendOffer", kAlice, id), kAlice, kErrOfferRequired, id);
  ExpectError(Send(kAlice, "sendOffer", Message(id, "offer", nullptr)), kAlice, kErrOfferRequired,
              id);
  ExpectError(Send(kBob2, "sendAnswer", Message(id, "offer", kOffer)), kBob2, kErrAnswerRequired,
              id);
  ExpectError(WithCall("sendIceCandidate", kBob2, id), kBob2, kErrCandidateRequired, id);
  EXPECT_EQ(emitter_.all.size(), 4u);  // the callErrors only
}

TEST_F(CallManagerTest, CallerSignalsWhileRingingAreDeliveredAfterAccept) {
  const std::string id = Ring();
  EXPECT_EQ(Send(kAlice, "sendOffer", Message(id, "offer", kOffer))["ok"], true);
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "c1"))["ok"], true);
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "c2"))["ok"], true);
  EXPECT_TRUE(emitter_.all.empty());
  // The callee cannot signal before answering.
  ExpectError(Send(kBob, "sendAnswer", Message(id, "answer", kAnswer)), kBob, kErrNotAuthorized,
              id);
  emitter_.Clear();

  WithCall("acceptCall", kBob, id);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"10:callAcceptedConfirm", "1:callAccepted",
                                      "11:callAnsweredElsewhere", "10:receiveOffer",
                                      "10:receiveIceCandidate", "10:receiveIceCandidate"}));
  EXPECT_EQ(emitter_.all[3].payload["offer"], kOffer);
  EXPECT_EQ(emitter_.all[4].payload["candidate"], "c1");
  EXPECT_EQ(emitter_.all[5].payload["candidate"], "c2");
}

TEST_F(CallManagerTest, HeldMessagesAreCapped) {
  CallManagerOptions options;
  options.max_held_messages = 2;
  Reset(options);
  const std::string id = Ring();
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "c1"))["ok"], true);
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "c2"))["ok"], true);
  ExpectError(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "c3")), kAlice,
              kErrRateLimited, id);
  emitter_.Clear();
  WithCall("acceptCall", kBob, id);
  EXPECT_EQ(emitter_.To(kBob, "receiveIceCandidate").size(), 2u);
}

TEST_F(CallManagerTest, HeldMessagesAreCappedInBytes) {
  CallManagerOptions options;
  options.max_held_bytes = 10'000;
  Reset(options);
  const std::string id = Ring();
  const std::string sdp(6'000, 'v');
  EXPECT_EQ(Send(kAlice, "sendOffer", Message(id, "offer", sdp))["ok"], true);
  // 6,002 held and 6,002 more would pass 10,000: refused, as a small
  // candidate that fits is not.
  ExpectError(Send(kAlice, "sendOffer", Message(id, "offer", sdp)), kAlice, kErrRateLimited, id);
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "c1"))["ok"], true);
  emitter_.Clear();
  WithCall("acceptCall", kBob, id);
  EXPECT_EQ(emitter_.To(kBob, "receiveOffer").size(), 1u);
  EXPECT_EQ(emitter_.To(kBob, "receiveIceCandidate").size(), 1u);
  // Delivered: the room is back for the next time Bob is away.
  emitter_.Clear();
  Disconnect(kBob);
  EXPECT_EQ(Send(kAlice, "sendOffer", Message(id, "offer", sdp))["ok"], true);
}

// ---- reportIce ------------------------------------------------------------------

TEST_F(CallManagerTest, ReportIceIsRecordedAndCounted) {
  const std::string id = Ring();
  now_ += seconds(3);
  WithCall("acceptCall", kBob2, id);
  now_ += milliseconds(1500);
  Json ack = Send(kAlice, "reportIce", Json::parse(R"({"callId":"call-1","state":"connected",
                                  "localCandidateType":"relay","remoteCandidateType":"srflx",
                                  "relayProtocol":"udp","rttMs":41.6})"));
  EXPECT_EQ(ack.dump(), R"({"ok":true,"callId":"call-1"})");
  now_ += seconds(1);
  Send(kBob2, "reportIce",
       Json::parse(R"({"callId":"call-1","state":"connected","localCandidateType":"host",
                       "remoteCandidateType":"weird","relayProtocol":"sctp","rttMs":-1})"));

  ASSERT_EQ(recorder_.ice.size(), 2u);
  EXPECT_EQ(recorder_.ice[0], (IceReportRecord{.call_id = "call-1",
                                               .user_id = "alice-id",
                                               .side = CallSide::kCaller,
                                               .result = IceResult::kConnected,
                                               .local_candidate_type = CandidateType::kRelay,
                                               .remote_candidate_type = CandidateType::kSrflx,
                                               .relay_protocol = "udp",
                                               .rtt_ms = 42,
                                               .reported_at = now_ - seconds(1)}));
  EXPECT_EQ(recorder_.ice[1].side, CallSide::kCallee);
  EXPECT_EQ(recorder_.ice[1].user_id, "bob-id");
  EXPECT_EQ(recorder_.ice[1].remote_candidate_type, CandidateType::kUnknown);
  EXPECT_EQ(recorder_.ice[1].relay_protocol, "");
  EXPECT_EQ(recorder_.ice[1].rtt_ms, std::nullopt);
  EXPECT_EQ(metrics_.ice,
            (std::vector<FakeMetrics::Ice>{
                {IceResult::kConnected, CandidateType::kRelay, CandidateType::kSrflx},
                {IceResult::kConnected, CandidateType::kHost, CandidateType::kUnknown}}));
  // Setup time: initiateCall to the first "connected", counted once per call;
  // and from the answer (ICE, TURN, DTLS without the ringing).
  EXPECT_EQ(metrics_.setups, (std::vector<base::Duration>{milliseconds(4500)}));
  EXPECT_EQ(metrics_.since_answers, (std::vector<base::Duration>{milliseconds(1500)}));
  EXPECT_EQ(metrics_.rtts, (std::vector<std::optional<int64_t>>{42, std::nullopt}));
}

TEST_F(CallManagerTest, FailedIceIsCountedWithoutASetupTime) {
  const std::string id = Answered();
  Send(kAlice, "reportIce", Json::parse(R"({"callId":"call-1","state":"failed"})"));
  EXPECT_EQ(metrics_.ice,
            (std::vector<FakeMetrics::Ice>{
                {IceResult::kFailed, CandidateType::kUnknown, CandidateType::kUnknown}}));
  EXPECT_TRUE(metrics_.setups.empty());
  EXPECT_EQ(recorder_.ice.at(0).result, IceResult::kFailed);
  EXPECT_EQ(recorder_.ice.at(0).rtt_ms, std::nullopt);
  // Why, counted once per side: a report without the detail is unknown; the
  // callee could not reach its TURN server.
  Send(kBob2, "reportIce", Json::parse(R"({"callId":"call-1","state":"failed",
      "localCandidates":{"host":2,"srflx":1,"relay":0},
      "iceErrors":[{"url":"turn:turn.example.org:3478?transport=udp","errorCode":701}]})"));
  Send(kBob2, "reportIce", Json::parse(R"({"callId":"call-1","state":"failed",
      "localCandidates":{"relay":1}})"));
  EXPECT_EQ(metrics_.causes,
            (std::vector<metrics::IceFailureCause>{metrics::IceFailureCause::kUnknown,
                                                   metrics::IceFailureCause::kTurnUnreachable}));
  // The history keeps every report's cause (the last one is the call's).
  ASSERT_EQ(recorder_.ice.size(), 3u);
  EXPECT_EQ(recorder_.ice[1].cause, metrics::IceFailureCause::kTurnUnreachable);
  EXPECT_EQ(recorder_.ice[2].cause, metrics::IceFailureCause::kChecksFailed);
}

// Media that connected, then went down and did not come back: the side that
// gives up reports failed again before its endCall, and the call is
// ice_failed, not a good call. One that came back (connected again) is not.
TEST_F(CallManagerTest, MediaLostMidCallAndGivenUpOnEndsIceFailed) {
  const std::string id = Answered();
  Send(kAlice, "reportIce", Message(id, "state", "connected"));
  Send(kBob2, "reportIce", Message(id, "state", "connected"));
  Send(kAlice, "reportIce", Message(id, "state", "failed"));
  WithCall("endCall", kAlice, id);
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kIceFailed);
  EXPECT_EQ(recorder_.ended[0].reason, kReasonIceFailed);
  // The graphs keep each side's first report.
  EXPECT_EQ(metrics_.ice.size(), 2u);

  const std::string again = Answered();
  Send(kAlice, "reportIce", Message(again, "state", "connected"));
  Send(kAlice, "reportIce", Message(again, "state", "failed"));
  Send(kAlice, "reportIce", Message(again, "state", "connected"));
  WithCall("endCall", kBob2, again);
  ASSERT_EQ(recorder_.ended.size(), 1u);  // Answered() cleared the first
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kCompleted);
  EXPECT_EQ(recorder_.ended[0].reason, kReasonHangup);
}

// The usual order when media fails: one side reports failed and hangs up,
// the other side's failure comes after that endCall. Both legs count, and
// the call is ice_failed (history: failed, reason ice_failed), not completed.
TEST_F(CallManagerTest, AReportAfterTheEndOfAnAnsweredCallStillCounts) {
  const std::string id = Answered();
  Send(kAlice, "reportIce", Message(id, "state", "failed"));
  WithCall("endCall", kAlice, id);
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kIceFailed);
  EXPECT_EQ(recorder_.ended[0].reason, kReasonIceFailed);
  EXPECT_EQ(emitter_.To(kBob2, "callEnded").at(0).value("reason", ""), kReasonHangup);
  EXPECT_EQ(metrics_.ended.at(0).second, CallStatus::kIceFailed);

  now_ += seconds(2);
  Json ack = Send(kBob2, "reportIce", Message(id, "state", "failed"));
  EXPECT_EQ(ack.value("ok", false), true) << ack.dump();
  ASSERT_EQ(recorder_.ice.size(), 2u);
  EXPECT_EQ(recorder_.ice[1].side, CallSide::kCallee);
  EXPECT_EQ(recorder_.ice[1].reported_at, now_);
  EXPECT_EQ(metrics_.ice.size(), 2u);
  // The caller's second report reaches the history only, as in a live call.
  EXPECT_EQ(Send(kAlice, "reportIce", Message(id, "state", "failed")).value("ok", false), true);
  EXPECT_EQ(recorder_.ice.size(), 3u);
  EXPECT_EQ(metrics_.ice.size(), 2u);
  // Refused as for a live call: a bad state, someone else; then forgotten.
  ExpectError(Send(kBob2, "reportIce", Message(id, "state", "checking")), kBob2,
              kErrInvalidIceState, id);
  ExpectError(Send(kCarol, "reportIce", Message(id, "state", "failed")), kCarol, kErrNotAuthorized,
              id);
  Advance(seconds(60));
  ExpectError(Send(kBob2, "reportIce", Message(id, "state", "failed")), kBob2, kErrCallNotFound,
              id);
  EXPECT_EQ(recorder_.ice.size(), 3u);
  EXPECT_EQ(recorder_.ended.size(), 1u);
}

// After the end, as during the call, a side reports from the socket that
// took part: the device that only rang cannot put its "failed" in the
// metrics in place of the real leg. Once that socket is gone, the app
// reconnecting reports from its new one.
TEST_F(CallManagerTest, ALateReportComesFromTheSocketThatTookPart) {
  const std::string id = Answered();  // Bob answered on kBob2; kBob rang
  WithCall("endCall", kAlice, id);
  ExpectError(Send(kBob, "reportIce", Message(id, "state", "failed")), kBob, kErrNotAuthorized, id);
  EXPECT_TRUE(recorder_.ice.empty());
  EXPECT_TRUE(metrics_.ice.empty());
  Disconnect(kBob2);
  constexpr uint64_t kBob3 = 12;
  Connect(kBob3, "bob-id");
  Json ack = Send(kBob3, "reportIce", Message(id, "state", "connected"));
  EXPECT_EQ(ack.value("ok", false), true) << ack.dump();
  ASSERT_EQ(recorder_.ice.size(), 1u);
  EXPECT_EQ(recorder_.ice[0].side, CallSide::kCallee);
  EXPECT_EQ(recorder_.ice[0].result, IceResult::kConnected);
  EXPECT_EQ(metrics_.ice.size(), 1u);
}

TEST_F(CallManagerTest, ACallThatNeverAnsweredTakesNoLateReport) {
  const std::string id = Ring();
  WithCall("endCall", kAlice, id);  // cancelled
  ExpectError(Send(kAlice, "reportIce", Message(id, "state", "failed")), kAlice,
              kErrCallAlreadyProcessed, id);
  EXPECT_TRUE(recorder_.ice.empty());
}

TEST_F(CallManagerTest, MediaThatConnectedOnceMakesACompletedCall) {
  // Failed, then connected after an ICE restart: the users had media.
  std::string id = Answered();
  Send(kAlice, "reportIce", Message(id, "state", "failed"));
  Send(kBob2, "reportIce", Message(id, "state", "connected"));
  WithCall("endCall", kBob2, id);
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kCompleted);
  EXPECT_EQ(recorder_.ended.at(0).reason, kReasonHangup);
  // No report at all: completed, as before reports existed.
  Advance(seconds(60));
  id = Answered();
  WithCall("endCall", kAlice, id);
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kCompleted);
}

TEST_F(CallManagerTest, ReportIceErrors) {
  const std::string id = Ring();
  ExpectError(Send(kAlice, "reportIce", Message(id, "state", "connected")), kAlice,
              kErrCallNotActive, id);
  // Every ringing device of the callee is told the same; a stranger is not.
  ExpectError(Send(kBob, "reportIce", Message(id, "state", "connected")), kBob, kErrCallNotActive,
              id);
  ExpectError(Send(kCarol, "reportIce", Message(id, "state", "connected")), kCarol,
              kErrNotAuthorized, id);
  WithCall("acceptCall", kBob2, id);
  for (const char* state : {"", "checking", "CONNECTED"}) {
    ExpectError(Send(kAlice, "reportIce", Message(id, "state", state)), kAlice, kErrInvalidIceState,
                id);
  }
  ExpectError(WithCall("reportIce", kAlice, id), kAlice, kErrInvalidIceState, id);
  ExpectError(Send(kBob, "reportIce", Message(id, "state", "connected")), kBob, kErrNotAuthorized,
              id);
  ExpectError(Send(kCarol, "reportIce", Message(id, "state", "connected")), kCarol,
              kErrNotAuthorized, id);
  EXPECT_TRUE(recorder_.ice.empty());
  EXPECT_TRUE(metrics_.ice.empty());
}

TEST_F(CallManagerTest, ReportIceIsCappedPerSide) {
  CallManagerOptions options;
  options.max_ice_reports_per_side = 2;
  Reset(options);
  const std::string id = Answered();
  const Json report = Message(id, "state", "failed");
  EXPECT_EQ(Send(kAlice, "reportIce", report)["ok"], true);
  EXPECT_EQ(Send(kAlice, "reportIce", report)["ok"], true);
  ExpectError(Send(kAlice, "reportIce", report), kAlice, kErrRateLimited, id);
  EXPECT_EQ(Send(kBob2, "reportIce", report)["ok"], true);
  EXPECT_EQ(recorder_.ice.size(), 3u);
}

TEST_F(CallManagerTest, OnlyEachSidesFirstReportIceReachesTheMetrics) {
  const std::string id = Answered();
  EXPECT_EQ(Send(kAlice, "reportIce", Message(id, "state", "connected"))["ok"], true);
  EXPECT_EQ(Send(kAlice, "reportIce", Message(id, "state", "failed"))["ok"], true);
  EXPECT_EQ(Send(kAlice, "reportIce", Message(id, "state", "connected"))["ok"], true);
  EXPECT_EQ(Send(kBob2, "reportIce", Message(id, "state", "failed"))["ok"], true);
  EXPECT_EQ(Send(kBob2, "reportIce", Message(id, "state", "connected"))["ok"], true);
  // Every report is on the call's record; the metrics count one per leg.
  EXPECT_EQ(recorder_.ice.size(), 5u);
  ASSERT_EQ(metrics_.ice.size(), 2u);
  EXPECT_EQ(metrics_.ice[0].result, IceResult::kConnected);
  EXPECT_EQ(metrics_.ice[1].result, IceResult::kFailed);
}

// ---- Ring timeout ---------------------------------------------------------------

TEST_F(CallManagerTest, RingTimeoutEndsTheCallAsMissed) {
  const std::string id = Ring();
  ASSERT_EQ(m().NextDeadline(), now_ + seconds(30));
  Advance(seconds(30) - milliseconds(1));
  EXPECT_TRUE(emitter_.all.empty());
  Advance(milliseconds(1));

  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"1:callTimeout", "10:callEnded", "11:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(), R"({"callId":"call-1","receiverId":"bob-id"})");
  EXPECT_EQ(emitter_.all[1].payload.dump(),
            R"({"callId":"call-1","endedBy":null,"reason":"timeout"})");
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kMissed);
  EXPECT_EQ(recorder_.ended[0].reason, "timeout");
  EXPECT_EQ(recorder_.ended[0].ended_by, "");
  EXPECT_EQ(metrics_.ended.back(), std::make_pair(CallType::kVideo, CallStatus::kMissed));
  ExpectError(WithCall("acceptCall", kBob, id), kBob, kErrCallAlreadyProcessed, id);
}

TEST_F(CallManagerTest, RingTimeoutIsConfigurable) {
  CallManagerOptions options;
  options.ring_timeout = seconds(2);
  Reset(options);
  Ring();
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(2));
  Advance(seconds(5));  // a late timer is fine
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kMissed);
  EXPECT_EQ(recorder_.ended.at(0).ended_at, now_);
}

// ---- Dropped sockets while ringing ----------------------------------------------

TEST_F(CallManagerTest, CallerSocketLostWhileRingingCancels) {
  Ring();
  Disconnect(kAlice);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"10:callEnded", "11:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"cancelled"})");
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kCancelled);
  EXPECT_EQ(m().call_count(), 0u);
}

TEST_F(CallManagerTest, CalleeDevicesDroppingKeepTheCallRinging) {
  const std::string id = Ring();
  Disconnect(kBob);
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_EQ(m().FindCall(id)->state, CallState::kRinging);
  Disconnect(kBob2);  // the last device: the call rings on until the timeout
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_FALSE(m().presence().IsOnline("bob-id"));

  Advance(seconds(10));
  Connect(12, "bob-id");  // a reconnecting device rings
  EXPECT_EQ(emitter_.One(12, "incomingCall").value("callId", ""), id);
  Connect(kCarol + 1, "carol-id");  // not bob: no ring
  EXPECT_EQ(emitter_.all.size(), 1u);
  EXPECT_EQ(WithCall("acceptCall", 12, id)["ok"], true);
  EXPECT_EQ(emitter_.One(kAlice, "callAccepted").value("receiverId", ""), "bob-id");
}

TEST_F(CallManagerTest, CalleeOfflineUntilTheTimeoutIsMissed) {
  Ring();
  Disconnect(kBob);
  Disconnect(kBob2);
  Advance(seconds(30));
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callTimeout"}));
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kMissed);
}

// ---- Dropped sockets during a call, rejoinCall -------------------------------------

TEST_F(CallManagerTest, RejoinWithinTheGraceGoesOn) {
  const std::string id = Answered();
  Disconnect(kBob2);
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_TRUE(m().FindCall(id)->callee_in_grace);
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(10));
  // Alice's messages wait for bob.
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", "late"))["ok"], true);

  Advance(seconds(9));
  Connect(12, "bob-id");
  Json ack = WithCall("rejoinCall", 12, id);
  EXPECT_EQ(ack.dump(), R"({"ok":true,"callId":"call-1","state":"active","role":"callee",)"
                        R"("peerId":"alice-id","callType":"video"})");
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"1:peerReconnected", "12:receiveIceCandidate"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(), R"({"callId":"call-1","userId":"bob-id"})");
  EXPECT_EQ(emitter_.all[1].payload["candidate"], "late");
  EXPECT_FALSE(m().FindCall(id)->callee_in_grace);
  EXPECT_EQ(m().FindCall(id)->callee_socket, 12u);
  EXPECT_EQ(m().NextDeadline(), std::nullopt);

  Advance(seconds(60));
  EXPECT_EQ(m().FindCall(id)->state, CallState::kActive);
  emitter_.Clear();
  EXPECT_EQ(Send(12, "sendAnswer", Message(id, "answer", kAnswer))["ok"], true);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:receiveAnswer"}));
  // Bob's other device still cannot take over by signaling; only by rejoining.
  ExpectError(Send(kBob, "sendAnswer", Message(id, "answer", kAnswer)), kBob, kErrNotAuthorized,
              id);
  WithCall("endCall", 12, id);
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kCompleted);
  EXPECT_EQ(recorder_.ended.at(0).duration_seconds, 69);
}

TEST_F(CallManagerTest, SignalingBufferedOfflineArrivesBeforeTheRejoinAndCounts) {
  // socket.io-client sends what it buffered while offline as soon as it is
  // connected again, before the app's connect handler emits rejoinCall.
  const std::string id = Answered();
  Disconnect(kBob2);
  Connect(12, "bob-id");
  EXPECT_EQ(Send(12, "sendIceCandidate", Message(id, "candidate", "buffered"))["ok"], true);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"1:peerReconnected", "1:receiveIceCandidate"}));
  EXPECT_FALSE(m().FindCall(id)->callee_in_grace);
  EXPECT_EQ(m().FindCall(id)->callee_socket, 12u);
  EXPECT_EQ(m().NextDeadline(), std::nullopt);
  emitter_.Clear();
  // The rejoin that follows changes nothing.
  EXPECT_EQ(WithCall("rejoinCall", 12, id)["ok"], true);
  EXPECT_TRUE(emitter_.all.empty());
  // reportIce takes the side over the same way; a live side is not taken.
  Disconnect(kAlice);
  Connect(kAlice2, "alice-id");
  Json report{{"callId", id},
              {"state", "connected"},
              {"localCandidateType", "host"},
              {"remoteCandidateType", "host"}};
  EXPECT_EQ(Send(kAlice2, "reportIce", report)["ok"], true);
  EXPECT_EQ(m().FindCall(id)->caller_socket, kAlice2);
  ExpectError(Send(kBob, "sendIceCandidate", Message(id, "candidate", "x")), kBob,
              kErrNotAuthorized, id);
}

// A callee device away when a call that rang on it ended (a phone in a
// tunnel at the ring timeout, the caller's cancel, a reject on another
// device) learns it when it connects again, while the call is remembered.
TEST_F(CallManagerTest, ACalleeDeviceThatWasAwayLearnsThatARingingCallEnded) {
  const std::string id = Ring();
  Disconnect(kBob2);
  Advance(seconds(30));  // the ring timeout
  EXPECT_EQ(emitter_.To(kBob, "callEnded").size(), 1u);
  EXPECT_TRUE(emitter_.To(kBob2, "callEnded").empty());
  emitter_.Clear();
  constexpr uint64_t kBob3 = 12;
  Connect(kBob3, "bob-id");
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"12:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","endedBy":null,"reason":"timeout"})");
  // The caller is not told again; once the call is forgotten, nobody is.
  emitter_.Clear();
  Connect(kAlice2, "alice-id");
  EXPECT_TRUE(emitter_.all.empty());
  Disconnect(kBob3);
  Advance(seconds(60));
  Connect(kBob3, "bob-id");
  EXPECT_TRUE(emitter_.all.empty());

  // A call that was answered (or never rang: unavailable, busy) is not told.
  Connect(kBob2, "bob-id");
  const std::string answered = Answered();
  WithCall("endCall", kAlice, answered);
  emitter_.Clear();
  Connect(13, "bob-id");
  EXPECT_TRUE(emitter_.all.empty());
}

TEST_F(CallManagerTest, NoRejoinWithinTheGraceLosesTheCall) {
  const std::string id = Answered();
  now_ += seconds(20);
  Disconnect(kAlice);
  Advance(seconds(10) - milliseconds(1));
  EXPECT_TRUE(emitter_.all.empty());
  Advance(milliseconds(1));

  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"11:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"connection_lost"})");
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kConnectionLost);
  EXPECT_EQ(recorder_.ended[0].reason, "connection_lost");
  EXPECT_EQ(recorder_.ended[0].ended_by, "alice-id");
  // It ended when alice's socket was found gone, not when the grace ran out.
  EXPECT_EQ(recorder_.ended[0].duration_seconds, 20);
  EXPECT_EQ(recorder_.ended[0].ended_at, now_ - seconds(10));
  EXPECT_EQ(metrics_.ended.back(), std::make_pair(CallType::kVideo, CallStatus::kConnectionLost));

  Connect(kAlice2, "alice-id");
  ExpectError(WithCall("rejoinCall", kAlice2, id), kAlice2, kErrCallAlreadyProcessed, id);
}

TEST_F(CallManagerTest, GraceIsConfigurable) {
  CallManagerOptions options;
  options.reconnect_grace = seconds(3);
  Reset(options);
  Answered();
  Disconnect(kBob2);
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(3));
  Advance(seconds(3));
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kConnectionLost);
  EXPECT_EQ(recorder_.ended.at(0).ended_by, "bob-id");
}

TEST_F(CallManagerTest, RejoinBeforeTheOldSocketIsKnownDead) {
  const std::string id = Answered();
  Connect(kAlice2, "alice-id");
  Json ack = WithCall("rejoinCall", kAlice2, id);
  EXPECT_EQ(ack.value("role", ""), "caller");
  EXPECT_EQ(ack.value("peerId", ""), "bob-id");
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callEnded", "11:peerReconnected"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"rejoined_elsewhere"})");
  // The old socket is out of the call: its signals are refused, its close is harmless.
  ExpectError(Send(kAlice, "sendOffer", Message(id, "offer", kOffer)), kAlice, kErrNotAuthorized,
              id);
  Disconnect(kAlice);
  EXPECT_FALSE(m().FindCall(id)->caller_in_grace);
  emitter_.Clear();
  // Rejoining from the socket already in the call changes nothing.
  EXPECT_EQ(WithCall("rejoinCall", kAlice2, id)["ok"], true);
  EXPECT_TRUE(emitter_.all.empty());
}

TEST_F(CallManagerTest, RejoinErrorsAndRinging) {
  const std::string id = Ring();
  ExpectError(WithCall("rejoinCall", kCarol, id), kCarol, kErrNotAuthorized, id);
  // The callee's devices ring anyway.
  Json ack = WithCall("rejoinCall", kBob, id);
  EXPECT_EQ(ack.value("state", ""), "ringing");
  EXPECT_EQ(ack.value("role", ""), "callee");
  EXPECT_TRUE(emitter_.To(kAlice, "peerReconnected").empty());
  // The caller's side moves to the new socket, which then gets the answer.
  Connect(kAlice2, "alice-id");
  emitter_.Clear();
  EXPECT_EQ(WithCall("rejoinCall", kAlice2, id).value("state", ""), "ringing");
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callEnded"}));
  Disconnect(kAlice);  // no longer the calling socket: no cancel
  EXPECT_EQ(m().call_count(), 1u);
  WithCall("acceptCall", kBob, id);
  EXPECT_EQ(emitter_.To(kAlice2, "callAccepted").size(), 1u);
}

TEST_F(CallManagerTest, BothSidesLostEndsAtTheFirstExpiry) {
  const std::string id = Answered();
  Disconnect(kAlice);
  now_ += seconds(4);
  Disconnect(kBob2);
  Advance(seconds(6));
  EXPECT_TRUE(emitter_.all.empty());  // nobody left to tell
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended[0].ended_by, "alice-id");
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(60));  // bob's grace was cancelled
}

TEST_F(CallManagerTest, PeerHangsUpDuringTheGrace) {
  const std::string id = Answered();
  Disconnect(kBob2);
  EXPECT_EQ(WithCall("endCall", kAlice, id)["ok"], true);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callEndedConfirm"}));
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kCompleted);
  Connect(12, "bob-id");
  ExpectError(WithCall("rejoinCall", 12, id), 12, kErrCallAlreadyProcessed, id);
}

// ---- Connection-state recovery ----------------------------------------------------

TEST_F(CallManagerTest, ALostSocketResumedTakesItsSideBack) {
  const std::string id = Answered();
  Disconnect(kBob2);
  EXPECT_TRUE(m().FindCall(id)->callee_in_grace);
  EXPECT_EQ(Send(kAlice, "sendOffer", Message(id, "offer", kOffer))["ok"], true);  // held
  emitter_.Clear();
  ResumeLost(kBob2, "bob-id");  // the same number comes back
  EXPECT_FALSE(m().FindCall(id)->callee_in_grace);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"11:receiveOffer"}));
  // The peer hears of it with the resumed side's first event, once.
  EXPECT_EQ(WithCall("rejoinCall", kBob2, id)["ok"], true);
  EXPECT_EQ(emitter_.To(kAlice, "peerReconnected").size(), 1u);
  EXPECT_EQ(Send(kBob2, "sendAnswer", Message(id, "answer", kAnswer))["ok"], true);
  EXPECT_EQ(emitter_.To(kAlice, "peerReconnected").size(), 1u);
  Advance(seconds(10));  // no grace left to run out
  EXPECT_EQ(m().call_count(), 1u);
}

TEST_F(CallManagerTest, AReplacedLiveSocketKeepsItsSideAndThePeerIsTold) {
  const std::string id = Answered();
  // The client came back on a new connection before its old one was seen
  // to fail: the number never left.
  ResumeReplaced(kAlice);
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_EQ(Send(kAlice, "sendIceCandidate", Message(id, "candidate", kCandidate))["ok"], true);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"11:peerReconnected", "11:receiveIceCandidate"}));
  // Another device of the same user is still no part of the call.
  Connect(kAlice2, "alice-id");
  ExpectError(Send(kAlice2, "sendOffer", Message(id, "offer", kOffer)), kAlice2, kErrNotAuthorized,
              id);
}

TEST_F(CallManagerTest, AResumedSocketHearsOfTheEndItMissed) {
  const std::string id = Answered();
  Disconnect(kBob2);
  now_ += seconds(2);
  EXPECT_EQ(WithCall("endCall", kAlice, id)["ok"], true);
  emitter_.Clear();
  ResumeLost(kBob2, "bob-id");
  ASSERT_EQ(emitter_.To(kBob2, "callEnded").size(), 1u);
  EXPECT_EQ(emitter_.To(kBob2, "callEnded")[0].dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"hangup"})");
  // A socket that took no part hears nothing; one that did, nothing once the
  // grace has passed since the end.
  emitter_.Clear();
  ResumeReplaced(kBob);
  now_ += seconds(11);
  ResumeReplaced(kAlice);
  EXPECT_TRUE(emitter_.all.empty());
  // Forgotten with the call.
  Advance(seconds(60));
  EXPECT_EQ(m().remembered_ended_calls(), 0u);
  ResumeReplaced(kBob2);
  EXPECT_TRUE(emitter_.all.empty());
}

TEST_F(CallManagerTest, ASocketBackFromAGoneNodeHearsOfEveryEndSinceItLeft) {
  // A cluster node the coordinator could not reach for a while: its socket
  // is lost, the call's grace runs out, and the node comes back much later.
  const std::string id = Answered();
  const base::MonoTime lost_at = now_;
  Disconnect(kBob2);
  Advance(seconds(10));  // the grace
  ASSERT_EQ(recorder_.ended.size(), 1u);
  EXPECT_EQ(recorder_.ended.at(0).reason, kReasonConnectionLost);
  now_ += seconds(30);
  emitter_.Clear();
  // As a resume, the grace has passed since the end: nothing to tell.
  Connect(kBob2, "bob-id");
  m().OnSocketResumed(now_, kBob2, /*was_connected=*/false);
  EXPECT_TRUE(emitter_.To(kBob2, "callEnded").empty());
  Disconnect(kBob2);
  // Back from the node that was away since lost_at: told.
  Connect(kBob2, "bob-id");
  m().OnSocketResumed(now_, kBob2, /*was_connected=*/false, lost_at);
  ASSERT_EQ(emitter_.To(kBob2, "callEnded").size(), 1u);
  EXPECT_EQ(emitter_.To(kBob2, "callEnded")[0].dump(),
            R"({"callId":")" + id + R"(","endedBy":"bob-id","reason":"connection_lost"})");
}

TEST_F(CallManagerTest, ALiveSocketReplacedSoonAfterTheEndHearsItAgain) {
  const std::string id = Answered();
  EXPECT_EQ(WithCall("endCall", kBob2, id)["ok"], true);
  emitter_.Clear();
  // Alice's old connection may have swallowed the callEnded.
  now_ += seconds(3);
  ResumeReplaced(kAlice);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callEnded"}));
}

TEST_F(CallManagerTest, ARingingCallerResumedHearsOfItsCancel) {
  const std::string id = Ring();
  Disconnect(kAlice);  // cancels
  EXPECT_EQ(recorder_.ended.at(0).status, CallStatus::kCancelled);
  emitter_.Clear();
  ResumeLost(kAlice, "alice-id");
  ASSERT_EQ(emitter_.To(kAlice, "callEnded").size(), 1u);
  EXPECT_EQ(emitter_.To(kAlice, "callEnded")[0].dump(),
            R"({"callId":"call-1","endedBy":"alice-id","reason":"cancelled"})");
}

TEST_F(CallManagerTest, ACalleeDeviceResumedAfterAnotherAnsweredIsTold) {
  const std::string id = Ring();
  Disconnect(kBob);
  EXPECT_EQ(WithCall("acceptCall", kBob2, id)["ok"], true);
  emitter_.Clear();
  ResumeLost(kBob, "bob-id");
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"10:callAnsweredElsewhere"}));
}

TEST_F(CallManagerTest, ACalleeDeviceReplacedWhileItRingsHearsTheRingAgain) {
  // Its old connection died unnoticed and swallowed incomingCall: the app
  // has no call id to ask about, so the ring is told again.
  const std::string id = Ring();
  emitter_.Clear();
  ResumeReplaced(kBob);
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"10:incomingCall"}));
  EXPECT_EQ(emitter_.One(kBob, "incomingCall").value("callId", ""), id);
  // The caller's own device hears nothing new.
  emitter_.Clear();
  ResumeReplaced(kAlice);
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_EQ(WithCall("acceptCall", kBob, id)["ok"], true);
}

TEST_F(CallManagerTest, ACalleeDeviceConnectingAfterAnotherAnsweredIsTold) {
  // A phone without connection-state recovery (Swift, Java) was away while
  // another device answered: it comes back as a new socket.
  const std::string id = Ring();
  Disconnect(kBob);
  EXPECT_EQ(WithCall("acceptCall", kBob2, id)["ok"], true);
  emitter_.Clear();
  Connect(12, "bob-id");
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"12:callAnsweredElsewhere"}));
  // The caller's other devices never rang.
  emitter_.Clear();
  Connect(kAlice2, "alice-id");
  EXPECT_TRUE(emitter_.all.empty());
  // While the answering device waits out its grace, a new socket may be
  // that device come back (it rejoins): nothing is said.
  Disconnect(kBob2);
  emitter_.Clear();
  Connect(13, "bob-id");
  EXPECT_TRUE(emitter_.all.empty());
  EXPECT_EQ(WithCall("rejoinCall", 13, id)["ok"], true);
}

TEST_F(CallManagerTest, BothSidesAwayThePeerReconnectedWaitsForTheOther) {
  const std::string id = Answered();
  Disconnect(kAlice);
  Disconnect(kBob2);
  ResumeLost(kAlice, "alice-id");
  EXPECT_EQ(WithCall("rejoinCall", kAlice, id)["ok"], true);  // announces; bob is away
  emitter_.Clear();
  ResumeLost(kBob2, "bob-id");
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"11:peerReconnected"}));
}

// ---- Glare ----------------------------------------------------------------------

TEST_F(CallManagerTest, GlareEndsAsOneCall) {
  ASSERT_EQ(Initiate(kAlice, "bob-id", "video")["ok"], true);
  emitter_.Clear();
  // Bob calls alice while alice's call still rings on his devices.
  Json ack = Initiate(kBob, "alice-id", "audio");
  EXPECT_EQ(ack.dump(), R"({"ok":true,"callId":"call-1","callerId":"alice-id",)"
                        R"("callType":"video","glare":true})");
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"10:callAcceptedConfirm", "1:callAccepted",
                                      "11:callAnsweredElsewhere"}));
  EXPECT_EQ(recorder_.created.size(), 1u);
  EXPECT_EQ(recorder_.answered.size(), 1u);
  EXPECT_EQ(m().call_count(), 1u);
  EXPECT_EQ(m().FindCall("call-1")->callee_socket, kBob);
  EXPECT_EQ(Send(kAlice, "sendOffer", Message("call-1", "offer", kOffer))["ok"], true);
  EXPECT_EQ(emitter_.To(kBob, "receiveOffer").size(), 1u);
}

TEST_F(CallManagerTest, GlareFromAnotherDeviceOfTheCallee) {
  Ring();
  Json ack = Initiate(kBob2, "alice-id");
  EXPECT_EQ(ack.value("glare", false), true);
  EXPECT_EQ(emitter_.Summary(),
            (std::vector<std::string>{"11:callAcceptedConfirm", "1:callAccepted",
                                      "10:callAnsweredElsewhere"}));
  EXPECT_EQ(m().FindCall("call-1")->callee_socket, kBob2);
}

TEST_F(CallManagerTest, GlareIsRefusedWhileDraining) {
  Ring();
  m().SetDraining(true);
  ExpectError(Initiate(kBob, "alice-id"), kBob, kErrShuttingDown, std::nullopt);
  EXPECT_EQ(m().FindCall("call-1")->state, CallState::kRinging);
}

TEST_F(CallManagerTest, NoGlareWithAThirdParty) {
  Ring();  // alice -> bob
  ExpectError(Initiate(kCarol, "alice-id"), kCarol, kErrUserBusy, "call-2");
  // Bob calling carol is not glare either.
  ExpectError(Initiate(kBob, "carol-id"), kBob, kErrAlreadyInCall, "call-1");
  // Alice calling bob again is not glare: she is the caller.
  Connect(kAlice2, "alice-id");
  ExpectError(Initiate(kAlice2, "bob-id"), kAlice2, kErrAlreadyInCall, "call-1");
}

// ---- EndAll ---------------------------------------------------------------------

TEST_F(CallManagerTest, EndAllEndsEveryCallCleanly) {
  const std::string active = Answered();  // call-1: alice <-> bob (11)
  Connect(30, "dave-id");
  Initiate(kCarol, "dave-id", "audio");  // call-2 rings
  ClearRecordings();

  m().EndAll(now_);
  EXPECT_FALSE(m().draining());
  EXPECT_EQ(emitter_.Summary(), (std::vector<std::string>{"1:callEnded", "11:callEnded",
                                                          "20:callEnded", "30:callEnded"}));
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","endedBy":null,"reason":"server_shutdown"})");
  ASSERT_EQ(recorder_.ended.size(), 2u);
  EXPECT_EQ(recorder_.ended[0].status, CallStatus::kCompleted);
  EXPECT_EQ(recorder_.ended[0].reason, "server_shutdown");
  EXPECT_EQ(recorder_.ended[1].status, CallStatus::kMissed);
  EXPECT_EQ(recorder_.ended[1].reason, "server_shutdown");
  EXPECT_EQ(m().call_count(), 0u);
  EXPECT_EQ(m().NextDeadline(), now_ + seconds(60));
  EXPECT_EQ(metrics_.ended, (std::vector<std::pair<CallType, CallStatus>>{
                                {CallType::kVideo, CallStatus::kCompleted},
                                {CallType::kAudio, CallStatus::kMissed}}));
}

// A coordinator that steps down ends its calls with connection_lost: they
// failed, as when a participant does not come back, whatever their state.
TEST_F(CallManagerTest, EndAllWithConnectionLostRecordsFailures) {
  Answered();  // call-1: alice <-> bob (11)
  Connect(30, "dave-id");
  Initiate(kCarol, "dave-id", "audio");  // call-2 rings
  ClearRecordings();

  m().EndAll(now_, kReasonConnectionLost);
  EXPECT_EQ(emitter_.all[0].payload.dump(),
            R"({"callId":"call-1","endedBy":null,"reason":"connection_lost"})");
  ASSERT_EQ(recorder_.ended.size(), 2u);
  for (const auto& ended : recorder_.ended) {
    EXPECT_EQ(ended.status, CallStatus::kConnectionLost) << ended.call.id;
    EXPECT_EQ(ended.reason, "connection_lost") << ended.call.id;
    EXPECT_EQ(ended.ended_by, "") << ended.call.id;
  }
  EXPECT_EQ(metrics_.ended, (std::vector<std::pair<CallType, CallStatus>>{
                                {CallType::kVideo, CallStatus::kConnectionLost},
                                {CallType::kAudio, CallStatus::kConnectionLost}}));
  EXPECT_EQ(m().call_count(), 0u);
}

TEST_F(CallManagerTest, ReloadedOptionsApplyToNewCalls) {
  Ring();  // call-1 rings for 30 s
  CallManagerOptions options = m().options();
  options.ring_timeout = seconds(5);
  m().SetOptions(options);
  Initiate(kCarol, "dave-id");  // offline: ends at once
  Connect(30, "dave-id");
  Initiate(kCarol, "dave-id");  // call-3 rings for 5 s
  Advance(seconds(5));
  ASSERT_EQ(recorder_.ended.size(), 2u);
  EXPECT_EQ(recorder_.ended[1].call.id, "call-3");
  EXPECT_EQ(recorder_.ended[1].status, CallStatus::kMissed);
  EXPECT_EQ(m().FindCall("call-1")->state, CallState::kRinging);
}

// ---- Presence and the record sequence ----------------------------------------------

TEST_F(CallManagerTest, PresenceTracksDevices) {
  EXPECT_FALSE(m().OnSocketConnected(now_, kBob, "carol-id"));  // socket taken
  EXPECT_FALSE(m().OnSocketConnected(now_, 50, ""));
  EXPECT_EQ(m().presence().socket_count(), 4u);
  EXPECT_EQ(m().presence().user_count(), 3u);
  std::span<const uint64_t> bob = m().presence().SocketsOf("bob-id");
  EXPECT_EQ(std::vector<uint64_t>(bob.begin(), bob.end()), (std::vector<uint64_t>{kBob, kBob2}));
  EXPECT_EQ(*m().presence().UserOf(kBob2), "bob-id");
  Disconnect(kBob);
  Disconnect(kBob);
  Disconnect(kStranger);
  EXPECT_TRUE(m().presence().IsOnline("bob-id"));
  Disconnect(kBob2);
  EXPECT_FALSE(m().presence().IsOnline("bob-id"));
  EXPECT_EQ(m().presence().UserOf(kBob2), nullptr);
  EXPECT_TRUE(m().presence().SocketsOf("bob-id").empty());
  ExpectError(Initiate(kAlice, "bob-id"), kAlice, kErrUserNotAvailable, "call-1");
}

TEST_F(CallManagerTest, EveryCallIsCreatedAnsweredAndEndedInOrder) {
  WithCall("rejectCall", kBob, Initiate(kAlice, "bob-id").value("callId", ""));
  const std::string b = Initiate(kAlice, "bob-id").value("callId", "");
  WithCall("acceptCall", kBob2, b);
  Send(kAlice, "reportIce", Message(b, "state", "connected"));
  WithCall("endCall", kBob2, b);
  Initiate(kAlice, "bob-id");
  Advance(seconds(30));
  EXPECT_EQ(recorder_.log,
            (std::vector<std::string>{"created:call-1", "ended:call-1", "created:call-2",
                                      "answered:call-2", "ice:call-2", "ended:call-2",
                                      "created:call-3", "ended:call-3"}));
}

}  // namespace
}  // namespace turnkey::signal
