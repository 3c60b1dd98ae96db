#include "net/udp_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using base::ByteView;
using base::SocketAddress;
using testing::MakeLoop;
using testing::RunUntil;

SocketAddress Loopback4() { return *SocketAddress::ParseIp("127.0.0.1", 0); }

std::unique_ptr<UdpSocket> MakeSocket(EventLoop& loop, const SocketAddress& bind,
                                      UdpSocket::BatchHandler handler,
                                      UdpSocketOptions options = {}) {
  auto socket = UdpSocket::Create(loop, bind, options, std::move(handler));
  EXPECT_TRUE(socket.has_value()) << socket.error().message;
  return socket ? std::move(*socket) : nullptr;
}

TEST(UdpSocketTest, BindToPortZeroReportsTheRealPort) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto socket = MakeSocket(*loop, Loopback4(), [](auto) {});
  ASSERT_TRUE(socket);
  EXPECT_NE(socket->local_address().port(), 0);
  EXPECT_EQ(socket->local_address().IpString(), "127.0.0.1");
}

TEST(UdpSocketTest, RejectsBadOptions) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  UdpSocketOptions options;
  options.batch_size = 0;
  auto socket = UdpSocket::Create(*loop, Loopback4(), options, [](auto) {});
  ASSERT_FALSE(socket.has_value());
  EXPECT_EQ(socket.error().code, base::ErrorCode::kInvalidArgument);
}

// The server echoes every datagram with QueueSend (flushed after each read
// batch); the client queues 100 numbered datagrams and checks that they all
// come back, in order, and that they were read in batches.
void EchoHundred(const SocketAddress& bind) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  UdpSocket* server_ptr = nullptr;
  size_t server_batches = 0;
  size_t largest_batch = 0;
  auto server = MakeSocket(*loop, bind, [&](std::span<const Datagram> batch) {
    ++server_batches;
    largest_batch = std::max(largest_batch, batch.size());
    for (const Datagram& d : batch) {
      EXPECT_EQ(server_ptr->QueueSend(d.from, d.data), SendResult::kSent);
    }
  });
  ASSERT_TRUE(server);
  server_ptr = server.get();

  std::vector<std::string> received;
  auto client = MakeSocket(*loop, bind, [&](std::span<const Datagram> batch) {
    for (const Datagram& d : batch) {
      EXPECT_EQ(d.from, server_ptr->local_address());
      received.emplace_back(base::AsString(d.data));
    }
  });
  ASSERT_TRUE(client);

  constexpr int kCount = 100;
  for (int i = 0; i < kCount; ++i) {
    std::string payload = "datagram-" + std::to_string(i);
    ASSERT_EQ(client->QueueSend(server->local_address(), base::AsBytes(payload)),
              SendResult::kSent);
  }
  client->Flush();
  ASSERT_TRUE(RunUntil(*loop, [&] { return received.size() == kCount; }));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(received[i], "datagram-" + std::to_string(i));
  }
  EXPECT_GT(largest_batch, 1u);
  EXPECT_LT(server_batches, static_cast<size_t>(kCount));
  EXPECT_EQ(server->received_datagrams(), static_cast<uint64_t>(kCount));
  EXPECT_EQ(server->sent_datagrams(), static_cast<uint64_t>(kCount));
  EXPECT_EQ(client->sent_datagrams(), static_cast<uint64_t>(kCount));
  EXPECT_EQ(client->dropped_sends(), 0u);
  EXPECT_EQ(server->dropped_sends(), 0u);
}

TEST(UdpSocketTest, EchoesABatchOfHundredInOrderIpv4) { EchoHundred(Loopback4()); }

TEST(UdpSocketTest, EchoesABatchOfHundredInOrderIpv6) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  // The test machines have ::1 (the integration tests relay over it too); a
  // host without it fails here rather than skipping silently.
  ASSERT_TRUE(UdpSocket::Create(*loop, *SocketAddress::ParseIp("::1"), {}, [](auto) {}))
      << "no IPv6 loopback";
  EchoHundred(*SocketAddress::ParseIp("::1"));
}

TEST(UdpSocketTest, QueuedSendsGoOutByTheEndOfTheIterationWithoutFlush) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int received = 0;
  auto server = MakeSocket(*loop, Loopback4(), [&](std::span<const Datagram> batch) {
    received += static_cast<int>(batch.size());
  });
  auto client = MakeSocket(*loop, Loopback4(), [](auto) {});
  ASSERT_TRUE(server && client);
  client->QueueSend(server->local_address(), base::AsBytes("one"));
  client->QueueSend(server->local_address(), base::AsBytes("two"));
  EXPECT_TRUE(RunUntil(*loop, [&] { return received == 2; }));
}

TEST(UdpSocketTest, SendAndOversizedQueueSendKeepOrder) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<size_t> sizes;
  UdpSocketOptions small;
  small.max_datagram_bytes = 64;
  auto server = MakeSocket(
      *loop, Loopback4(),
      [&](std::span<const Datagram> batch) {
        for (const Datagram& d : batch) {
          sizes.push_back(d.data.size());
        }
      },
      UdpSocketOptions{});
  auto client = MakeSocket(
      *loop, Loopback4(), [](auto) {}, small);
  ASSERT_TRUE(server && client);
  std::string big(500, 'x');
  client->QueueSend(server->local_address(), base::AsBytes("a"));
  EXPECT_EQ(client->QueueSend(server->local_address(), base::AsBytes(big)), SendResult::kSent);
  EXPECT_EQ(client->Send(server->local_address(), base::AsBytes("bc")), SendResult::kSent);
  ASSERT_TRUE(RunUntil(*loop, [&] { return sizes.size() == 3; }));
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 500, 2}));
}

TEST(UdpSocketTest, TruncatedDatagramsAreDroppedAndCounted) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> received;
  UdpSocketOptions small;
  small.max_datagram_bytes = 64;
  auto server = MakeSocket(
      *loop, Loopback4(),
      [&](std::span<const Datagram> batch) {
        for (const Datagram& d : batch) {
          received.emplace_back(base::AsString(d.data));
        }
      },
      small);
  auto client = MakeSocket(*loop, Loopback4(), [](auto) {});
  ASSERT_TRUE(server && client);
  client->Send(server->local_address(), base::AsBytes(std::string(100, 'x')));
  client->Send(server->local_address(), base::AsBytes("fits"));
  ASSERT_TRUE(RunUntil(*loop, [&] { return received.size() == 1; }));
  EXPECT_EQ(received[0], "fits");
  EXPECT_EQ(server->truncated_datagrams(), 1u);
}

TEST(UdpSocketTest, DefaultsReceiveTheLargestDatagram) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<size_t> sizes;
  auto server = MakeSocket(*loop, Loopback4(), [&](std::span<const Datagram> batch) {
    for (const Datagram& d : batch) {
      sizes.push_back(d.data.size());
    }
  });
  auto client = MakeSocket(*loop, Loopback4(), [](auto) {});
  ASSERT_TRUE(server && client);
  // 65507: the most an IPv4 UDP datagram carries (65535 less the headers).
  for (size_t size : {2049u, 65507u}) {
    EXPECT_EQ(client->QueueSend(server->local_address(), base::AsBytes(std::string(size, 'x'))),
              SendResult::kSent);
  }
  ASSERT_TRUE(RunUntil(*loop, [&] { return sizes.size() == 2; }));
  EXPECT_EQ(sizes, (std::vector<size_t>{2049, 65507}));
  EXPECT_EQ(server->truncated_datagrams(), 0u);
}

TEST(UdpSocketTest, ReusePortLetsTwoSocketsShareAPort) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  UdpSocketOptions reuse;
  reuse.reuse_port = true;
  int received_a = 0;
  int received_b = 0;
  auto a = MakeSocket(
      *loop, Loopback4(),
      [&](std::span<const Datagram> batch) { received_a += static_cast<int>(batch.size()); },
      reuse);
  ASSERT_TRUE(a);
  const SocketAddress shared = a->local_address();
  auto b = MakeSocket(
      *loop, shared,
      [&](std::span<const Datagram> batch) { received_b += static_cast<int>(batch.size()); },
      reuse);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->local_address(), shared);

  // Without the option the port is taken.
  auto c = UdpSocket::Create(*loop, shared, {}, [](auto) {});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, base::ErrorCode::kAlreadyExists);

  // Many source ports: the kernel spreads them over both sockets by hash;
  // whichever gets them, none is lost.
  constexpr int kClients = 32;
  std::vector<std::unique_ptr<UdpSocket>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(MakeSocket(*loop, Loopback4(), [](auto) {}));
    ASSERT_TRUE(clients.back());
    clients.back()->Send(shared, base::AsBytes("hello"));
  }
  EXPECT_TRUE(RunUntil(*loop, [&] { return received_a + received_b == kClients; }));
  EXPECT_GT(received_a, 0);
  EXPECT_GT(received_b, 0);
}

TEST(UdpSocketTest, Ipv4DestinationFromIpv6OnlySocketIsAnError) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto v6 = UdpSocket::Create(*loop, *SocketAddress::ParseIp("::1"), {}, [](auto) {});
  ASSERT_TRUE(v6) << "no IPv6 loopback";
  auto v4 = MakeSocket(*loop, Loopback4(), [](auto) {});
  ASSERT_TRUE(v4);
  EXPECT_NE((*v6)->Send(v4->local_address(), base::AsBytes("x")), SendResult::kSent);
  EXPECT_EQ(v4->Send(*SocketAddress::ParseIp("::1", 9), base::AsBytes("x")),
            SendResult::kUnroutable);
}

// A plain UDP socket for the client side, bound to `bind`, outside the loop.
struct RawUdp {
  explicit RawUdp(const SocketAddress& bind) {
    sockaddr_storage storage;
    socklen_t len = bind.ToSockaddr(&storage);
    fd = ::socket(storage.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&storage), len), 0) << std::strerror(errno);
  }
  ~RawUdp() { ::close(fd); }
  void SendTo(const SocketAddress& to, std::string_view text) const {
    sockaddr_storage storage;
    socklen_t len = to.ToSockaddr(&storage);
    EXPECT_EQ(::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&storage), len),
              static_cast<ssize_t>(text.size()));
  }
  // The next datagram as "text@source", or "" when none is waiting.
  std::string Receive() const {
    char buffer[256];
    sockaddr_storage storage;
    socklen_t len = sizeof(storage);
    ssize_t got = ::recvfrom(fd, buffer, sizeof(buffer), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&storage), &len);
    if (got < 0) {
      return "";
    }
    auto from = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), len);
    return std::string(buffer, static_cast<size_t>(got)) + "@" + (from ? from->ToString() : "?");
  }
  int fd = -1;
};

// A socket bound to a wildcard address learns where each datagram was sent
// (Datagram::to) and answers from there when asked to; without `from` the
// kernel picks the source by route (127.0.0.1 toward a loopback client),
// which a client that wrote to 127.0.0.2 (or its NAT) would drop.
void AnswersFromTheAddressWrittenTo(const SocketAddress& bind, const SocketAddress& client_bind,
                                    const char* written_to, const char* routed_from) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  UdpSocket* server_ptr = nullptr;
  std::vector<std::string> destinations;
  UdpSocketOptions options;
  options.receive_destinations = true;
  options.v6_only = false;
  auto server = MakeSocket(
      *loop, bind,
      [&](std::span<const Datagram> batch) {
        for (const Datagram& d : batch) {
          destinations.push_back(d.to.ToString());
          const std::string text(base::AsString(d.data));
          if (text == "queue") {
            EXPECT_EQ(server_ptr->QueueSend(d.from, d.data, &d.to), SendResult::kSent);
          } else if (text == "send") {
            EXPECT_EQ(server_ptr->Send(d.from, d.data, &d.to), SendResult::kSent);
          } else {
            EXPECT_EQ(server_ptr->QueueSend(d.from, d.data), SendResult::kSent);
          }
        }
      },
      options);
  ASSERT_TRUE(server);
  server_ptr = server.get();
  const uint16_t port = server->local_address().port();
  const SocketAddress target = *SocketAddress::ParseIp(written_to, port);

  RawUdp client(client_bind);
  std::vector<std::string> answers;
  for (const char* text : {"queue", "send", "plain"}) {
    client.SendTo(target, text);
    ASSERT_TRUE(RunUntil(*loop, [&] {
      std::string answer = client.Receive();
      if (!answer.empty()) {
        answers.push_back(answer);
      }
      return answers.size() == destinations.size() && !answers.empty() &&
             answers.back().starts_with(text);
    }));
  }
  const std::string here = target.ToString();
  const std::string routed = SocketAddress::ParseIp(routed_from, port)->ToString();
  EXPECT_EQ(destinations, (std::vector<std::string>{here, here, here}));
  EXPECT_EQ(answers,
            (std::vector<std::string>{"queue@" + here, "send@" + here, "plain@" + routed}));
}

TEST(UdpSocketTest, WildcardIpv4SocketAnswersFromTheAddressWrittenTo) {
  AnswersFromTheAddressWrittenTo(*SocketAddress::ParseIp("0.0.0.0"), Loopback4(), "127.0.0.2",
                                 "127.0.0.1");
}

TEST(UdpSocketTest, WildcardDualStackSocketAnswersIpv4FromTheAddressWrittenTo) {
  AnswersFromTheAddressWrittenTo(*SocketAddress::ParseIp("::"), Loopback4(), "127.0.0.3",
                                 "127.0.0.1");
}

TEST(UdpSocketTest, WildcardIpv6SocketReportsTheIpv6AddressWrittenTo) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> destinations;
  UdpSocketOptions options;
  options.receive_destinations = true;
  auto server = MakeSocket(
      *loop, *SocketAddress::ParseIp("::"),
      [&](std::span<const Datagram> batch) {
        for (const Datagram& d : batch) {
          destinations.push_back(d.to.ToString());
        }
      },
      options);
  ASSERT_TRUE(server);
  RawUdp client(*SocketAddress::ParseIp("::1"));
  client.SendTo(*SocketAddress::ParseIp("::1", server->local_address().port()), "x");
  ASSERT_TRUE(RunUntil(*loop, [&] { return !destinations.empty(); }));
  EXPECT_EQ(destinations[0], "[::1]:" + std::to_string(server->local_address().port()));
}

}  // namespace
}  // namespace turnkey::net
