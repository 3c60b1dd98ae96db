// RedisConnection and RedisSubscriber: asynchronous Redis clients on an
// EventLoop (hiredis' async API on libevent), for running several signaling
// nodes against one Redis: commands (EVALSHA, PUBLISH, GET, SET NX PX, DEL)
// and pub/sub messages.
//
// Both connect at once when created and reconnect by themselves, with a
// back-off that doubles from reconnect_min to reconnect_max and starts over
// after a connection succeeds. Every attempt is bounded by connect_timeout
// (TCP connect plus AUTH). TCP keepalive is on, so a server host that died
// silently is noticed.
//
// Threading and lifetime: loop thread only; create, use and destroy them
// there, and destroy them before the loop. Every callback (replies, state
// changes, messages) runs later from a loop task of its own, never inside a
// call into these classes and never inside a hiredis callback. A callback may
// therefore call anything here, including destroying the object that runs it;
// once an object is destroyed, none of its callbacks runs any more (pending
// reply callbacks are dropped without being called).
//
// Host names: hiredis resolves `host` with a blocking getaddrinfo() at every
// connect attempt, which stalls the loop while DNS is slow. Prefer an IP
// address (or a name in /etc/hosts).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

struct redisAsyncContext;
struct redisReply;

namespace turnkey::net {

class EventLoop;
class RedisLink;
class Timer;

struct RedisOptions {
  // Server address: an IP address or a host name. Default 127.0.0.1.
  std::string host = "127.0.0.1";
  // Server TCP port. Default 6379.
  uint16_t port = 6379;
  // ACL user for AUTH; empty = AUTH with the password only (the "default"
  // user). Default empty.
  std::string username;
  // Password for AUTH; empty = no AUTH. Never logged. Default empty.
  std::string password;
  // Longest time one attempt may take, from the TCP connect until AUTH is
  // accepted. Default 2 s.
  std::chrono::milliseconds connect_timeout{2000};
  // Back-off between attempts: starts at reconnect_min and doubles up to
  // reconnect_max. Defaults 100 ms and 2 s.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{2000};
};

// One Redis reply (RESP2), owning its bytes.
struct RedisReply {
  enum class Type : uint8_t {
    kNil,      // a nil bulk string or nil array
    kInteger,  // `integer`
    kString,   // a bulk string in `str` (binary-safe)
    kStatus,   // a status line such as "OK" in `str`
    kError,    // an error reply such as "ERR unknown command" in `str`
    kArray,    // `elements`
  };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;                   // kString, kStatus, kError
  std::vector<RedisReply> elements;  // kArray
};

// One connection to Redis on `loop`, reconnecting by itself with back-off.
// Commands are pipelined on it in the order they are issued.
class RedisConnection {
 public:
  using ReplyFn = std::move_only_function<void(base::Result<RedisReply>)>;

  // Starts connecting at once. `name` is used in log lines
  // ("redis(<name>): ..."). `loop` must outlive the connection.
  static std::unique_ptr<RedisConnection> Create(EventLoop& loop, RedisOptions options,
                                                 std::string name);
  // Closes the connection; pending callbacks are dropped, never called.
  // Allowed anywhere on the loop thread, including inside this connection's
  // own reply or state callback.
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends argv (binary-safe; argv[0] is the command name). `done` (may be
  // empty) runs later on the loop, never inside Command(): with the reply (a
  // Redis error reply is a RedisReply of type kError, not a base error), or
  // base::Unavailable when not connected or the connection was lost before
  // the reply (the command may or may not have run then), or
  // base::InvalidArgument for an empty argv. Replies come in command order.
  void Command(std::vector<std::string> argv, ReplyFn done = {});
  // Connected and AUTH accepted. Changes before the state handler hears of it.
  bool connected() const;
  // Why it is not (the last attempt's failure, e.g. "AUTH refused: WRONGPASS
  // ..."), or "" when connected or not tried yet.
  const std::string& last_failure() const;
  // Runs on every change, in order: true after connect (+AUTH), false when
  // the connection is lost. An attempt that fails (refused, timed out, AUTH
  // refused) is no change. Replaces the previous handler.
  void SetStateHandler(std::function<void(bool connected)> handler);

 private:
  RedisConnection() = default;
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata) noexcept;

  std::unique_ptr<RedisLink> link_;
};

// A connection in subscribe mode: SUBSCRIBEs to `channels` after every
// (re)connect and hands each message to `on_message` on the loop. Messages
// published while it is not subscribed are lost (Redis pub/sub keeps none).
class RedisSubscriber {
 public:
  // `channel` and `message` are valid during the call only.
  using MessageFn = std::function<void(std::string_view channel, std::string_view message)>;

  // Starts connecting at once; `loop` must outlive the subscriber.
  static std::unique_ptr<RedisSubscriber> Create(EventLoop& loop, RedisOptions options,
                                                 std::string name,
                                                 std::vector<std::string> channels,
                                                 MessageFn on_message);
  // Allowed anywhere on the loop thread, including inside its own message or
  // state callback; no callback runs after it.
  ~RedisSubscriber();
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  // Every channel's SUBSCRIBE confirmed on the current connection.
  bool subscribed() const;
  // true once every channel is subscribed after a (re)connect; false when
  // that connection is lost. Replaces the previous handler.
  void SetStateHandler(std::function<void(bool subscribed)> handler);

 private:
  RedisSubscriber() = default;
  void OnReady(redisAsyncContext* ac);
  void OnLost();
  void HandleSubscribeReply(const redisReply& reply);
  static void OnSubscribeReply(redisAsyncContext* ac, void* reply, void* privdata) noexcept;

  std::vector<std::string> channels_;  // as given, in SUBSCRIBE order
  std::shared_ptr<const MessageFn> on_message_;
  std::vector<std::string> confirmed_;  // channels confirmed on this connection
  bool subscribed_ = false;
  // Bounds the wait for the SUBSCRIBE confirmations (connect_timeout).
  std::unique_ptr<Timer> subscribe_timer_;
  std::unique_ptr<RedisLink> link_;  // last: destroyed first
};

}  // namespace turnkey::net
