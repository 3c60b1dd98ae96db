// sio_loadgen: a Socket.IO load generator for call signaling servers
// (turnkey, or bench/signaling/node_server.js), speaking Engine.IO v4 /
// Socket.IO v5 over raw WebSocket connections (bench/signaling/sio_client.h).
//
// Users come from --users FILE: one "<user id> <access token>" per line.
//
// Idle mode (--idle --steps 1000,10000): opens that many authenticated
// connections (connection i as user i % users), step by step, and keeps them
// alive; prints a "connected" event after each step. With --wait-stdin it
// then waits for a line on stdin (EOF ends the run), so a script can read
// the server's RSS between steps; --hold SECONDS waits that long instead.
//
// Call mode (default): users 2k and 2k+1 are pairs, with --sockets-per-user
// connections each. Pairs ring, accept and hang up (bench/signaling/
// call_driver.h) at --rate call starts per second, or in a closed loop
// (--rate 0, at most --window calls in flight); --warmup seconds, then
// --seconds measured. The driver stays under the server's rate limits
// (--initiate-socket-rate ... --event-burst; 0 = unlimited).
//
// --json prints one JSON object per line: "connected", "measure_start",
// "measure_end" as they happen (a script samples the server's CPU at the
// edges of the measured window), then "result". Exit status 0 on success.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/address.h"
#include "bench/signaling/call_driver.h"
#include "bench/signaling/sio_worker.h"
#include "bench/udp_util.h"

namespace turnkey::bench {
namespace {

using Json = nlohmann::json;

struct Args {
  std::string server;
  std::string path = "/socket.io/";
  std::string users_file;
  size_t threads = 1;
  size_t bind_ips = 16;
  size_t pipeline = 256;
  bool json = false;
  // idle
  bool idle = false;
  std::string steps = "1000";
  bool wait_stdin = false;
  double hold = 0;
  double connect_timeout = 120;
  // calls
  size_t sockets_per_user = 1;
  size_t pairs = 0;
  double rate = 0;
  size_t window = 0;
  double seconds = 5;
  double warmup = 1;
  double drain = 5;
  double call_timeout = 10;
  std::string call_type = "audio";
  ServerLimits limits;
};

bool g_json = false;

void Emit(const Json& event, const std::string& human) {
  if (g_json) {
    std::fputs(event.dump(-1, ' ', false, Json::error_handler_t::replace).c_str(), stdout);
    std::fputc('\n', stdout);
  } else if (!human.empty()) {
    std::fputs(human.c_str(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
}

int Failure(const std::string& what) {
  Emit(Json{{"event", "result"}, {"ok", false}, {"error", what}}, "sio_loadgen: " + what);
  return 1;
}

std::optional<std::vector<size_t>> ParseSteps(const std::string& text) {
  std::vector<size_t> steps;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.empty() || item.size() > 9 || item.find_first_not_of("0123456789") != item.npos) {
      return std::nullopt;
    }
    const size_t value = std::stoul(item);
    if (value == 0 || (!steps.empty() && value <= steps.back())) {
      return std::nullopt;
    }
    steps.push_back(value);
    if (comma == std::string::npos) {
      return steps;
    }
    pos = comma + 1;
  }
}

base::Result<std::vector<BenchUser>> ReadUsers(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return base::NotFound("cannot read " + path);
  }
  std::vector<BenchUser> users;
  std::string id;
  std::string token;
  while (in >> id >> token) {
    users.push_back(BenchUser{id, token});
  }
  if (users.empty()) {
    return base::InvalidArgument(path + ": no \"<id> <token>\" lines");
  }
  return users;
}

// The worker threads, their control blocks, and totals over them.
class Fleet {
 public:
  explicit Fleet(size_t n) : controls_(n) {}
  ~Fleet() { Stop(); }

  void Add(std::unique_ptr<SioWorker> worker) { workers_.push_back(std::move(worker)); }
  WorkerControl& control(size_t i) { return controls_[i]; }
  size_t size() const { return controls_.size(); }

  void Start() {
    for (auto& w : workers_) {
      threads_.emplace_back([worker = w.get()] { worker->Run(); });
    }
  }
  void SetPhase(RunPhase phase) {
    for (auto& c : controls_) {
      c.phase.store(static_cast<int>(phase), std::memory_order_release);
    }
  }
  void Stop() {
    SetPhase(RunPhase::kStop);
    for (auto& t : threads_) {
      t.join();
    }
    threads_.clear();
  }
  template <typename F>
  uint64_t Sum(F field) {
    uint64_t total = 0;
    for (auto& c : controls_) {
      total += (c.*field).load(std::memory_order_relaxed);
    }
    return total;
  }
  int64_t LastReadyNs() {
    int64_t last = 0;
    for (auto& c : controls_) {
      last = std::max(last, c.last_ready_ns.load(std::memory_order_relaxed));
    }
    return last;
  }
  std::string FirstError() const {
    for (const auto& w : workers_) {
      if (!w->first_error().empty()) {
        return w->first_error();
      }
    }
    return "";
  }
  std::string FirstLoss() const {
    for (const auto& w : workers_) {
      if (!w->first_loss().empty()) {
        return w->first_loss();
      }
    }
    return "";
  }
  const std::vector<std::unique_ptr<SioWorker>>& workers() const { return workers_; }

 private:
  std::vector<WorkerControl> controls_;
  std::vector<std::unique_ptr<SioWorker>> workers_;
  std::vector<std::thread> threads_;
};

WorkerOptions MakeWorkerOptions(const Args& args, const base::SocketAddress& server) {
  WorkerOptions o;
  o.server = server;
  o.host = server.ToString();
  o.path = args.path;
  o.bind_ips = args.bind_ips;
  o.pipeline = std::max<size_t>(1, args.pipeline / args.threads);
  return o;
}

// Waits until `target` connections are ready or failed (or the timeout, or
// a stop signal). Returns the "connected" event.
Json WaitConnected(Fleet& fleet, size_t target, size_t before, int64_t start_ns, double timeout,
                   std::atomic<bool>& stop) {
  const int64_t deadline = start_ns + static_cast<int64_t>(timeout * 1e9);
  while (!stop.load() && NowNs() < deadline &&
         fleet.Sum(&WorkerControl::ready) + fleet.Sum(&WorkerControl::failed) < target) {
    SleepUntilNs(NowNs() + 20'000'000);
  }
  const size_t ready = fleet.Sum(&WorkerControl::ready);
  const size_t failed = fleet.Sum(&WorkerControl::failed);
  const int64_t last = std::max(fleet.LastReadyNs(), start_ns);
  const double seconds = static_cast<double>(last - start_ns) / 1e9;
  const size_t made = ready - std::min(ready, before);
  return Json{{"event", "connected"},
              {"target", target},
              {"ready_total", ready},
              {"ready", made},
              {"failed", failed},
              {"lost", fleet.Sum(&WorkerControl::lost)},
              {"seconds", seconds},
              {"per_second", seconds > 0 ? static_cast<double>(made) / seconds : 0.0},
              {"error", fleet.FirstError()}};
}

std::string ConnectedText(const Json& e) {
  return fmt::format(
      "connected {} of {} ({} failed, {} lost) at {:.0f}/s{}{}", e["ready_total"].get<size_t>(),
      e["target"].get<size_t>(), e["failed"].get<size_t>(), e["lost"].get<size_t>(),
      e["per_second"].get<double>(), e["error"].get<std::string>().empty() ? "" : ": ",
      e["error"].get<std::string>());
}

int RunIdle(const Args& args, const base::SocketAddress& server,
            std::shared_ptr<const std::vector<BenchUser>> users, std::atomic<bool>& stop) {
  auto steps = ParseSteps(args.steps);
  if (!steps) {
    return Failure("--steps: expected increasing counts such as 1000,10000");
  }
  const size_t total = steps->back();
  Fleet fleet(args.threads);
  std::vector<size_t> all_users(users->size());
  for (size_t i = 0; i < all_users.size(); ++i) {
    all_users[i] = i;
  }
  for (size_t w = 0; w < args.threads; ++w) {
    std::vector<size_t> connections;
    for (size_t i = w; i < total; i += args.threads) {
      connections.push_back(i % users->size());
    }
    auto worker = SioWorker::Create(MakeWorkerOptions(args, server), users, all_users,
                                    std::move(connections), nullptr, fleet.control(w));
    if (!worker) {
      return Failure(worker.error().message);
    }
    fleet.Add(std::move(*worker));
  }
  fleet.Start();
  bool all_ok = true;
  size_t before = 0;
  for (size_t k = 0; k < steps->size(); ++k) {
    const size_t step = (*steps)[k];
    const int64_t start = NowNs();
    for (size_t w = 0; w < args.threads; ++w) {
      fleet.control(w).target_connections.store((step + args.threads - 1 - w) / args.threads);
    }
    Json event = WaitConnected(fleet, step, before, start, args.connect_timeout, stop);
    event["step"] = step;
    before = event["ready_total"].get<size_t>();
    all_ok = all_ok && before == step;
    Emit(event, ConnectedText(event));
    if (stop.load()) {
      break;
    }
    if (args.wait_stdin) {
      std::string line;
      if (!std::getline(std::cin, line)) {
        break;  // EOF: the script is done with us
      }
    } else if (k + 1 == steps->size() && args.hold > 0) {
      const int64_t until = NowNs() + static_cast<int64_t>(args.hold * 1e9);
      while (!stop.load() && NowNs() < until) {
        SleepUntilNs(std::min(until, NowNs() + 100'000'000));
      }
    }
  }
  const size_t lost = fleet.Sum(&WorkerControl::lost);
  const size_t ready = fleet.Sum(&WorkerControl::ready);
  const std::string loss = fleet.FirstLoss();
  fleet.Stop();
  Emit(Json{{"event", "result"},
            {"ok", all_ok && lost == 0},
            {"ready_total", ready},
            {"lost", lost},
            {"lost_error", loss}},
       fmt::format("done: {} connections, {} lost{}{}", ready, lost, loss.empty() ? "" : ": ",
                   loss));
  return all_ok && lost == 0 ? 0 : 1;
}

int RunCalls(const Args& args, const base::SocketAddress& server,
             std::shared_ptr<const std::vector<BenchUser>> users, std::atomic<bool>& stop) {
  size_t pairs = users->size() / 2;
  if (args.pairs > 0) {
    if (args.pairs > pairs) {
      return Failure(fmt::format("--pairs {} needs {} users; the file has {}", args.pairs,
                                 2 * args.pairs, users->size()));
    }
    pairs = args.pairs;
  }
  if (pairs < args.threads) {
    return Failure("fewer pairs than threads");
  }
  Fleet fleet(args.threads);
  size_t total = 0;
  for (size_t w = 0; w < args.threads; ++w) {
    std::vector<size_t> local_users;
    std::vector<std::string> ids;
    for (size_t k = w; k < pairs; k += args.threads) {
      for (size_t u : {2 * k, 2 * k + 1}) {
        local_users.push_back(u);
        ids.push_back((*users)[u].id);
      }
    }
    std::vector<size_t> connections;
    for (size_t s = 0; s < args.sockets_per_user; ++s) {
      for (size_t i = 0; i < local_users.size(); ++i) {
        connections.push_back(i);
      }
    }
    total += connections.size();
    CallDriverOptions d;
    d.rate = args.rate / static_cast<double>(args.threads);
    d.window = args.window == 0 ? 0 : std::max<size_t>(1, args.window / args.threads);
    d.limits = args.limits;
    d.call_type = args.call_type;
    d.call_timeout_ns = static_cast<int64_t>(args.call_timeout * 1e9);
    auto driver = std::make_unique<CallDriver>(d, std::move(ids));
    auto worker = SioWorker::Create(MakeWorkerOptions(args, server), users, std::move(local_users),
                                    std::move(connections), std::move(driver), fleet.control(w));
    if (!worker) {
      return Failure(worker.error().message);
    }
    fleet.Add(std::move(*worker));
  }
  for (size_t w = 0; w < args.threads; ++w) {
    fleet.control(w).target_connections.store(SIZE_MAX);
  }
  fleet.Start();
  Json connected = WaitConnected(fleet, total, 0, NowNs(), args.connect_timeout, stop);
  Emit(connected, ConnectedText(connected));
  if (connected["ready_total"].get<size_t>() < total) {
    return Failure("not every connection was made: " + connected["error"].get<std::string>());
  }
  auto sleep_for = [&stop](double seconds) {
    const int64_t until = NowNs() + static_cast<int64_t>(seconds * 1e9);
    while (!stop.load() && NowNs() < until) {
      SleepUntilNs(std::min(until, NowNs() + 50'000'000));
    }
  };
  fleet.SetPhase(RunPhase::kWarmup);
  sleep_for(args.warmup);
  fleet.SetPhase(RunPhase::kMeasure);
  const int64_t t0 = NowNs();
  Emit(Json{{"event", "measure_start"}}, "");
  sleep_for(args.seconds);
  fleet.SetPhase(RunPhase::kDrain);
  const int64_t t1 = NowNs();
  Emit(Json{{"event", "measure_end"}}, "");
  const int64_t drain_until = NowNs() + static_cast<int64_t>(args.drain * 1e9);
  while (!stop.load() && NowNs() < drain_until && fleet.Sum(&WorkerControl::in_flight) > 0) {
    SleepUntilNs(NowNs() + 10'000'000);
  }
  const size_t unfinished = fleet.Sum(&WorkerControl::in_flight);
  const size_t lost = fleet.Sum(&WorkerControl::lost);
  const std::string loss = fleet.FirstLoss();
  fleet.Stop();

  CallStats total_stats;
  size_t pair_count = 0;
  for (const auto& w : fleet.workers()) {
    const CallStats& s = w->driver()->stats();
    pair_count += w->driver()->pairs();
    total_stats.setup_ns.Merge(s.setup_ns);
    total_stats.completed += s.completed;
    total_stats.completed_total += s.completed_total;
    total_stats.started += s.started;
    total_stats.late += s.late;
    total_stats.late_limits += s.late_limits;
    total_stats.late_busy += s.late_busy;
    total_stats.late_self += s.late_self;
    total_stats.limited_ns = std::max(total_stats.limited_ns, s.limited_ns);
    total_stats.timeouts += s.timeouts;
    total_stats.stray += s.stray;
    for (const auto& [why, n] : s.errors) {
      total_stats.errors[why] += n;
    }
  }
  const double seconds = static_cast<double>(t1 - t0) / 1e9;
  const LatencyHistogram& h = total_stats.setup_ns;
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  Json errors = Json::object();
  uint64_t error_count = 0;
  for (const auto& [why, n] : total_stats.errors) {
    errors[why] = n;
    error_count += n;
  }
  const bool ok = total_stats.completed > 0 && error_count == 0 && lost == 0;
  Json result{
      {"event", "result"},
      {"ok", ok},
      {"mode", args.rate > 0 ? "fixed" : "closed"},
      {"rate", args.rate},
      {"pairs", pair_count},
      {"connections", total},
      {"seconds", seconds},
      {"calls", total_stats.completed},
      {"calls_total", total_stats.completed_total},
      {"started", total_stats.started},
      {"calls_per_s", seconds > 0 ? static_cast<double>(total_stats.completed) / seconds : 0.0},
      {"setup_us",
       {{"p50", us(h.Percentile(0.50))},
        {"p90", us(h.Percentile(0.90))},
        {"p99", us(h.Percentile(0.99))},
        {"max", us(h.max())},
        {"mean", h.mean() / 1000.0},
        {"count", h.count()}}},
      {"late", total_stats.late},
      {"late_limits", total_stats.late_limits},
      {"late_busy", total_stats.late_busy},
      {"late_self", total_stats.late_self},
      {"limited_pct",
       seconds > 0 ? 100.0 * static_cast<double>(total_stats.limited_ns) / 1e9 / seconds : 0.0},
      {"timeouts", total_stats.timeouts},
      {"stray", total_stats.stray},
      {"unfinished", unfinished},
      {"lost", lost},
      {"lost_error", loss},
      {"errors", errors}};
  Emit(
      result,
      fmt::format("{:.0f} calls/s ({} calls in {:.2f} s), setup p50 {:.0f} us, p99 {:.0f} us, "
                  "{} late, {} errors{}, {} connections lost{}{}",
                  result["calls_per_s"].get<double>(), total_stats.completed, seconds,
                  us(h.Percentile(0.5)), us(h.Percentile(0.99)), total_stats.late, error_count,
                  errors.empty() ? "" : " " + errors.dump(), lost, loss.empty() ? "" : ": ", loss));
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  Args args;
  CLI::App app{"Socket.IO call-signaling load generator (bench/signaling)"};
  app.add_option("--server", args.server, "server IP:PORT")->required();
  app.add_option("--path", args.path, "Socket.IO path");
  app.add_option("--users", args.users_file, "file of \"<user id> <token>\" lines")->required();
  app.add_option("--threads", args.threads, "worker threads")->check(CLI::Range(1, 64));
  app.add_option("--bind-ips", args.bind_ips, "source addresses 127.0.0.1..N")
      ->check(CLI::Range(1, 250));
  app.add_option("--pipeline", args.pipeline, "connections in the handshake at once")
      ->check(CLI::Range(1, 100000));
  app.add_flag("--json", args.json, "JSON lines");
  app.add_flag("--idle", args.idle, "idle connections only");
  app.add_option("--steps", args.steps, "idle: connection counts, e.g. 1000,10000");
  app.add_flag("--wait-stdin", args.wait_stdin, "idle: wait for a line on stdin after each step");
  app.add_option("--hold", args.hold, "idle: seconds to hold the last step");
  app.add_option("--connect-timeout", args.connect_timeout, "seconds for a step's connections");
  app.add_option("--sockets-per-user", args.sockets_per_user, "calls: connections per user")
      ->check(CLI::Range(1, 64));
  app.add_option("--pairs", args.pairs, "calls: pairs to use (0 = users / 2)");
  app.add_option("--rate", args.rate, "calls: call starts per second (0 = closed loop)");
  app.add_option("--window", args.window, "closed loop: calls in flight (0 = every pair)");
  app.add_option("--seconds", args.seconds, "calls: measured seconds");
  app.add_option("--warmup", args.warmup, "calls: seconds before measuring");
  app.add_option("--drain", args.drain, "calls: seconds to let calls in flight finish");
  app.add_option("--call-timeout", args.call_timeout, "calls: seconds without progress");
  app.add_option("--call-type", args.call_type, "audio or video");
  app.add_option("--initiate-socket-rate", args.limits.initiate_socket_rate, "server limit");
  app.add_option("--initiate-socket-burst", args.limits.initiate_socket_burst, "server limit");
  app.add_option("--initiate-user-rate", args.limits.initiate_user_rate, "server limit");
  app.add_option("--initiate-user-burst", args.limits.initiate_user_burst, "server limit");
  app.add_option("--event-rate", args.limits.event_rate, "server limit");
  app.add_option("--event-burst", args.limits.event_burst, "server limit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  g_json = args.json;
  std::atomic<bool>& stop = InstallStopFlag();
  RaiseFileLimit();
  auto server = base::SocketAddress::ParseIpPort(args.server);
  if (!server) {
    return Failure("--server: expected IP:PORT, got \"" + args.server + "\"");
  }
  auto users = ReadUsers(args.users_file);
  if (!users) {
    return Failure(users.error().message);
  }
  auto shared = std::make_shared<const std::vector<BenchUser>>(std::move(*users));
  if (args.idle) {
    return RunIdle(args, *server, shared, stop);
  }
  return RunCalls(args, *server, shared, stop);
}

}  // namespace
}  // namespace turnkey::bench

int main(int argc, char** argv) { return turnkey::bench::Main(argc, argv); }
