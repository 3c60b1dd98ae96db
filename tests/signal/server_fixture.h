// Test scaffolding for the Engine.IO / Socket.IO server tests: a real
// HttpServer on 127.0.0.1:0 whose loop runs on a background thread, a way to
// run code on that loop and wait for its result, and a thread-safe recorder
// of server-side events that tests wait on with a deadline (never a sleep).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/address.h"
#include "net/event_loop.h"
#include "net/http_server.h"
#include "net/router.h"
#include "tests/signal/raw_client.h"

namespace turnkey::signal::testing {

// Server-side events as strings ("connect", "close:ping timeout", ...).
class Recorder {
 public:
  void Add(std::string event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
    changed_.notify_all();
  }
  // Waits until an event starting with `prefix` was recorded; returns it.
  std::optional<std::string> WaitPrefix(std::string_view prefix,
                                        std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    std::optional<std::string> found;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto& event : events_) {
        if (event.starts_with(prefix)) {
          found = event;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // Waits until `count` events start with `prefix`.
  bool WaitCount(std::string_view prefix, size_t count, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return CountLocked(prefix) >= count; });
  }
  size_t Count(std::string_view prefix) {
    std::lock_guard lock(mutex_);
    return CountLocked(prefix);
  }
  bool Has(std::string_view event) {
    std::lock_guard lock(mutex_);
    for (const auto& e : events_) {
      if (e == event) {
        return true;
      }
    }
    return false;
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  size_t CountLocked(std::string_view prefix) const {
    size_t n = 0;
    for (const auto& event : events_) {
      n += event.starts_with(prefix) ? 1 : 0;
    }
    return n;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> events_;
};

// Owns the loop, router and HttpServer. Subclasses create their servers
// (on the test thread, before Start), mount them on router(), call Start(),
// and release them in DestroyServers() (called after the loop thread stopped).
class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = net::EventLoop::Create();
    ASSERT_TRUE(loop.has_value());
    loop_ = std::move(*loop);
  }

  void TearDown() override {
    StopLoop();
    DestroyServers();
    http_.reset();
    loop_.reset();
  }

  virtual void DestroyServers() {}

  // Starts the HTTP server on 127.0.0.1:0 and the loop thread.
  void Start(size_t max_body_bytes = 2 * 1024 * 1024) {
    net::HttpServerOptions options;
    options.max_body_bytes = max_body_bytes;
    options.on_body_pending = body_pending_;
    options.error_response = error_response_;
    options.body_limit = body_limit_;
    // Records each request once the router has handled it, so a test can
    // wait until the server holds a GET before acting.
    auto handler = [this](net::HttpRequest request, net::Responder responder) {
      std::string line = request.method + " " + request.target;
      router_.Dispatch(std::move(request), std::move(responder));
      requests_.Add("handled:" + line);
    };
    auto http = net::HttpServer::Create(*loop_, base::SocketAddress::V4({127, 0, 0, 1}, 0), nullptr,
                                        options, handler);
    ASSERT_TRUE(http.has_value()) << http.error().message;
    http_ = std::move(*http);
    port_ = http_->local_address().port();
    thread_ = std::thread([this] { loop_->Run(); });
  }

  void StopLoop() {
    if (thread_.joinable()) {
      loop_->Stop();
      thread_.join();
    }
  }

  // Runs `fn` on the loop thread and returns its result.
  template <typename F>
  auto OnLoop(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> result = task->get_future();
    loop_->Post([task] { (*task)(); });
    return result.get();
  }

  // Polls `predicate` on the loop thread until it returns true; false once
  // `timeout` passed without that.
  template <typename F>
  bool OnLoopEventually(F predicate, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!OnLoop(predicate)) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  std::unique_ptr<RawClient> Client() {
    auto client = RawClient::Connect(port_);
    EXPECT_NE(client, nullptr);
    return client;
  }

  net::Router& router() { return router_; }
  // The HttpServer's on_body_pending; set before Start().
  void set_body_pending(net::HttpBodyPendingHook hook) { body_pending_ = std::move(hook); }
  // The HttpServer's error_response; set before Start().
  using ErrorResponse =
      std::function<std::optional<net::HttpResponse>(const net::HttpRequest& head, int status)>;
  void set_error_response(ErrorResponse hook) { error_response_ = std::move(hook); }
  // The HttpServer's body_limit; set before Start().
  using BodyLimit = std::function<uint64_t(const net::HttpRequest& head)>;
  void set_body_limit(BodyLimit hook) { body_limit_ = std::move(hook); }
  // "handled:<method> <target>" per request the router has dispatched.
  Recorder& requests() { return requests_; }
  net::EventLoop& loop() { return *loop_; }
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<net::EventLoop> loop_;
  net::Router router_;
  net::HttpBodyPendingHook body_pending_;
  ErrorResponse error_response_;
  BodyLimit body_limit_;
  std::unique_ptr<net::HttpServer> http_;
  std::thread thread_;
  uint16_t port_ = 0;
  Recorder requests_;
};

}  // namespace turnkey::signal::testing
