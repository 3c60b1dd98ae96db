// ClusterLink against the private redis-server of the ctest fixture `redis`:
// several links on one loop play the nodes of a cluster (real time, short
// leases, bounded waits).
#include "signal/cluster_link.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "tests/net/net_test_util.h"

namespace turnkey::signal {
namespace {

using namespace std::chrono_literals;
using net::testing::RunUntil;
using Json = ClusterLink::Json;

// What one node's handlers saw.
struct Node {
  std::unique_ptr<ClusterLink> link;
  std::vector<std::pair<std::string, Json>> messages;
  std::vector<bool> roles;
  std::vector<std::string> coordinators;
  std::vector<std::string> gone;
};

class ClusterLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = net::testing::FindRedisTestServer();
    ASSERT_TRUE(server) << server.error();
    redis_.host = server->host;
    redis_.port = server->port;
    redis_.password = server->password;
    redis_.reconnect_min = 20ms;
    redis_.reconnect_max = 200ms;
    loop_ = net::testing::MakeLoop();
    ASSERT_TRUE(loop_);
    // A cluster of its own per test: nothing left over from another.
    name_ =
        std::string("tk-test-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  void TearDown() override { nodes_.clear(); }

  Node& Start(const std::string& id, const std::string& settings_check = "") {
    auto node = std::make_unique<Node>();
    Node* raw = node.get();
    ClusterLink::Handlers handlers;
    handlers.message = [raw](const std::string& from, Json message) {
      raw->messages.emplace_back(from, std::move(message));
    };
    handlers.role = [raw](bool coordinator) { raw->roles.push_back(coordinator); };
    handlers.coordinator = [raw](const std::string& coordinator) {
      raw->coordinators.push_back(coordinator);
    };
    handlers.node_gone = [raw](const std::string& gone) { raw->gone.push_back(gone); };
    ClusterLinkOptions options{.name = name_,
                               .node_timeout = 1000ms,
                               .redis = redis_,
                               .node_id = id,
                               .settings_check = settings_check};
    node->link = ClusterLink::Create(*loop_, base::SystemClock::Instance(), std::move(options),
                                     std::move(handlers));
    nodes_[id] = std::move(node);
    return *raw;
  }

  static Json Message(std::string_view type) {
    Json message = Json::object();
    message["t"] = type;
    return message;
  }

  net::RedisOptions redis_;
  std::unique_ptr<net::EventLoop> loop_;
  std::string name_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(ClusterLinkTest, TheFirstNodeCoordinatesAndTheOthersFollowIt) {
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  EXPECT_EQ(a.roles, std::vector<bool>{true});
  EXPECT_TRUE(RunUntil(*loop_, [&] { return a.link->ready(); }));

  Node& b = Start("b");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b.link->coordinator() == "a"; }));
  EXPECT_FALSE(b.link->is_coordinator());
  EXPECT_TRUE(b.roles.empty());
  ASSERT_FALSE(b.coordinators.empty());
  EXPECT_EQ(b.coordinators.back(), "a");
  EXPECT_TRUE(RunUntil(*loop_, [&] { return b.link->ready(); }));
  // The coordinator counts the nodes it hears from (their heartbeats).
  EXPECT_TRUE(RunUntil(*loop_, [&] { return a.link->nodes() == 2; }));
  EXPECT_EQ(b.link->nodes(), 0u);
}

// /readyz says why a node is not ready: a refused password is not "no
// connection" (the connection is up; the login is refused).
TEST_F(ClusterLinkTest, NotReadyNamesARefusedPassword) {
  redis_.password = "not-the-password";
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] {
    return a.link->NotReadyReason().find("AUTH refused") != std::string::npos;
  })) << a.link->NotReadyReason();
  EXPECT_EQ(a.link->NotReadyReason().find("not-the-password"), std::string::npos);
  EXPECT_FALSE(a.link->ready());
}

// Nodes with different access-token keys refuse each other's tokens: each
// side names the other (in the log), and the cluster goes on.
TEST_F(ClusterLinkTest, ANodeWithOtherSettingsIsNamedOnBothSides) {
  Node& a = Start("a", "digest-1");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  Node& b = Start("b", "digest-1");
  Node& c = Start("c", "digest-2");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->nodes() == 3; }));
  EXPECT_TRUE(RunUntil(*loop_, [&] {
    return a.link->nodes_with_other_settings() == std::set<std::string>{"c"} &&
           c.link->nodes_with_other_settings() == std::set<std::string>{"a"};
  }));
  EXPECT_TRUE(b.link->nodes_with_other_settings().empty());
  EXPECT_TRUE(c.link->ready());
}

TEST_F(ClusterLinkTest, MessagesReachTheirNodeWithTheSender) {
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  Node& b = Start("b");
  Node& c = Start("c");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b.link->ready() && c.link->ready(); }));

  Json request = Message("ev");
  request["p"] = Json::object({{"callId", "x"}, {"offer", "v=0\r\n"}});
  ASSERT_TRUE(b.link->SendToCoordinator(request));
  ASSERT_TRUE(a.link->SendTo("b", Message("ack")));
  ASSERT_TRUE(c.link->Broadcast(Message("signout")));
  ASSERT_TRUE(RunUntil(
      *loop_,
      [&] { return a.messages.size() == 2 && b.messages.size() == 2 && c.messages.empty(); }))
      << a.messages.size() << " " << b.messages.size() << " " << c.messages.size();
  // Sent to the coordinator, in order per sender.
  EXPECT_EQ(a.messages[0].first, "b");
  EXPECT_EQ(a.messages[0].second["t"], "ev");
  EXPECT_EQ(a.messages[0].second["n"], "b");
  EXPECT_EQ(a.messages[0].second["p"]["offer"], "v=0\r\n");
  EXPECT_EQ(a.messages[1].first, "c");
  EXPECT_EQ(a.messages[1].second["t"], "signout");
  // The broadcast reaches every other node, never its sender.
  EXPECT_EQ(b.messages[0].second["t"], "ack");
  EXPECT_EQ(b.messages[1].first, "c");
  // The coordinator has no coordinator to send to.
  EXPECT_FALSE(a.link->SendToCoordinator(Message("ev")));
}

TEST_F(ClusterLinkTest, AStoppedCoordinatorHandsOverAtOnce) {
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  Node& b = Start("b");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b.link->coordinator() == "a"; }));

  a.link->Stop();
  // Released, so taken at b's next tick (a fifth of the lease), well
  // before the lease would have run out.
  ASSERT_TRUE(RunUntil(
      *loop_, [&] { return b.link->is_coordinator(); }, 900ms));
  EXPECT_EQ(b.roles, std::vector<bool>{true});
}

TEST_F(ClusterLinkTest, ADeadCoordinatorsLeaseRunsOutAndAnotherNodeTakesOver) {
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  Node& b = Start("b");
  Node& c = Start("c");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b.link->ready() && c.link->ready(); }));

  nodes_.erase("a");  // gone without a word, like a killed process
  ASSERT_TRUE(RunUntil(
      *loop_, [&] { return b.link->is_coordinator() || c.link->is_coordinator(); }, 5s));
  Node& next = b.link->is_coordinator() ? b : c;
  Node& other = b.link->is_coordinator() ? c : b;
  // The other node hears of it ("coord"), and only one coordinates.
  ASSERT_TRUE(RunUntil(*loop_, [&] { return other.link->coordinator() == next.link->node_id(); }));
  EXPECT_FALSE(other.link->is_coordinator());
  EXPECT_TRUE(other.roles.empty());
}

// A Redis restart loses the lease (it is not persisted): the coordinator,
// still heard from, takes it back; the others do not claim it.
TEST_F(ClusterLinkTest, AFollowerLeavesAFreedLeaseToTheCoordinatorItHears) {
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  Node& b = Start("b");
  Node& c = Start("c");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return b.link->ready() && c.link->ready(); }));
  auto admin = net::RedisConnection::Create(*loop_, redis_, "admin");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return admin->connected(); }));

  for (int i = 0; i < 5; ++i) {
    bool deleted = false;
    admin->Command({"DEL", name_ + ":coordinator"},
                   [&](base::Result<net::RedisReply> /*reply*/) { deleted = true; });
    ASSERT_TRUE(RunUntil(*loop_, [&] { return deleted; }));
    net::testing::RunUntil(
        *loop_, [] { return false; }, 300ms);  // a tick or more each
  }
  EXPECT_TRUE(a.link->is_coordinator());
  EXPECT_EQ(a.roles, std::vector<bool>{true});
  EXPECT_TRUE(b.roles.empty());
  EXPECT_TRUE(c.roles.empty());
  EXPECT_EQ(b.link->coordinator(), "a");
}

TEST_F(ClusterLinkTest, TheCoordinatorReportsANodeItNoLongerHears) {
  Node& a = Start("a");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->is_coordinator(); }));
  Node& b = Start("b");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return a.link->nodes() == 2; }));
  (void)b;

  nodes_.erase("b");
  ASSERT_TRUE(RunUntil(
      *loop_, [&] { return !a.gone.empty(); }, 3s));
  EXPECT_EQ(a.gone, std::vector<std::string>{"b"});
  EXPECT_EQ(a.link->nodes(), 1u);
}

}  // namespace
}  // namespace turnkey::signal
