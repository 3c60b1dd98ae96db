#include "app/echo_peer.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "net/socket_util.h"

namespace turnkey::app {
namespace {

TEST(EchoPeerTest, EchoesToTheSender) {
  auto peer = EchoPeer::Start(base::SocketAddress::V4({127, 0, 0, 1}, 0));
  ASSERT_TRUE(peer.has_value()) << peer.error().message;
  const base::SocketAddress address = (*peer)->address();
  EXPECT_NE(address.port(), 0);

  auto client = net::CreateBoundSocket(base::SocketAddress::V4({127, 0, 0, 1}, 0), SOCK_DGRAM,
                                       net::BindOptions{});
  ASSERT_TRUE(client.has_value());
  sockaddr_storage to{};
  const socklen_t to_length = address.ToSockaddr(&to);
  for (const char* text : {"one", "two", ""}) {
    ASSERT_EQ(::sendto(client->get(), text, std::strlen(text), 0,
                       reinterpret_cast<const sockaddr*>(&to), to_length),
              static_cast<ssize_t>(std::strlen(text)));
    pollfd p{client->get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no echo of \"" << text << "\"";
    char buffer[64];
    ssize_t got = ::recv(client->get(), buffer, sizeof(buffer), 0);
    ASSERT_EQ(got, static_cast<ssize_t>(std::strlen(text)));
    EXPECT_EQ(std::string(buffer, static_cast<size_t>(got)), text);
  }
  EXPECT_EQ((*peer)->received(), 3u);
}

TEST(EchoPeerTest, StopsPromptlyWhenIdle) {
  auto peer = EchoPeer::Start(base::SocketAddress::V4({127, 0, 0, 1}, 0));
  ASSERT_TRUE(peer.has_value());
  peer->reset();  // joins; would hang if the stop were not seen
}

}  // namespace
}  // namespace turnkey::app
