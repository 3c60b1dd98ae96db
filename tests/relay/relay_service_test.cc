#include "relay/relay_service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "net/socket_util.h"

namespace turnkey::relay {
namespace {

const base::SocketAddress kLoopbackAnyPort = *base::SocketAddress::ParseIp("127.0.0.1", 0);

RelayServiceOptions OptionsFor(ClientTransport transport, const base::SocketAddress& address) {
  RelayServiceOptions options;
  options.threads = 2;
  options.worker.listeners.push_back(ListenerSpec{transport, address});
  return options;
}

// Another process's socket on a port, as a second turnkey would hold it:
// bound with SO_REUSEPORT (and listening, for TCP).
net::ScopedFd HoldPort(int type) {
  net::BindOptions options;
  options.reuse_port = true;
  auto fd = net::CreateBoundSocket(kLoopbackAnyPort, type, options);
  EXPECT_TRUE(fd.has_value());
  if (!fd) {
    return net::ScopedFd();
  }
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(fd->get(), 8), 0);
  }
  return std::move(*fd);
}

TEST(RelayServiceTest, RefusesAPortAnotherProcessHoldsWithReusePort) {
  for (auto [transport, type] : {std::pair{ClientTransport::kUdp, SOCK_DGRAM},
                                 std::pair{ClientTransport::kTcp, SOCK_STREAM}}) {
    SCOPED_TRACE(ClientTransportName(transport));
    net::ScopedFd held = HoldPort(type);
    ASSERT_TRUE(held.valid());
    auto address = net::LocalAddressOf(held.get());
    ASSERT_TRUE(address.has_value());
    auto service = RelayService::Create(OptionsFor(transport, *address), nullptr);
    ASSERT_FALSE(service.has_value());
    EXPECT_EQ(service.error().code, base::ErrorCode::kAlreadyExists);
    EXPECT_NE(service.error().message.find("in use by another process"), std::string::npos)
        << service.error().message;
  }
}

TEST(RelayServiceTest, WorkersShareTheirOwnPort) {
  auto service = RelayService::Create(OptionsFor(ClientTransport::kUdp, kLoopbackAnyPort), nullptr);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  ASSERT_EQ((*service)->worker_count(), 2u);
  const auto bound = (*service)->local_addresses();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_NE(bound[0].port(), 0);
  // The same configuration again (a second process) is refused.
  auto second = RelayService::Create(OptionsFor(ClientTransport::kUdp, bound[0]), nullptr);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, base::ErrorCode::kAlreadyExists);
}

}  // namespace
}  // namespace turnkey::relay
