#include "net/blocking_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "net/stream_listener.h"
#include "net/udp_socket.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using base::ByteView;
using base::SocketAddress;
using testing::LoopThread;
using testing::MakeLoop;

TEST(BlockingClientTest, UdpRoundTripAgainstUdpSocket) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  UdpSocket* server_ptr = nullptr;
  auto server = UdpSocket::Create(*loop, *SocketAddress::ParseIp("127.0.0.1"), {},
                                  [&](std::span<const Datagram> batch) {
                                    for (const Datagram& d : batch) {
                                      server_ptr->QueueSend(d.from, d.data);
                                    }
                                  });
  ASSERT_TRUE(server.has_value());
  server_ptr = server->get();
  LoopThread thread(*loop);
  thread.Start();

  BlockingClientOptions options;  // UDP by default
  auto client = BlockingClient::Connect("127.0.0.1", (*server)->local_address().port(), options);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  EXPECT_EQ((*client)->peer_address(), (*server)->local_address());
  for (int i = 0; i < 3; ++i) {
    std::string message = "probe " + std::to_string(i);
    ASSERT_TRUE((*client)->Send(base::AsBytes(message), 5s));
    auto reply = (*client)->ReceiveDatagram(5s);
    ASSERT_TRUE(reply.has_value()) << reply.error().message;
    EXPECT_EQ(base::AsString(*reply), message);
  }
  EXPECT_FALSE((*client)->ReceiveFrame([](ByteView) -> base::Result<size_t> { return 0; }, 1s));
}

TEST(BlockingClientTest, UdpReceiveTimesOutAtTheDeadline) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto silent = UdpSocket::Create(*loop, *SocketAddress::ParseIp("127.0.0.1"), {}, [](auto) {});
  ASSERT_TRUE(silent.has_value());
  auto client = BlockingClient::Connect("127.0.0.1", (*silent)->local_address().port(), {});
  ASSERT_TRUE(client.has_value());
  ASSERT_TRUE((*client)->Send(base::AsBytes("anyone?"), 1s));
  const auto start = std::chrono::steady_clock::now();
  auto reply = (*client)->ReceiveDatagram(100ms);
  EXPECT_FALSE(reply.has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
}

TEST(BlockingClientTest, TcpConnectToAClosedPortFails) {
  // Bind a listener to learn a free port, then close it.
  uint16_t port = 0;
  {
    auto loop = MakeLoop();
    ASSERT_TRUE(loop);
    auto listener = StreamListener::Create(*loop, *SocketAddress::ParseIp("127.0.0.1"), {}, nullptr,
                                           [](auto&) {});
    ASSERT_TRUE(listener.has_value());
    port = (*listener)->local_address().port();
  }
  BlockingClientOptions options;
  options.transport = Transport::kTcp;
  auto client = BlockingClient::Connect("127.0.0.1", port, options);
  ASSERT_FALSE(client.has_value());
  EXPECT_EQ(client.error().code, base::ErrorCode::kUnavailable);
}

TEST(BlockingClientTest, ResolvesNamesAndFallsBackOverAddresses) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto listener = StreamListener::Create(*loop, *SocketAddress::ParseIp("127.0.0.1"), {}, nullptr,
                                         [](StreamConnection& c) {
                                           c.SetCallbacks(
                                               [](StreamConnection& conn, ByteView data) {
                                                 conn.Write(data);
                                                 return data.size();
                                               },
                                               nullptr);
                                         });
  ASSERT_TRUE(listener.has_value());
  LoopThread thread(*loop);
  thread.Start();
  BlockingClientOptions options;
  options.transport = Transport::kTcp;
  // "localhost" may resolve to ::1 first, where nothing listens.
  auto client = BlockingClient::Connect("localhost", (*listener)->local_address().port(), options);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  EXPECT_EQ((*client)->peer_address().IpString(), "127.0.0.1");
  ASSERT_TRUE((*client)->Send(base::AsBytes("abcdef"), 5s));
  auto six = (*client)->ReceiveFrame(
      [](ByteView b) -> base::Result<size_t> { return b.size() >= 3 ? 3 : 0; }, 5s);
  ASSERT_TRUE(six.has_value());
  EXPECT_EQ(base::AsString(*six), "abc");
  // The rest was kept for the next frame.
  auto rest = (*client)->ReceiveFrame(
      [](ByteView b) -> base::Result<size_t> { return b.size() >= 3 ? 3 : 0; }, 5s);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(base::AsString(*rest), "def");
  // A framer error is reported as is.
  ASSERT_TRUE((*client)->Send(base::AsBytes("garbage"), 5s));
  auto bad = (*client)->ReceiveFrame(
      [](ByteView) -> base::Result<size_t> { return base::InvalidArgument("bad frame"); }, 5s);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "bad frame");
}

TEST(BlockingClientTest, UnresolvableNameFails) {
  auto client = BlockingClient::Connect("no-such-host.invalid", 3478, {});
  EXPECT_FALSE(client.has_value());
}

}  // namespace
}  // namespace turnkey::net
