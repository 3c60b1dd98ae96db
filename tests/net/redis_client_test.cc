// RedisConnection and RedisSubscriber against a real redis-server that the
// ctest fixture `redis` starts (tests/redis/redis_server.sh), with a password.
// Without the server these tests fail; they never skip.
#include "net/redis_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using testing::MakeLoop;
using testing::RunUntil;
using Type = RedisReply::Type;

// Runs the loop for `d` (nothing to wait for: checks that something does
// NOT happen).
void RunFor(EventLoop& loop, std::chrono::milliseconds d) {
  RunUntil(
      loop, [] { return false; }, d);
}

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::FindRedisTestServer();
    ASSERT_TRUE(server) << server.error();
    dir_ = server->dir;
    script_ = server->script;
    options_.host = server->host;
    options_.port = server->port;
    options_.password = server->password;
    options_.connect_timeout = 1000ms;
    options_.reconnect_min = 20ms;
    options_.reconnect_max = 200ms;
    loop_ = MakeLoop();
    ASSERT_TRUE(loop_);
    prefix_ = std::string("turnkey-test:") +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ":";
  }

  // Runs `action` (down, up) of redis_server.sh. Blocks the loop meanwhile.
  bool Server(const std::string& action) {
    const std::string cmd = "bash '" + script_ + "' " + action + " '" + dir_ + "'";
    return std::system(cmd.c_str()) == 0;
  }

  std::unique_ptr<RedisConnection> Connect(RedisOptions options, std::string name = "test") {
    auto conn = RedisConnection::Create(*loop_, std::move(options), std::move(name));
    EXPECT_TRUE(RunUntil(*loop_, [&] { return conn->connected(); }));
    return conn;
  }

  // Sends `argv` and runs the loop until the reply.
  base::Result<RedisReply> Call(RedisConnection& conn, std::vector<std::string> argv) {
    std::optional<base::Result<RedisReply>> got;
    conn.Command(std::move(argv), [&](base::Result<RedisReply> r) { got = std::move(r); });
    if (!RunUntil(*loop_, [&] { return got.has_value(); })) {
      return base::Internal("no reply in time");
    }
    return std::move(*got);
  }

  std::string dir_;
  std::string script_;
  RedisOptions options_;
  std::unique_ptr<EventLoop> loop_;
  std::string prefix_;
};

TEST_F(RedisTest, CommandRoundTrip) {
  auto conn = Connect(options_);
  ASSERT_TRUE(conn->connected());
  const std::string key = prefix_ + "k";
  const std::string value("a\0b\xff\r\nc", 7);
  ASSERT_EQ(Call(*conn, {"DEL", key, prefix_ + "n", prefix_ + "l"}).value().type, Type::kInteger);

  auto set = Call(*conn, {"SET", key, value, "NX", "PX", "60000"});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->type, Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  // NX on an existing key: a nil reply.
  EXPECT_EQ(Call(*conn, {"SET", key, "other", "NX", "PX", "60000"}).value().type, Type::kNil);

  auto get = Call(*conn, {"GET", key});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->type, Type::kString);
  EXPECT_EQ(get->str, value);
  EXPECT_EQ(Call(*conn, {"GET", prefix_ + "missing"}).value().type, Type::kNil);

  auto one = Call(*conn, {"INCR", prefix_ + "n"});
  auto two = Call(*conn, {"INCR", prefix_ + "n"});
  ASSERT_TRUE(one && two);
  EXPECT_EQ(one->type, Type::kInteger);
  EXPECT_EQ(one->integer, 1);
  EXPECT_EQ(two->integer, 2);

  // A Redis error is a reply, not a base error.
  auto error = Call(*conn, {"INCR", key});
  ASSERT_TRUE(error) << error.error().message;
  EXPECT_EQ(error->type, Type::kError);
  EXPECT_NE(error->str.find("ERR"), std::string::npos) << error->str;
  auto unknown = Call(*conn, {"NOSUCHCOMMAND", "x"});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->type, Type::kError);

  ASSERT_EQ(Call(*conn, {"RPUSH", prefix_ + "l", "x", std::string(1, '\0'), "z"}).value().integer,
            3);
  auto range = Call(*conn, {"LRANGE", prefix_ + "l", "0", "-1"});
  ASSERT_TRUE(range);
  ASSERT_EQ(range->type, Type::kArray);
  ASSERT_EQ(range->elements.size(), 3u);
  EXPECT_EQ(range->elements[0].str, "x");
  EXPECT_EQ(range->elements[1].str, std::string(1, '\0'));
  EXPECT_EQ(range->elements[2].type, Type::kString);

  // Nested arrays, integers and nil through a Lua script, then EVALSHA.
  const std::string script =
      "return {1, redis.call('GET', KEYS[1]), {ARGV[1], false}, redis.status_reply('fine')}";
  auto eval = Call(*conn, {"EVAL", script, "1", key, "arg"});
  ASSERT_TRUE(eval);
  ASSERT_EQ(eval->type, Type::kArray);
  ASSERT_EQ(eval->elements.size(), 4u);
  EXPECT_EQ(eval->elements[0].type, Type::kInteger);
  EXPECT_EQ(eval->elements[0].integer, 1);
  EXPECT_EQ(eval->elements[1].str, value);
  ASSERT_EQ(eval->elements[2].type, Type::kArray);
  ASSERT_EQ(eval->elements[2].elements.size(), 2u);
  EXPECT_EQ(eval->elements[2].elements[0].str, "arg");
  EXPECT_EQ(eval->elements[2].elements[1].type, Type::kNil);
  EXPECT_EQ(eval->elements[3].type, Type::kStatus);
  EXPECT_EQ(eval->elements[3].str, "fine");
  auto sha = Call(*conn, {"SCRIPT", "LOAD", script});
  ASSERT_TRUE(sha);
  ASSERT_EQ(sha->type, Type::kString);
  auto evalsha = Call(*conn, {"EVALSHA", sha->str, "1", key, "arg"});
  ASSERT_TRUE(evalsha);
  EXPECT_EQ(evalsha->type, Type::kArray);
  auto noscript = Call(*conn, {"EVALSHA", std::string(40, '0'), "0"});
  ASSERT_TRUE(noscript);
  EXPECT_EQ(noscript->type, Type::kError);
  EXPECT_EQ(noscript->str.rfind("NOSCRIPT", 0), 0u) << noscript->str;

  // Pipelined commands answer in order; an empty `done` is allowed.
  std::vector<int64_t> order;
  for (int i = 0; i < 20; ++i) {
    conn->Command({"INCR", prefix_ + "n"},
                  [&](base::Result<RedisReply> r) { order.push_back(r ? r->integer : -1); });
    conn->Command({"PING"});
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return order.size() == 20; }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(order[i], 3 + i);
  }

  // An empty argv is refused, later.
  std::optional<base::Result<RedisReply>> empty;
  conn->Command({}, [&](base::Result<RedisReply> r) { empty = std::move(r); });
  EXPECT_FALSE(empty.has_value());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return empty.has_value(); }));
  ASSERT_FALSE(*empty);
  EXPECT_EQ(empty->error().code, base::ErrorCode::kInvalidArgument);
  Call(*conn, {"DEL", key, prefix_ + "n", prefix_ + "l"});
}

TEST_F(RedisTest, AclUserAuth) {
  RedisOptions options = options_;
  options.username = "default";
  auto conn = Connect(options);
  ASSERT_TRUE(conn->connected());
  auto who = Call(*conn, {"ACL", "WHOAMI"});
  ASSERT_TRUE(who);
  EXPECT_EQ(who->str, "default");
}

TEST_F(RedisTest, WrongPasswordNeverReportsConnected) {
  RedisOptions wrong = options_;
  wrong.password = options_.password + "x";
  RedisOptions no_user = options_;
  no_user.username = "nosuchuser";
  auto bad_password = RedisConnection::Create(*loop_, wrong, "wrong-password");
  auto bad_user = RedisConnection::Create(*loop_, no_user, "no-such-user");
  std::vector<bool> events;
  bad_password->SetStateHandler([&](bool up) { events.push_back(up); });
  bad_user->SetStateHandler([&](bool up) { events.push_back(up); });
  // A correct connection made at the same time comes up: the refused ones
  // had their chance (and several retries at this back-off).
  auto good = Connect(options_);
  RunFor(*loop_, 600ms);
  EXPECT_FALSE(bad_password->connected());
  EXPECT_FALSE(bad_user->connected());
  EXPECT_TRUE(events.empty());
  std::optional<base::Result<RedisReply>> got;
  bad_password->Command({"PING"}, [&](base::Result<RedisReply> r) { got = std::move(r); });
  ASSERT_TRUE(RunUntil(*loop_, [&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, base::ErrorCode::kUnavailable);
}

TEST_F(RedisTest, CommandsBeforeConnectFailLaterWithUnavailable) {
  auto conn = RedisConnection::Create(*loop_, options_, "early");
  EXPECT_FALSE(conn->connected());
  std::vector<base::ErrorCode> codes;
  for (int i = 0; i < 3; ++i) {
    conn->Command({"PING"}, [&](base::Result<RedisReply> r) {
      codes.push_back(r ? base::ErrorCode::kInternal : r.error().code);
    });
  }
  EXPECT_TRUE(codes.empty()) << "done ran inside Command()";
  ASSERT_TRUE(RunUntil(*loop_, [&] { return codes.size() == 3; }));
  for (auto code : codes) {
    EXPECT_EQ(code, base::ErrorCode::kUnavailable);
  }
  // And once connected, the same call works.
  ASSERT_TRUE(RunUntil(*loop_, [&] { return conn->connected(); }));
  auto pong = Call(*conn, {"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->str, "PONG");
}

// A server that accepts TCP (the kernel does, into the backlog) and never
// answers: each attempt ends at connect_timeout and is retried.
TEST_F(RedisTest, SilentServerTimesOut) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  RedisOptions options = options_;
  options.port = ntohs(addr.sin_port);
  options.connect_timeout = 100ms;
  std::vector<bool> events;
  {
    auto conn = RedisConnection::Create(*loop_, options, "silent");
    conn->SetStateHandler([&](bool up) { events.push_back(up); });
    bool called = false;
    conn->Command({"PING"}, [&](base::Result<RedisReply>) { called = true; });
    RunFor(*loop_, 700ms);
    EXPECT_TRUE(called);
    EXPECT_FALSE(conn->connected());
  }
  // Nothing listens here any more: refused attempts.
  ::close(fd);
  {
    auto conn = RedisConnection::Create(*loop_, options, "refused");
    conn->SetStateHandler([&](bool up) { events.push_back(up); });
    RunFor(*loop_, 300ms);
    EXPECT_FALSE(conn->connected());
  }
  EXPECT_TRUE(events.empty());
}

TEST_F(RedisTest, PubSubOnTwoChannels) {
  const std::string a = prefix_ + "a";
  const std::string b = prefix_ + "b";
  std::vector<std::pair<std::string, std::string>> got;
  auto sub = RedisSubscriber::Create(*loop_, options_, "sub", {a, b},
                                     [&](std::string_view channel, std::string_view message) {
                                       got.emplace_back(channel, message);
                                     });
  std::vector<bool> events;
  sub->SetStateHandler([&](bool up) { events.push_back(up); });
  auto conn = Connect(options_);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return sub->subscribed() && !events.empty(); }));
  EXPECT_EQ(events, std::vector<bool>{true});

  const std::string binary("x\0y", 3);
  EXPECT_EQ(Call(*conn, {"PUBLISH", a, "one"}).value().integer, 1);
  EXPECT_EQ(Call(*conn, {"PUBLISH", b, binary}).value().integer, 1);
  EXPECT_EQ(Call(*conn, {"PUBLISH", prefix_ + "other", "no"}).value().integer, 0);
  EXPECT_EQ(Call(*conn, {"PUBLISH", a, "three"}).value().integer, 1);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return got.size() >= 3; }));
  RunFor(*loop_, 50ms);
  std::vector<std::pair<std::string, std::string>> want{{a, "one"}, {b, binary}, {a, "three"}};
  EXPECT_EQ(got, want);
}

TEST_F(RedisTest, ReconnectsAfterServerRestart) {
  const std::string channel = prefix_ + "c";
  std::vector<std::string> messages;
  auto sub = RedisSubscriber::Create(
      *loop_, options_, "sub", {channel},
      [&](std::string_view, std::string_view message) { messages.emplace_back(message); });
  std::vector<bool> sub_events;
  sub->SetStateHandler([&](bool up) { sub_events.push_back(up); });
  auto conn = RedisConnection::Create(*loop_, options_, "conn");
  std::vector<bool> conn_events;
  conn->SetStateHandler([&](bool up) { conn_events.push_back(up); });
  ASSERT_TRUE(RunUntil(*loop_, [&] { return conn_events.size() == 1 && sub_events.size() == 1; }));

  // A command whose reply never comes before the server dies.
  std::optional<base::Result<RedisReply>> blocked;
  conn->Command({"BLPOP", prefix_ + "never", "0"},
                [&](base::Result<RedisReply> r) { blocked = std::move(r); });
  RunFor(*loop_, 50ms);  // let it reach the server
  ASSERT_TRUE(Server("down"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return conn_events.size() == 2 && sub_events.size() == 2; }));
  EXPECT_FALSE(conn->connected());
  EXPECT_FALSE(sub->subscribed());
  ASSERT_TRUE(blocked.has_value());
  ASSERT_FALSE(*blocked);
  EXPECT_EQ(blocked->error().code, base::ErrorCode::kUnavailable);

  // Several attempts fail while the server is down.
  RunFor(*loop_, 300ms);
  ASSERT_TRUE(Server("up"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return conn_events.size() == 3 && sub_events.size() == 3; }));
  EXPECT_EQ(conn_events, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(sub_events, (std::vector<bool>{true, false, true}));
  EXPECT_TRUE(conn->connected());
  EXPECT_TRUE(sub->subscribed());

  auto published = Call(*conn, {"PUBLISH", channel, "after restart"});
  ASSERT_TRUE(published);
  EXPECT_EQ(published->integer, 1);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !messages.empty(); }));
  EXPECT_EQ(messages, std::vector<std::string>{"after restart"});
}

TEST_F(RedisTest, DestroyWithCommandsPending) {
  auto observer = Connect(options_, "observer");
  int called = 0;
  {
    auto conn = RedisConnection::Create(*loop_, options_, "doomed");
    // Queued while not connected: its Unavailable is deferred, then dropped.
    conn->Command({"PING"}, [&](base::Result<RedisReply>) { ++called; });
  }
  {
    auto conn = Connect(options_, "doomed2");
    conn->Command({"BLPOP", prefix_ + "never", "0"}, [&](base::Result<RedisReply>) { ++called; });
    for (int i = 0; i < 10; ++i) {
      conn->Command({"PING"}, [&](base::Result<RedisReply>) { ++called; });
    }
    conn->SetStateHandler([&](bool) { ++called; });
  }
  // (Replies read and waiting for their deferred call when the connection
  // goes: DestroyFromInsideOwnCallbacks.)
  RunFor(*loop_, 200ms);
  EXPECT_EQ(called, 0);
  auto pong = Call(*observer, {"PING"});
  ASSERT_TRUE(pong);
}

TEST_F(RedisTest, DestroyFromInsideOwnCallbacks) {
  // From a reply callback, with the next reply already on its way.
  auto conn = Connect(options_, "self-destruct");
  int first = 0;
  int second = 0;
  conn->Command({"PING"}, [&](base::Result<RedisReply> r) {
    EXPECT_TRUE(r);
    ++first;
    conn.reset();
  });
  conn->Command({"PING"}, [&](base::Result<RedisReply>) { ++second; });
  ASSERT_TRUE(RunUntil(*loop_, [&] { return first == 1; }));
  EXPECT_EQ(conn, nullptr);
  RunFor(*loop_, 100ms);
  EXPECT_EQ(second, 0);

  // From the state handler.
  auto conn2 = RedisConnection::Create(*loop_, options_, "state-destruct");
  int state_calls = 0;
  conn2->SetStateHandler([&](bool) {
    ++state_calls;
    conn2.reset();
  });
  ASSERT_TRUE(RunUntil(*loop_, [&] { return state_calls == 1; }));
  EXPECT_EQ(conn2, nullptr);

  // A subscriber from its message callback, with more messages queued.
  const std::string channel = prefix_ + "c";
  int messages = 0;
  std::unique_ptr<RedisSubscriber> sub;
  sub = RedisSubscriber::Create(*loop_, options_, "sub-destruct", {channel},
                                [&](std::string_view, std::string_view) {
                                  ++messages;
                                  sub.reset();
                                });
  bool subscribed = false;
  sub->SetStateHandler([&](bool up) { subscribed = up; });
  auto publisher = Connect(options_, "publisher");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return subscribed; }));
  int published = 0;
  for (int i = 0; i < 5; ++i) {
    publisher->Command({"PUBLISH", channel, "m"}, [&](base::Result<RedisReply>) { ++published; });
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return published == 5 && messages >= 1; }));
  RunFor(*loop_, 100ms);
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(sub, nullptr);

  // A subscriber from its state handler.
  std::unique_ptr<RedisSubscriber> sub2 = RedisSubscriber::Create(
      *loop_, options_, "sub-state-destruct", {channel}, [](std::string_view, std::string_view) {});
  bool gone = false;
  sub2->SetStateHandler([&](bool) {
    sub2.reset();
    gone = true;
  });
  ASSERT_TRUE(RunUntil(*loop_, [&] { return gone; }));
  EXPECT_EQ(sub2, nullptr);
}

}  // namespace
}  // namespace turnkey::net
