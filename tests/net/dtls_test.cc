// DtlsSocket against OpenSSL's own DTLS client (a datagram BIO on a connected
// UDP socket, blocking with a receive timeout) and hand-made datagrams.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "net/connection_budget.h"
#include "net/dtls_socket.h"
#include "net/tls_context.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using base::SocketAddress;
using testing::DtlsClient;
using testing::Eventually;
using testing::LoopThread;
using testing::MakeLoop;
using testing::TestCertificate;

const SocketAddress kLoopback = *SocketAddress::ParseIp("127.0.0.1", 0);

// A DtlsSocket on a loop thread that echoes every datagram and records the
// associations that ended.
class EchoServer {
 public:
  explicit EchoServer(DtlsSocketOptions options = {}, bool hold = false) {
    auto context = TlsContext::CreateServer(cert_.cert_path(), cert_.key_path());
    EXPECT_TRUE(context.has_value()) << context.error().message;
    loop_ = MakeLoop();
    auto socket = DtlsSocket::Create(
        *loop_, kLoopback, options, *context,
        [this, hold](const DtlsSocket::Peer& peer, base::ByteView data) {
          if (hold) {
            socket_->Hold(peer, 300ms);
          }
          socket_->Send(peer, data);
        },
        [this](const DtlsSocket::Peer& peer) {
          std::lock_guard lock(mutex_);
          closed_.push_back(peer.client.port());
        });
    EXPECT_TRUE(socket.has_value()) << socket.error().message;
    socket_ = std::move(*socket);
    thread_ = std::make_unique<LoopThread>(*loop_);
    thread_->Start();
  }
  ~EchoServer() {
    thread_->Join();
    socket_.reset();
  }
  const SocketAddress& address() const { return socket_->local_address(); }
  // Reads on the loop thread.
  template <typename F>
  auto OnLoop(F f) {
    std::promise<decltype(f())> done;
    loop_->Post([&] { done.set_value(f()); });
    return done.get_future().get();
  }
  size_t associations() {
    return OnLoop([this] { return socket_->size(); });
  }
  uint64_t cookies_sent() {
    return OnLoop([this] { return socket_->cookies_sent(); });
  }
  std::vector<uint16_t> closed() {
    std::lock_guard lock(mutex_);
    return closed_;
  }
  // Waits for `port`'s association to be reported ended.
  bool WaitClosed(uint16_t port) {
    return Eventually([&] {
      const std::vector<uint16_t> ports = closed();
      return std::find(ports.begin(), ports.end(), port) != ports.end();
    });
  }

 private:
  TestCertificate cert_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<DtlsSocket> socket_;
  std::unique_ptr<LoopThread> thread_;
  std::mutex mutex_;
  std::vector<uint16_t> closed_;
};

// A UDP relay between one client and `server` that keeps a copy of what the
// client sent and can send any of it again, as a network that duplicates or
// delays a datagram would.
class Tap {
 public:
  explicit Tap(const SocketAddress& server) {
    near_ = Bound();
    far_ = Bound();
    sockaddr_storage to{};
    const socklen_t length = server.ToSockaddr(&to);
    EXPECT_EQ(::connect(far_, reinterpret_cast<sockaddr*>(&to), length), 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~Tap() {
    stop_ = true;
    thread_.join();
    ::close(near_);
    ::close(far_);
  }
  SocketAddress address() const {
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    ::getsockname(near_, reinterpret_cast<sockaddr*>(&local), &length);
    return *SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&local), length);
  }
  std::vector<base::Bytes> sent() {
    std::lock_guard lock(mutex_);
    return sent_;
  }
  // Passes only the next `n` datagrams from the server (-1: all).
  void PassFromServer(int n) { pass_ = n; }
  void Replay(const base::Bytes& datagram) {
    ASSERT_EQ(::send(far_, datagram.data(), datagram.size(), 0),
              static_cast<ssize_t>(datagram.size()));
  }

 private:
  static int Bound() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage local{};
    const socklen_t length = SocketAddress(kLoopback).ToSockaddr(&local);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), length), 0);
    return fd;
  }
  void Run() {
    uint8_t buffer[65536];
    sockaddr_storage client{};
    socklen_t client_length = 0;
    while (!stop_) {
      pollfd fds[2] = {{near_, POLLIN, 0}, {far_, POLLIN, 0}};
      if (::poll(fds, 2, 20) <= 0) {
        continue;
      }
      if (fds[0].revents & POLLIN) {
        client_length = sizeof(client);
        const ssize_t n = ::recvfrom(near_, buffer, sizeof(buffer), 0,
                                     reinterpret_cast<sockaddr*>(&client), &client_length);
        if (n > 0) {
          {
            std::lock_guard lock(mutex_);
            sent_.emplace_back(buffer, buffer + n);
          }
          (void)::send(far_, buffer, static_cast<size_t>(n), 0);
        }
      }
      if (fds[1].revents & POLLIN) {
        const ssize_t n = ::recv(far_, buffer, sizeof(buffer), 0);
        int pass = pass_.load();
        while (pass > 0 && !pass_.compare_exchange_weak(pass, pass - 1)) {
        }
        if (n > 0 && client_length > 0 && pass != 0) {
          (void)::sendto(near_, buffer, static_cast<size_t>(n), 0,
                         reinterpret_cast<sockaddr*>(&client), client_length);
        }
      }
    }
  }

  int near_ = -1;
  int far_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> pass_{-1};
  std::mutex mutex_;
  std::vector<base::Bytes> sent_;
  std::thread thread_;
};

TEST(DtlsSocketTest, HandshakeAfterACookieThenRecordsBothWays) {
  EchoServer server;
  DtlsClient client(server.address());
  ASSERT_TRUE(client.Connect());
  // The first ClientHello had no cookie: a HelloVerifyRequest, then the
  // association.
  EXPECT_EQ(server.cookies_sent(), 1u);
  EXPECT_EQ(server.associations(), 1u);
  for (const std::string& text : std::vector<std::string>{"one", std::string(1100, 'x'), "three"}) {
    ASSERT_TRUE(client.Write(text));
    EXPECT_EQ(client.ReadText(), text);
  }
}

TEST(DtlsSocketTest, CloseNotifyEndsTheAssociationAndTellsTheOwner) {
  EchoServer server;
  DtlsClient client(server.address());
  ASSERT_TRUE(client.Connect());
  client.Shutdown();
  EXPECT_TRUE(server.WaitClosed(client.local_port()));
  EXPECT_EQ(server.associations(), 0u);
}

TEST(DtlsSocketTest, Dtls10IsRefused) {
  EchoServer server;
  DtlsClient client(server.address(), DTLS1_VERSION);
  EXPECT_FALSE(client.Connect());
  EXPECT_EQ(server.associations(), 0u);
}

TEST(DtlsSocketTest, DatagramsThatStartNoHandshakeAreIgnored) {
  EchoServer server;
  DtlsClient client(server.address());
  // A STUN Binding request, an application record of epoch 1 and a
  // truncated handshake record: no answer, no association.
  client.SendRaw(
      {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  client.SendRaw({23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4});
  client.SendRaw({22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1});
  EXPECT_FALSE(client.Receives(200ms));
  EXPECT_EQ(server.associations(), 0u);
  EXPECT_EQ(server.cookies_sent(), 0u);
  // The same client can still connect.
  ASSERT_TRUE(client.Connect());
}

TEST(DtlsSocketTest, AnAssociationNotHeldEndsAtTheSetupTimeout) {
  DtlsSocketOptions options;
  options.setup_timeout = 300ms;
  options.tick = 20ms;
  EchoServer server(options);
  DtlsClient client(server.address());
  ASSERT_TRUE(client.Connect());
  EXPECT_TRUE(server.WaitClosed(client.local_port()));
  // The client was told: close_notify.
  EXPECT_EQ(client.ReadText(), std::nullopt);
  EXPECT_EQ(client.last_error(), SSL_ERROR_ZERO_RETURN);
}

TEST(DtlsSocketTest, AHeldAssociationLivesWhileItSendsAndEndsWhenIdle) {
  DtlsSocketOptions options;
  options.setup_timeout = 200ms;
  options.tick = 20ms;
  EchoServer server(options, /*hold=*/true);  // held with a 300 ms idle timeout
  DtlsClient client(server.address());
  ASSERT_TRUE(client.Connect());
  // Past the setup timeout, records every 100 ms keep it.
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(client.Write("ping"));
    ASSERT_EQ(client.ReadText(), "ping") << i;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(server.closed().empty());
  EXPECT_TRUE(server.WaitClosed(client.local_port()));
}

TEST(DtlsSocketTest, ANewHandshakeFromTheSameAddressReplacesTheAssociation) {
  EchoServer server;
  uint16_t port = 0;
  {
    DtlsClient first(server.address());
    ASSERT_TRUE(first.Connect());
    port = first.local_port();
  }
  // The client restarts on the same port without close_notify.
  DtlsClient second(server.address(), 0, port);
  ASSERT_TRUE(second.Connect());
  EXPECT_TRUE(server.WaitClosed(port));
  EXPECT_EQ(server.associations(), 1u);
  ASSERT_TRUE(second.Write("again"));
  EXPECT_EQ(second.ReadText(), "again");
}

TEST(DtlsSocketTest, ANewHandshakeReplacesOneThatNeverFinished) {
  EchoServer server;
  Tap tap(server.address());
  {
    // The ClientHello, then (after the HelloVerifyRequest, the one datagram
    // let through) the same with the cookie, which begins an association
    // whose answer never arrives; the client gives up.
    tap.PassFromServer(1);
    DtlsClient first(tap.address());
    EXPECT_FALSE(first.ConnectStep());
    ASSERT_TRUE(Eventually([&] { return server.cookies_sent() == 1; }));
    EXPECT_FALSE(first.ConnectStep());
    ASSERT_TRUE(Eventually([&] { return server.associations() == 1; }));
  }
  // It starts over from the same address (the tap's): a new ClientHello
  // (another random) is not a retransmission of the unfinished one.
  tap.PassFromServer(-1);
  DtlsClient second(tap.address());
  ASSERT_TRUE(second.Connect());
  EXPECT_EQ(server.closed().size(), 1u);
  EXPECT_EQ(server.associations(), 1u);
  ASSERT_TRUE(second.Write("fresh"));
  EXPECT_EQ(second.ReadText(), "fresh");
}

// Options whose budget lets one client address hold `per_client` associations.
DtlsSocketOptions WithBudget(size_t per_client) {
  DtlsSocketOptions options;
  options.budget =
      std::make_shared<ConnectionBudget>(ConnectionBudgetOptions{.max_per_client = per_client});
  return options;
}

TEST(DtlsSocketTest, AssociationsPastTheBudgetOfAClientAreRefused) {
  EchoServer server(WithBudget(1));
  DtlsClient a(server.address());
  ASSERT_TRUE(a.Connect());
  // Another port of the same address: refused after its cookie, with an
  // alert, so the handshake fails at once rather than after retransmissions.
  DtlsClient b(server.address());
  EXPECT_FALSE(b.Connect());
  EXPECT_EQ(b.last_reason(), SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
  EXPECT_EQ(server.associations(), 1u);
  // A's place is given back when it ends.
  a.Shutdown();
  EXPECT_TRUE(server.WaitClosed(a.local_port()));
  DtlsClient c(server.address());
  EXPECT_TRUE(c.Connect());
}

TEST(DtlsSocketTest, ASocketGivesBackItsPlacesWhenItGoes) {
  const DtlsSocketOptions options = WithBudget(4);
  {
    EchoServer server(options);
    DtlsClient client(server.address());
    ASSERT_TRUE(client.Connect());
    EXPECT_EQ(options.budget->held(), 1u);
  }
  // The budget outlives the socket (workers share one).
  EXPECT_EQ(options.budget->held(), 0u);
}

TEST(DtlsSocketTest, ALateCopyOfTheClientHelloLeavesTheAssociation) {
  EchoServer server;
  Tap tap(server.address());
  DtlsClient client(tap.address());
  ASSERT_TRUE(client.Connect());
  // The client's first two datagrams: the ClientHello, then the same with
  // the cookie, which began the association. Both arrive again.
  const std::vector<base::Bytes> sent = tap.sent();
  ASSERT_GE(sent.size(), 2u);
  tap.Replay(sent[1]);
  tap.Replay(sent[0]);
  ASSERT_TRUE(client.Write("still here"));
  EXPECT_EQ(client.ReadText(), "still here");
  EXPECT_TRUE(server.closed().empty());
  EXPECT_EQ(server.associations(), 1u);
}

TEST(DtlsSocketTest, PendingAssociationsOverTheLimitEndTheOldest) {
  DtlsSocketOptions options;
  options.max_pending = 2;
  EchoServer server(options);
  DtlsClient a(server.address());
  DtlsClient b(server.address());
  DtlsClient c(server.address());
  ASSERT_TRUE(a.Connect());
  ASSERT_TRUE(b.Connect());
  ASSERT_TRUE(c.Connect());
  EXPECT_TRUE(server.WaitClosed(a.local_port()));
  EXPECT_EQ(server.associations(), 2u);
  ASSERT_TRUE(c.Write("c"));
  EXPECT_EQ(c.ReadText(), "c");
}

}  // namespace
}  // namespace turnkey::net
