// The call event payload parsers, JsonObject, TokenBucket, and
// SignalMetricsCallSink against a real metrics registry.
#include "signal/call_payload.h"

#include <gtest/gtest.h>

#include <string>

#include "metrics/registry.h"
#include "metrics/turnkey_metrics.h"
#include "signal/call.h"
#include "signal/call_metrics_sink.h"
#include "signal/socketio_packet.h"
#include "signal/token_bucket.h"

namespace turnkey::signal {
namespace {

using metrics::CallType;
using metrics::CandidateType;
using metrics::IceResult;

TEST(JsonObjectTest, AnEmptyObjectWithRoomForItsMembers) {
  Json object = JsonObject(3);
  EXPECT_TRUE(object.is_object());
  EXPECT_TRUE(object.empty());
  const auto& members = object.get_ref<const Json::object_t&>();
  const auto* first = members.data();
  EXPECT_GE(members.capacity(), 3u);
  object["callId"] = "0191f2c3a4b5c6d7e8f90a1b2c3d4e5f";
  object["receiverId"] = "u2";
  object["callType"] = "audio";
  EXPECT_EQ(members.data(), first) << "filling it moved its members";
  EXPECT_EQ(
      DumpJson(object),
      R"({"callId":"0191f2c3a4b5c6d7e8f90a1b2c3d4e5f","receiverId":"u2","callType":"audio"})");
}

TEST(ParseInitiateCallTest, Accepts) {
  EXPECT_EQ(
      ParseInitiateCall(Json::parse(R"({"receiverId":"u1","callType":"audio"})")),
      (InitiateRequest{.receiver_id = "u1", .receiver_handle = "", .type = CallType::kAudio}));
  EXPECT_EQ(
      ParseInitiateCall(Json::parse(R"({"receiverHandle":"Bob","callType":"video"})")),
      (InitiateRequest{.receiver_id = "", .receiver_handle = "Bob", .type = CallType::kVideo}));
  // An empty or non-string receiverId falls back to the handle.
  EXPECT_EQ(
      ParseInitiateCall(Json::parse(R"({"receiverId":"","receiverHandle":"h","callType":"video"})"))
          ->receiver_handle,
      "h");
  EXPECT_EQ(ParseInitiateCall(
                Json::parse(R"({"receiverId":null,"receiverHandle":"h","callType":"video"})"))
                ->receiver_handle,
            "h");
  // A leading '@' is not part of the handle (as in user search).
  EXPECT_EQ(ParseInitiateCall(Json::parse(R"({"receiverHandle":"@bob","callType":"audio"})"))
                ->receiver_handle,
            "bob");
}

TEST(ParseInitiateCallTest, Refuses) {
  EXPECT_EQ(ParseInitiateCall(Json::parse(R"({"receiverHandle":"@","callType":"audio"})")).error(),
            kErrReceiverIdRequired);
  EXPECT_EQ(ParseInitiateCall(Json()).error(), kErrReceiverIdRequired);
  EXPECT_EQ(ParseInitiateCall(Json::array()).error(), kErrReceiverIdRequired);
  EXPECT_EQ(ParseInitiateCall(Json::parse(R"({"receiverId":["u1"]})")).error(),
            kErrReceiverIdRequired);
  EXPECT_EQ(ParseInitiateCall(Json::parse(R"({"receiverId":"u1","callType":" audio"})")).error(),
            kErrInvalidCallType);
  EXPECT_EQ(ParseInitiateCall(Json::parse(R"({"receiverId":"u1","callType":null})")).error(),
            kErrInvalidCallType);
}

TEST(PayloadCallIdTest, NonEmptyStringsOnly) {
  EXPECT_EQ(PayloadCallId(Json::parse(R"({"callId":"abc"})")), "abc");
  EXPECT_EQ(PayloadCallId(Json::parse(R"({"callId":""})")), std::nullopt);
  EXPECT_EQ(PayloadCallId(Json::parse(R"({"callId":12})")), std::nullopt);
  EXPECT_EQ(PayloadCallId(Json::parse(R"({"callid":"abc"})")), std::nullopt);
  EXPECT_EQ(PayloadCallId(Json::parse(R"("abc")")), std::nullopt);
  EXPECT_EQ(PayloadCallId(Json()), std::nullopt);
}

TEST(ParseIceReportTest, AFailedReportSaysWhyFromWhatWasGathered) {
  using metrics::IceFailureCause;
  auto cause = [](std::string_view extra) {
    return ParseIceReport(
               Json::parse(std::string(R"({"state":"failed")") + std::string(extra) + "}"))
        ->cause;
  };
  EXPECT_EQ(cause(""), IceFailureCause::kUnknown);
  EXPECT_EQ(cause(R"(,"localCandidates":{"host":1,"relay":2})"), IceFailureCause::kChecksFailed);
  // No relay candidate, no TURN error: offered or not, gathering begun or not.
  const std::string none = R"(,"localCandidates":{"host":1,"relay":0},"iceErrors":[])";
  EXPECT_EQ(cause(none + R"(,"turnUris":0,"iceGatheringState":"complete")"),
            IceFailureCause::kNoRelay);
  EXPECT_EQ(cause(none + R"(,"turnUris":2,"iceGatheringState":"gathering")"),
            IceFailureCause::kTurnUnreachable);
  EXPECT_EQ(cause(none + R"(,"turnUris":2,"iceGatheringState":"new")"), IceFailureCause::kUnknown);
  EXPECT_EQ(cause(none), IceFailureCause::kUnknown);
  // Cut short by the end of the call (the other side's, or a hang-up on "Connecting..."): not
  // gathered yet within a few seconds is not out of reach; after longer it is.
  const std::string cut = none + R"(,"turnUris":2,"iceGatheringState":"gathering")";
  EXPECT_EQ(cause(cut + R"(,"endedBeforeIce":true,"gatheringMs":43)"), IceFailureCause::kUnknown);
  EXPECT_EQ(cause(cut + R"(,"endedBeforeIce":true)"), IceFailureCause::kUnknown);
  EXPECT_EQ(cause(cut + R"(,"endedBeforeIce":true,"gatheringMs":12000)"),
            IceFailureCause::kTurnUnreachable);
  EXPECT_EQ(cause(cut + R"(,"endedBeforeIce":false,"gatheringMs":43)"),
            IceFailureCause::kTurnUnreachable);
  EXPECT_EQ(cause(none + R"(,"turnUris":2,"iceGatheringState":"complete","endedBeforeIce":true,)"
                         R"("gatheringMs":43)"),
            IceFailureCause::kTurnUnreachable);  // gathering was over: nothing was late
  // Relay candidates whose checks had no time: not a failure of the checks.
  EXPECT_EQ(cause(R"(,"localCandidates":{"relay":1},"endedBeforeIce":true,"gatheringMs":143)"),
            IceFailureCause::kUnknown);
  EXPECT_EQ(cause(R"(,"localCandidates":{"relay":1},"endedBeforeIce":true,"gatheringMs":9000)"),
            IceFailureCause::kChecksFailed);
  EXPECT_EQ(cause(R"(,"endedBeforeIce":true,"gatheringMs":43,"iceErrors":[
                   {"url":"turn:t:3478","errorCode":401}])"),
            IceFailureCause::kTurnAuth);  // an answer that came is still the cause
  EXPECT_EQ(cause(R"(,"localCandidates":{"host":1},"iceErrors":[
                   {"url":"stun:stun.example.org:3478","errorCode":701},
                   {"url":"turns:turn.example.org:5349?transport=tcp","errorCode":701}])"),
            IceFailureCause::kTurnUnreachable);
  EXPECT_EQ(cause(R"(,"iceErrors":[{"url":"turn:t:3478?transport=tcp","errorCode":701},
                                   {"url":"turn:t:3478","errorCode":486}])"),
            IceFailureCause::kTurnRefused);
  // A refused credential says the most.
  EXPECT_EQ(cause(R"(,"iceErrors":[{"url":"turn:t:3478?transport=tcp","errorCode":486},
                                   {"url":"turn:t:3478","errorCode":401}])"),
            IceFailureCause::kTurnAuth);
  // A STUN server's error, or junk, says nothing about the relay.
  EXPECT_EQ(cause(R"(,"iceErrors":[{"url":"stun:s:3478","errorCode":701},7,{"url":1},
                                   {"url":"turn:t","errorCode":"401"}],"turnUris":0)"),
            IceFailureCause::kNoRelay);
  EXPECT_EQ(cause(R"(,"localCandidates":[1],"iceErrors":{},"turnUris":"2")"),
            IceFailureCause::kUnknown);
  // Connected reports carry no cause.
  EXPECT_EQ(
      ParseIceReport(Json::parse(R"({"state":"connected","localCandidates":{"relay":0}})"))->cause,
      IceFailureCause::kUnknown);
}

TEST(ParseIceReportTest, Normalises) {
  auto full = ParseIceReport(Json::parse(
      R"({"state":"connected","localCandidateType":"prflx","remoteCandidateType":"relay",
          "relayProtocol":"tls","rttMs":12})"));
  ASSERT_TRUE(full);
  EXPECT_EQ(full->result, IceResult::kConnected);
  EXPECT_EQ(full->local_candidate_type, CandidateType::kPrflx);
  EXPECT_EQ(full->remote_candidate_type, CandidateType::kRelay);
  EXPECT_EQ(full->relay_protocol, "tls");
  EXPECT_EQ(full->rtt_ms, 12);

  auto odd = ParseIceReport(Json::parse(
      R"({"state":"failed","localCandidateType":7,"remoteCandidateType":"RELAY",
          "relayProtocol":"UDP","rttMs":"12"})"));
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->result, IceResult::kFailed);
  EXPECT_EQ(odd->local_candidate_type, CandidateType::kUnknown);
  EXPECT_EQ(odd->relay_protocol, "");
  EXPECT_EQ(odd->rtt_ms, std::nullopt);

  auto rtt = [](std::string_view value) {
    return ParseIceReport(
               Json::parse(std::string(R"({"state":"failed","rttMs":)") + std::string(value) + "}"))
        ->rtt_ms;
  };
  EXPECT_EQ(rtt("0"), 0);
  EXPECT_EQ(rtt("0.4"), 0);
  EXPECT_EQ(rtt("600000"), 600000);
  EXPECT_EQ(rtt("600001"), std::nullopt);
  EXPECT_EQ(rtt("-0.5"), std::nullopt);
  EXPECT_EQ(rtt("1e300"), std::nullopt);
  EXPECT_EQ(rtt("null"), std::nullopt);
  EXPECT_EQ(rtt("true"), std::nullopt);
}

TEST(ParseIceReportTest, NeedsAKnownState) {
  EXPECT_EQ(ParseIceReport(Json::object()).error(), kErrInvalidIceState);
  EXPECT_EQ(ParseIceReport(Json::parse(R"({"state":"disconnected"})")).error(),
            kErrInvalidIceState);
  EXPECT_EQ(ParseIceReport(Json::parse(R"({"state":true})")).error(), kErrInvalidIceState);
  EXPECT_EQ(ParseIceReport(Json::parse(R"([1])")).error(), kErrInvalidIceState);
}

TEST(TokenBucketTest, BurstThenRate) {
  const base::MonoTime t0{};
  TokenBucket bucket(2, t0);
  EXPECT_TRUE(bucket.TryTake(t0, 4, 2));
  EXPECT_TRUE(bucket.TryTake(t0, 4, 2));
  EXPECT_FALSE(bucket.TryTake(t0, 4, 2));
  EXPECT_FALSE(bucket.TryTake(t0 + std::chrono::milliseconds(249), 4, 2));
  EXPECT_TRUE(bucket.TryTake(t0 + std::chrono::milliseconds(250), 4, 2));
  // Refills never pass the burst, and time going backwards refills nothing.
  EXPECT_TRUE(bucket.TryTake(t0 + std::chrono::hours(1), 4, 2));
  EXPECT_TRUE(bucket.TryTake(t0, 4, 2));
  EXPECT_FALSE(bucket.TryTake(t0, 4, 2));
  // A lowered burst takes effect at once.
  TokenBucket big(10, t0);
  EXPECT_TRUE(big.TryTake(t0, 0, 1));
  EXPECT_FALSE(big.TryTake(t0, 0, 1));
}

TEST(SignalMetricsCallSinkTest, CountsIntoTheExportedFamilies) {
  metrics::Registry registry;
  auto signal = metrics::SignalMetrics::Create(registry);
  ASSERT_TRUE(signal);
  SignalMetricsCallSink sink(*signal, registry.AcquireShard());
  sink.CallEnded(CallType::kVideo, metrics::CallStatus::kConnectionLost);
  sink.CallEnded(CallType::kVideo, metrics::CallStatus::kConnectionLost);
  sink.CallSetup(std::chrono::milliseconds(400), std::chrono::milliseconds(150));
  sink.IceReport(IceResult::kConnected, CandidateType::kRelay, CandidateType::kSrflx, 42);
  sink.IceReport(IceResult::kFailed, CandidateType::kUnknown, CandidateType::kUnknown, 7);
  sink.IceReport(IceResult::kConnected, CandidateType::kHost, CandidateType::kHost, std::nullopt);
  const std::string text = registry.Render();
  EXPECT_NE(text.find(R"(turnkey_calls_total{type="video",status="connection_lost"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(turnkey_call_setup_seconds_bucket{le="0.5"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(turnkey_call_setup_seconds_bucket{le="0.25"} 0)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("turnkey_call_setup_seconds_sum 0.4"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(turnkey_ice_connect_seconds_bucket{le="0.1"} 0)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(turnkey_ice_connect_seconds_bucket{le="0.25"} 1)"), std::string::npos)
      << text;
  // Only a connected report's rtt: one observation, 42 ms.
  EXPECT_NE(text.find("turnkey_ice_rtt_seconds_count 1"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(turnkey_ice_rtt_seconds_bucket{le="0.04"} 0)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(turnkey_ice_rtt_seconds_bucket{le="0.06"} 1)"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          R"(turnkey_ice_reports_total{result="connected",local_type="relay",remote_type="srflx"} 1)"),
      std::string::npos)
      << text;
}

}  // namespace
}  // namespace turnkey::signal
