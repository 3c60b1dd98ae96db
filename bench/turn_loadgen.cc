// turn_loadgen: a batched UDP load generator for TURN relays (and, for the
// same packets without TURN, for the raw forwarder or the echo peer itself).
// With --transport tcp or tls the TURN clients speak over TCP / TLS
// connections instead (RFC 8656 s3.1; the relay and the peer stay UDP).
//
// Data mode: sets up --allocations TURN allocations (CreatePermission and
// ChannelBind to --peer each), then drives ChannelData through them from
// --threads threads at --rate packets/s (0 = saturation) for --seconds after a
// --warmup, and reports received packets/s, loss and RTT percentiles.
// --forwarder sends the same ChannelData-framed packets to bench/udp_forwarder;
// --direct sends bare probes straight to the peer (the client side's own limit).
//
// Allocations mode (--allocations-only): allocates --steps (e.g. 1000,5000)
// as fast as the server answers, --pipeline setups at a time, reports
// allocations/s per step, and keeps the allocations refreshed; with
// --wait-stdin it pauses after each step until a line (or EOF, which ends
// the run) arrives on stdin, so a script can read the server's RSS.
//
// --json prints one JSON object per line: progress events ("setup",
// "measure_start", "measure_end", "allocated") as they happen, so a script can
// sample the relay's CPU time at the edges of the measured window, then
// "result". Exit status 0 on success, 1 when setup or the run failed.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/address.h"
#include "bench/session_pool.h"
#include "bench/traffic_worker.h"
#include "bench/udp_util.h"

namespace turnkey::bench {
namespace {

struct Args {
  std::string server;             // TURN server ip:port
  std::string transport = "udp";  // client transport to the TURN server
  std::string forwarder;          // raw forwarder ip:port
  bool direct = false;            // straight to --peer
  std::string peer;               // echo peer ip:port
  std::string bind = "127.0.0.1";
  size_t bind_ips = 1;
  std::string user = "bench";
  std::string password;
  std::string secret;
  size_t allocations = 4;
  size_t threads = 1;
  double rate = 0;
  size_t window = 256;
  size_t size = 100;
  size_t batch = 32;
  double seconds = 5;
  double warmup = 1;
  double drain = 0.5;
  double tick_us = 100;
  int buffer = 1 << 20;
  uint32_t lifetime = 600;
  bool json = false;
  bool allocations_only = false;
  std::string steps = "1000";
  size_t pipeline = 64;
  bool wait_stdin = false;
  double hold = 0;
};

bool g_json = false;

void Emit(const std::string& json_line, const std::string& human) {
  if (g_json) {
    std::fputs(json_line.c_str(), stdout);
    std::fputc('\n', stdout);
  } else if (!human.empty()) {
    std::fputs(human.c_str(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
}

// JSON string literal (error texts may hold quotes).
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int Failure(const std::string& what) {
  Emit(fmt::format("{{\"event\":\"result\",\"ok\":false,\"error\":{}}}", Quote(what)),
       "turn_loadgen: " + what);
  return 1;
}

std::optional<base::SocketAddress> ParseAddress(const std::string& text, const char* flag,
                                                std::string& error) {
  auto a = base::SocketAddress::ParseIpPort(text);
  if (!a) {
    error = fmt::format("{}: expected IP:PORT, got \"{}\"", flag, text);
  }
  return a;
}

std::optional<std::vector<size_t>> ParseSteps(const std::string& text) {
  std::vector<size_t> steps;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos ||
        item.size() > 9) {
      return std::nullopt;
    }
    size_t value = std::stoul(item);
    if (value == 0 || (!steps.empty() && value <= steps.back())) {
      return std::nullopt;
    }
    steps.push_back(value);
    if (comma == std::string::npos) {
      break;
    }
    pos = comma + 1;
  }
  return steps;
}

// The pool's options from the command line, with a TLS client context when
// the transport is TLS.
base::Result<SessionPoolOptions> PoolOptions(const Args& args, const base::SocketAddress& server,
                                             const base::SocketAddress& bind) {
  SessionPoolOptions o;
  ParseClientTransport(args.transport, &o.transport);
  o.server = server;
  o.bind = bind;
  o.pipeline = args.pipeline;
  o.bind_count = args.bind_ips;
  o.credentials.user = args.user;
  o.credentials.password = args.password;
  o.credentials.secret = args.secret;
  o.session.lifetime_seconds = args.lifetime;
  if (o.transport == ClientTransportKind::kTls) {
    auto tls = TlsClientContext::Create();
    if (!tls) {
      return std::unexpected(tls.error());
    }
    o.tls = std::move(*tls);
  }
  return o;
}

std::string GrowJson(const GrowResult& r, size_t total, size_t ready_total) {
  const double seconds = static_cast<double>(r.elapsed_ns) / 1e9;
  return fmt::format(
      "\"total\":{},\"ready_total\":{},\"started\":{},\"ready\":{},\"failed\":{},"
      "\"seconds\":{:.6f},\"per_second\":{:.1f},\"requests\":{},\"retransmissions\":{},"
      "\"error\":{}",
      total, ready_total, r.started, r.ready, r.failed, seconds,
      seconds > 0 ? static_cast<double>(r.ready) / seconds : 0.0, r.requests, r.retransmissions,
      Quote(r.first_error));
}

int RunAllocationsOnly(const Args& args, const base::SocketAddress& server,
                       const base::SocketAddress& bind, std::atomic<bool>& stop) {
  auto steps = ParseSteps(args.steps);
  if (!steps) {
    return Failure("--steps: expected increasing counts such as 1000,5000");
  }
  auto o = PoolOptions(args, server, bind);
  if (!o) {
    return Failure(o.error().message);
  }
  auto pool = SessionPool::Create(*o);
  if (!pool) {
    return Failure(pool.error().message);
  }
  bool any_failed = false;
  for (size_t k = 0; k < steps->size(); ++k) {
    GrowResult r = (*pool)->Grow((*steps)[k], stop);
    any_failed = any_failed || r.failed > 0 || (*pool)->size() < (*steps)[k];
    const size_t ready_total = (*pool)->ready_count();
    Emit(fmt::format("{{\"event\":\"allocated\",{}}}", GrowJson(r, (*pool)->size(), ready_total)),
         fmt::format("allocated {} of {} in {:.3f} s: {:.0f}/s ({} failed{}{})", ready_total,
                     (*steps)[k], static_cast<double>(r.elapsed_ns) / 1e9,
                     r.elapsed_ns > 0
                         ? static_cast<double>(r.ready) * 1e9 / static_cast<double>(r.elapsed_ns)
                         : 0.0,
                     r.failed, r.first_error.empty() ? "" : ": ", r.first_error));
    if (stop.load()) {
      break;
    }
    if (args.wait_stdin) {
      if ((*pool)->Serve(INT64_MAX, stop, STDIN_FILENO) != SessionPool::ServeEnd::kWatchReadable) {
        break;
      }
      char line[256];
      if (::read(STDIN_FILENO, line, sizeof(line)) <= 0) {
        break;  // EOF: the script is done with us
      }
    } else if (k + 1 == steps->size() && args.hold > 0) {
      (*pool)->Serve(NowNs() + static_cast<int64_t>(args.hold * 1e9), stop);
    }
  }
  const size_t ready_at_end = (*pool)->ready_count();
  (*pool)->CloseAll(200'000'000);
  Emit(fmt::format("{{\"event\":\"result\",\"ok\":{},\"total\":{},\"ready_total\":{}}}",
                   any_failed ? "false" : "true", (*pool)->size(), ready_at_end),
       "");
  return any_failed ? 1 : 0;
}

int RunTraffic(const Args& args, const base::SocketAddress& bind, std::atomic<bool>& stop) {
  std::string error;
  const char* mode =
      !args.server.empty() ? "turn" : (!args.forwarder.empty() ? "forwarder" : "direct");
  std::optional<base::SocketAddress> peer;
  if (!args.peer.empty()) {
    peer = ParseAddress(args.peer, "--peer", error);
    if (!peer) {
      return Failure(error);
    }
  }
  if (!peer && std::string_view(mode) != "forwarder") {
    return Failure("--peer is required with --server and --direct");
  }
  const size_t flows_wanted = std::max(args.allocations, args.threads);

  std::unique_ptr<SessionPool> pool;
  std::vector<UniqueFd> plain_sockets;
  std::vector<Flow> flows;
  if (std::string_view(mode) == "turn") {
    auto server = ParseAddress(args.server, "--server", error);
    if (!server) {
      return Failure(error);
    }
    auto o = PoolOptions(args, *server, bind);
    if (!o) {
      return Failure(o.error().message);
    }
    o->session.peer = *peer;
    o->buffer_bytes = args.buffer;
    auto created = SessionPool::Create(*o);
    if (!created) {
      return Failure(created.error().message);
    }
    pool = std::move(*created);
    GrowResult r = pool->Grow(flows_wanted, stop);
    Emit(fmt::format("{{\"event\":\"setup\",{}}}", GrowJson(r, pool->size(), r.ready)),
         fmt::format("setup: {} allocations with permission and channel in {:.3f} s", r.ready,
                     static_cast<double>(r.elapsed_ns) / 1e9));
    if (r.ready < flows_wanted) {
      return Failure("setup failed: " +
                     (r.first_error.empty() ? std::string("interrupted") : r.first_error));
    }
    for (size_t i = 0; i < pool->size(); ++i) {
      flows.push_back(Flow{pool->session(i).fd(), static_cast<uint32_t>(i), stun::kMinChannelNumber,
                           &pool->session(i), 0, pool->session(i).stream()});
    }
  } else {
    base::SocketAddress target;
    if (std::string_view(mode) == "forwarder") {
      auto f = ParseAddress(args.forwarder, "--forwarder", error);
      if (!f) {
        return Failure(error);
      }
      target = *f;
    } else {
      target = *peer;
    }
    for (size_t i = 0; i < flows_wanted; ++i) {
      UdpSocketSetup setup;
      setup.bind = bind;
      setup.connect_to = target;
      setup.buffer_bytes = args.buffer;
      auto fd = OpenUdpSocket(setup);
      if (!fd) {
        return Failure(fd.error().message);
      }
      flows.push_back(
          Flow{fd->get(), static_cast<uint32_t>(i), stun::kMinChannelNumber, nullptr, 0});
      plain_sockets.push_back(std::move(*fd));
    }
  }

  TrafficOptions t;
  t.channel_data = std::string_view(mode) != "direct";
  t.payload_bytes = args.size;
  t.batch = args.batch;
  t.rate = args.rate / static_cast<double>(args.threads);
  t.window = args.rate > 0 ? 0 : (args.window + args.threads - 1) / args.threads;
  t.tick_ns = static_cast<int64_t>(args.tick_us * 1000);
  t.start_ns = NowNs() + 20'000'000;
  t.measure_start_ns = t.start_ns + static_cast<int64_t>(args.warmup * 1e9);
  t.measure_end_ns = t.measure_start_ns + static_cast<int64_t>(args.seconds * 1e9);
  t.drain_end_ns = t.measure_end_ns + static_cast<int64_t>(args.drain * 1e9);

  std::vector<std::vector<Flow>> per_thread(args.threads);
  for (size_t i = 0; i < flows.size(); ++i) {
    per_thread[i % args.threads].push_back(flows[i]);
  }
  std::vector<std::unique_ptr<TrafficWorker>> workers;
  for (auto& f : per_thread) {
    workers.push_back(std::make_unique<TrafficWorker>(std::move(f), t));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&stop, worker = w.get()] { worker->Run(stop); });
  }
  SleepUntilNs(t.measure_start_ns);
  Emit("{\"event\":\"measure_start\"}", "");
  SleepUntilNs(t.measure_end_ns);
  Emit("{\"event\":\"measure_end\"}", "");
  for (auto& th : threads) {
    th.join();
  }
  TrafficStats total;
  for (auto& w : workers) {
    if (!w->error().empty()) {
      return Failure(w->error());
    }
    total.Merge(w->stats());
  }
  if (pool) {
    pool->CloseAll(100'000'000);
  }

  const double seconds = args.seconds;
  const double loss = total.sent_measured == 0
                          ? 1.0
                          : 1.0 - static_cast<double>(total.received_measured) /
                                      static_cast<double>(total.sent_measured);
  const double rx_pps = static_cast<double>(total.received_in_window) / seconds;
  const auto us = [&](double q) { return static_cast<double>(total.rtt.Percentile(q)) / 1000.0; };
  const bool ok = total.received_measured > 0;
  Emit(fmt::format("{{\"event\":\"result\",\"ok\":{},\"mode\":\"{}\",\"transport\":\"{}\","
                   "\"flows\":{},\"threads\":{},"
                   "\"size\":{},\"offered_rate\":{},\"window\":{},\"seconds\":{},\"sent\":{},"
                   "\"received\":{},\"loss\":{:.6f},\"rx_pps\":{:.1f},"
                   "\"rtt_us\":{{\"p50\":{:.1f},\"p90\":{:.1f},\"p99\":{:.1f},\"p999\":{:.1f},"
                   "\"max\":{:.1f},\"mean\":{:.1f}}},\"invalid\":{},\"send_shortfall\":{},"
                   "\"written_off\":{}}}",
                   ok ? "true" : "false", mode, args.transport, flows.size(), args.threads,
                   args.size, args.rate, args.rate > 0 ? 0 : args.window, seconds,
                   total.sent_measured, total.received_measured, loss, rx_pps, us(0.5), us(0.9),
                   us(0.99), us(0.999), static_cast<double>(total.rtt.max()) / 1000.0,
                   total.rtt.mean() / 1000.0, total.invalid, total.send_shortfall,
                   total.written_off),
       fmt::format(
           "{}/{} x{} flows, {} B, {}: {:.0f} echoes/s, loss {:.3f}%, rtt us p50 {:.1f} "
           "p90 {:.1f} p99 {:.1f} max {:.1f} (sent {}, received {}, invalid {})",
           mode, args.transport, flows.size(), args.size,
           args.rate > 0 ? fmt::format("{:.0f}/s offered", args.rate) : std::string("saturation"),
           rx_pps, loss * 100, us(0.5), us(0.9), us(0.99),
           static_cast<double>(total.rtt.max()) / 1000.0, total.sent_measured,
           total.received_measured, total.invalid));
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  Args args;
  CLI::App cli{
      "turn_loadgen: batched load through a TURN relay (clients over UDP, TCP or TLS), the raw "
      "forwarder, or straight to the echo peer",
      "turn_loadgen"};
  auto* server = cli.add_option("--server", args.server, "TURN server IP:PORT");
  cli.add_option("--transport", args.transport,
                 "client transport to the TURN server (the relay stays UDP)")
      ->capture_default_str()
      ->check(CLI::IsMember({"udp", "tcp", "tls"}));
  auto* forwarder =
      cli.add_option("--forwarder", args.forwarder, "raw forwarder IP:PORT (no TURN)");
  auto* direct = cli.add_flag("--direct", args.direct, "send straight to --peer (no relay)");
  server->excludes(forwarder)->excludes(direct);
  forwarder->excludes(direct);
  cli.add_option("--peer", args.peer, "echo peer IP:PORT");
  cli.add_option("--bind", args.bind, "local IP for client sockets")->capture_default_str();
  cli.add_option("--bind-ips", args.bind_ips,
                 "TURN client sockets spread over this many IPv4 addresses from --bind")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cli.add_option("--user", args.user, "static user name, or the TURN REST user id")
      ->capture_default_str();
  auto* password = cli.add_option("--password", args.password, "static user's password");
  auto* secret = cli.add_option("--secret", args.secret, "TURN REST shared secret");
  password->excludes(secret);
  cli.add_option("--allocations", args.allocations, "flows (allocations) in data mode")
      ->capture_default_str()
      ->check(CLI::Range(1, 60000));
  cli.add_option("--threads", args.threads, "sending threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cli.add_option("--rate", args.rate, "offered packets/s in total; 0 = saturation")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--window", args.window, "saturation: packets in flight in total; 0 = open loop")
      ->capture_default_str();
  cli.add_option("--size", args.size, "payload bytes")
      ->capture_default_str()
      ->check(CLI::Range(kProbeHeader, size_t{2000}));
  cli.add_option("--batch", args.batch, "datagrams per sendmmsg/recvmmsg")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cli.add_option("--seconds", args.seconds, "measured duration")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--warmup", args.warmup, "seconds of load before measuring")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--drain", args.drain, "seconds to wait for late echoes")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--tick-us", args.tick_us, "fixed rate: shortest sleep between bursts")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--buffer", args.buffer, "SO_RCVBUF/SO_SNDBUF of data sockets, bytes")
      ->capture_default_str();
  cli.add_option("--lifetime", args.lifetime, "allocation LIFETIME requested, seconds")
      ->capture_default_str();
  cli.add_flag("--json", args.json, "JSON lines on stdout");
  cli.add_flag("--allocations-only", args.allocations_only,
               "allocate --steps allocations, report allocations/s, keep them alive");
  cli.add_option("--steps", args.steps, "allocations-only: cumulative counts, e.g. 1000,5000")
      ->capture_default_str();
  cli.add_option("--pipeline", args.pipeline, "allocation setups in flight at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cli.add_flag("--wait-stdin", args.wait_stdin,
               "allocations-only: after each step wait for a line on stdin (EOF ends)");
  cli.add_option("--hold", args.hold, "allocations-only: seconds to keep them after the last step")
      ->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  g_json = args.json;
  if (args.password.empty() && args.secret.empty() &&
      (!args.server.empty() || args.allocations_only)) {
    return Failure("TURN needs --password (static user) or --secret (TURN REST)");
  }
  if (args.server.empty() && args.forwarder.empty() && !args.direct) {
    return Failure("one of --server, --forwarder or --direct is required");
  }
  if (args.server.empty() && args.transport != "udp") {
    return Failure("--transport tcp/tls needs --server (the forwarder and the peer speak UDP)");
  }
  auto bind = base::SocketAddress::ParseIp(args.bind, 0);
  if (!bind) {
    return Failure("--bind: expected an IP address");
  }
  std::atomic<bool>& stop = InstallStopFlag();
  RaiseFileLimit();
  if (args.allocations_only) {
    if (args.server.empty()) {
      return Failure("--allocations-only needs --server");
    }
    std::string error;
    auto server = ParseAddress(args.server, "--server", error);
    if (!server) {
      return Failure(error);
    }
    return RunAllocationsOnly(args, *server, *bind, stop);
  }
  return RunTraffic(args, *bind, stop);
}

}  // namespace
}  // namespace turnkey::bench

int main(int argc, char** argv) { return turnkey::bench::Main(argc, argv); }
