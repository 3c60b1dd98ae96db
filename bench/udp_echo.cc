// udp_echo: the bench's peer. Sends every UDP datagram back to where it came
// from, unchanged, with recvmmsg / sendmmsg batches.
//
// --threads N binds N sockets to the same port with SO_REUSEPORT, so the
// kernel spreads senders (relay sockets) over the threads by 4-tuple. Prints
// "listening IP:PORT" once bound (--listen with port 0 picks a free port),
// runs until SIGINT/SIGTERM, then prints its counters on stderr.
#include <sys/socket.h>
#include <sys/time.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "base/address.h"
#include "bench/udp_batch.h"
#include "bench/udp_util.h"

namespace turnkey::bench {
namespace {

struct EchoCounters {
  uint64_t received = 0;
  uint64_t sent = 0;
};

void EchoLoop(int fd, size_t batch_size, const std::atomic<bool>& stop, EchoCounters& counters) {
  UdpBatch batch(batch_size, 2048);
  while (!stop.load(std::memory_order_relaxed)) {
    const int n = batch.Receive(fd, /*wait_for_one=*/true);
    if (n <= 0) {
      continue;  // the receive timeout: look at the stop flag
    }
    const size_t count = static_cast<size_t>(n);
    for (size_t i = 0; i < count; ++i) {
      batch.SetSendToSource(i, batch.data(i), batch.size(i));
    }
    counters.received += count;
    counters.sent += batch.Send(fd, 0, count);
  }
}

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  size_t threads = 1;
  size_t batch = 64;
  int buffer = 1 << 20;
  CLI::App cli{"udp_echo: batched UDP echo peer", "udp_echo"};
  cli.add_option("--listen", listen, "IP:PORT to bind (port 0 = any free)")->capture_default_str();
  cli.add_option("--threads", threads, "sockets/threads sharing the port (SO_REUSEPORT)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cli.add_option("--batch", batch, "datagrams per recvmmsg/sendmmsg")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cli.add_option("--buffer", buffer, "SO_RCVBUF/SO_SNDBUF, bytes")->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  auto address = base::SocketAddress::ParseIpPort(listen);
  if (!address) {
    std::fprintf(stderr, "udp_echo: --listen: expected IP:PORT\n");
    return 2;
  }
  std::atomic<bool>& stop = InstallStopFlag();
  std::vector<UniqueFd> sockets;
  for (size_t i = 0; i < threads; ++i) {
    UdpSocketSetup setup;
    setup.bind = *address;
    setup.reuse_port = true;
    setup.non_blocking = false;
    setup.buffer_bytes = buffer;
    auto fd = OpenUdpSocket(setup);
    if (!fd) {
      std::fprintf(stderr, "udp_echo: %s\n", fd.error().message.c_str());
      return 1;
    }
    // A receive timeout lets blocked threads notice the stop flag.
    timeval tv{0, 200'000};
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (i == 0) {
      *address = LocalAddress(fd->get());  // later sockets join the port picked here
    }
    sockets.push_back(std::move(*fd));
  }
  std::printf("listening %s\n", address->ToString().c_str());
  std::fflush(stdout);
  std::vector<EchoCounters> counters(threads);
  std::vector<std::thread> workers;
  for (size_t i = 0; i < threads; ++i) {
    workers.emplace_back(EchoLoop, sockets[i].get(), batch, std::cref(stop), std::ref(counters[i]));
  }
  for (auto& w : workers) {
    w.join();
  }
  EchoCounters total;
  for (const auto& c : counters) {
    total.received += c.received;
    total.sent += c.sent;
  }
  std::fprintf(stderr, "udp_echo: received %llu, sent %llu\n",
               static_cast<unsigned long long>(total.received),
               static_cast<unsigned long long>(total.sent));
  return 0;
}

}  // namespace
}  // namespace turnkey::bench

int main(int argc, char** argv) { return turnkey::bench::Main(argc, argv); }
