// Recording fakes and a fixture for driving CallManager without sockets:
// every emitted event, record and metric is kept in order, time is a
// MonoTime the test moves by hand.
//
// Cast: alice (socket 1), bob on two devices (sockets 10 and 11), carol
// (socket 20), dave (registered, offline). Call ids are "call-1", "call-2",
// ... in creation order.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "signal/call_manager.h"

namespace turnkey::signal {

struct Emitted {
  uint64_t socket;
  std::string event;
  Json payload;
};

class FakeEmitter final : public CallEmitter {
 public:
  void Emit(uint64_t socket, std::string_view event, Json payload) override {
    all.push_back({socket, std::string(event), std::move(payload)});
  }
  // "socket:event" for each emitted event since the last Clear(), in order.
  std::vector<std::string> Summary() const {
    std::vector<std::string> out;
    for (const Emitted& e : all) {
      out.push_back(std::to_string(e.socket) + ":" + e.event);
    }
    return out;
  }
  // The payloads `socket` got as `event`.
  std::vector<Json> To(uint64_t socket, std::string_view event) const {
    std::vector<Json> out;
    for (const Emitted& e : all) {
      if (e.socket == socket && e.event == event) {
        out.push_back(e.payload);
      }
    }
    return out;
  }
  // The one payload `socket` got as `event`; fails the test otherwise.
  Json One(uint64_t socket, std::string_view event) const {
    std::vector<Json> got = To(socket, event);
    EXPECT_EQ(got.size(), 1u) << socket << " " << event;
    return got.empty() ? Json() : got.front();
  }
  void Clear() { all.clear(); }

  std::vector<Emitted> all;
};

class FakeRecorder final : public CallRecorder {
 public:
  struct Answered {
    CallInfo call;
    base::MonoTime at;
  };
  void CallCreated(const CallInfo& call) override {
    created.push_back(call);
    log.push_back("created:" + call.id);
  }
  void CallAnswered(const CallInfo& call, base::MonoTime at) override {
    answered.push_back({call, at});
    log.push_back("answered:" + call.id);
  }
  void CallEnded(const CallEndRecord& end) override {
    ended.push_back(end);
    log.push_back("ended:" + end.call.id);
  }
  void IceReported(const IceReportRecord& report) override {
    ice.push_back(report);
    log.push_back("ice:" + report.call_id);
  }

  std::vector<CallInfo> created;
  std::vector<Answered> answered;
  std::vector<CallEndRecord> ended;
  std::vector<IceReportRecord> ice;
  std::vector<std::string> log;
};

class FakeMetrics final : public CallMetricsSink {
 public:
  struct Ice {
    metrics::IceResult result;
    metrics::CandidateType local;
    metrics::CandidateType remote;
    friend bool operator==(const Ice&, const Ice&) = default;
  };
  void CallEnded(metrics::CallType type, metrics::CallStatus status) override {
    ended.emplace_back(type, status);
  }
  void CallSetup(base::Duration setup, base::Duration since_answer) override {
    setups.push_back(setup);
    since_answers.push_back(since_answer);
  }
  void IceReport(metrics::IceResult result, metrics::CandidateType local,
                 metrics::CandidateType remote, std::optional<int64_t> rtt_ms) override {
    ice.push_back({result, local, remote});
    rtts.push_back(rtt_ms);
  }
  void IceFailure(metrics::IceFailureCause cause) override { causes.push_back(cause); }

  std::vector<std::pair<metrics::CallType, metrics::CallStatus>> ended;
  std::vector<base::Duration> setups;
  std::vector<base::Duration> since_answers;
  std::vector<Ice> ice;
  std::vector<std::optional<int64_t>> rtts;
  std::vector<metrics::IceFailureCause> causes;
};

class FakeDirectory final : public UserDirectory {
 public:
  void Add(UserInfo user) { users.push_back(std::move(user)); }
  std::optional<UserInfo> FindById(std::string_view id) override {
    ++lookups;
    for (const UserInfo& u : users) {
      if (u.id == id) {
        return u;
      }
    }
    return std::nullopt;
  }
  std::optional<UserInfo> FindByHandle(std::string_view handle) override {
    ++lookups;
    for (const UserInfo& u : users) {
      if (Lower(u.handle) == Lower(handle)) {
        return u;
      }
    }
    return std::nullopt;
  }
  static std::string Lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  }

  std::vector<UserInfo> users;
  int lookups = 0;
};

class CallManagerTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kAlice = 1;
  static constexpr uint64_t kAlice2 = 2;
  static constexpr uint64_t kBob = 10;
  static constexpr uint64_t kBob2 = 11;
  static constexpr uint64_t kCarol = 20;
  static constexpr uint64_t kStranger = 99;  // never registered

  CallManagerTest() { Reset({}); }

  // Rebuilds the manager with `options` and connects alice, bob (twice) and
  // carol; clears every recording.
  void Reset(CallManagerOptions options) {
    manager_.reset();
    next_id_ = 0;
    manager_.emplace(options, emitter_, recorder_, metrics_,
                     [this] { return "call-" + std::to_string(++next_id_); });
    directory_.users.clear();
    directory_.Add({"alice-id", "Alice", "Alice A."});
    directory_.Add({"bob-id", "bob", "Bob B."});
    directory_.Add({"carol-id", "carol", ""});
    directory_.Add({"dave-id", "dave", "Dave"});
    Connect(kAlice, "alice-id");
    Connect(kBob, "bob-id");
    Connect(kBob2, "bob-id");
    Connect(kCarol, "carol-id");
    ClearRecordings();
  }
  void ClearRecordings() {
    emitter_.Clear();
    recorder_ = FakeRecorder();
    metrics_.ended.clear();
    metrics_.setups.clear();
    metrics_.ice.clear();
    metrics_.since_answers.clear();
    metrics_.rtts.clear();
  }

  CallManager& m() { return *manager_; }
  void Connect(uint64_t socket, std::string_view user) {
    ASSERT_TRUE(m().OnSocketConnected(now_, socket, user));
  }
  void Disconnect(uint64_t socket) { m().OnSocketDisconnected(now_, socket); }
  // Connection-state recovery: `socket` of `user`, seen gone, comes back
  // (registered again, then resumed); or it is replaced while it seemed
  // alive.
  void ResumeLost(uint64_t socket, std::string_view user) {
    Connect(socket, user);
    m().OnSocketResumed(now_, socket, /*was_connected=*/false);
  }
  void ResumeReplaced(uint64_t socket) {
    m().OnSocketResumed(now_, socket, /*was_connected=*/true);
  }
  // Moves time on and runs whatever fell due.
  void Advance(base::Duration d) {
    now_ += d;
    m().OnTimer(now_);
  }

  // Sends `event` from `socket`; returns the ack.
  Json Send(uint64_t socket, std::string_view event, Json payload) {
    std::optional<Json> ack = m().OnEvent(now_, socket, event, payload, directory_);
    EXPECT_TRUE(ack.has_value()) << event;
    return ack.value_or(Json());
  }
  Json Initiate(uint64_t socket, std::string_view receiver_id, std::string_view type = "video") {
    return Send(socket, "initiateCall", {{"receiverId", receiver_id}, {"callType", type}});
  }
  Json WithCall(std::string_view event, uint64_t socket, std::string_view call_id) {
    return Send(socket, event, {{"callId", call_id}});
  }
  // alice (socket 1) rings bob; recordings cleared afterwards.
  std::string Ring() {
    Json ack = Initiate(kAlice, "bob-id");
    EXPECT_EQ(ack.value("ok", false), true) << ack.dump();
    ClearRecordings();
    return ack.value("callId", "");
  }
  // alice rings bob and bob accepts on socket 11; recordings cleared.
  std::string Answered() {
    std::string id = Ring();
    Json ack = WithCall("acceptCall", kBob2, id);
    EXPECT_EQ(ack.value("ok", false), true) << ack.dump();
    ClearRecordings();
    return id;
  }
  // Expects a failed ack with `error` and the matching callError.
  void ExpectError(const Json& ack, uint64_t socket, std::string_view error,
                   std::optional<std::string_view> call_id) {
    EXPECT_EQ(ack.value("ok", true), false) << ack.dump();
    EXPECT_EQ(ack.value("error", ""), error) << ack.dump();
    Json told = Json::object();
    told["error"] = error;
    told["callId"] = call_id ? Json(*call_id) : Json(nullptr);
    std::vector<Json> errors = emitter_.To(socket, "callError");
    ASSERT_FALSE(errors.empty()) << "no callError for " << error;
    EXPECT_EQ(errors.back(), told);
    if (call_id) {
      EXPECT_EQ(ack.value("callId", ""), *call_id);
    } else {
      EXPECT_FALSE(ack.contains("callId"));
    }
  }

  base::MonoTime now_ = base::MonoTime{} + std::chrono::hours(1);
  FakeEmitter emitter_;
  FakeRecorder recorder_;
  FakeMetrics metrics_;
  FakeDirectory directory_;
  int next_id_ = 0;
  std::optional<CallManager> manager_;
};

// Shorthand for building JSON payloads.
inline Json Obj(std::initializer_list<std::pair<const std::string, Json>> items) {
  Json out = Json::object();
  for (const auto& [k, v] : items) {
    out[k] = v;
  }
  return out;
}

}  // namespace turnkey::signal
