#include "net/udp_socket_set.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>

#include "net/socket_util.h"
#include "net/udp_socket.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using base::SocketAddress;
using testing::MakeLoop;
using testing::RunUntil;

SocketAddress Loopback4() { return *SocketAddress::ParseIp("127.0.0.1", 0); }

struct Received {
  void* context;
  SocketAddress from;
  std::string data;
};

// Two relay-style sockets in one set and an outside peer: datagrams reach
// the set's handler with the right context, queued sends from different
// sockets interleave without mixing up their source, and a large datagram
// bypasses the batch.
TEST(UdpSocketSetTest, RoutesByContextAndKeepsEachSendOnItsSocket) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<Received> at_set;
  UdpSocketSetOptions options;
  options.batch_size = 4;
  options.max_datagram_bytes = 64;
  auto set = UdpSocketSet::Create(*loop, options, [&](void* context, auto batch) {
    for (const Datagram& d : batch) {
      at_set.push_back({context, d.from, std::string(base::AsString(d.data))});
    }
  });
  ASSERT_TRUE(set.has_value()) << set.error().message;
  int tag_a = 0;
  int tag_b = 0;
  auto a = (*set)->Open(Loopback4(), {}, &tag_a);
  auto b = (*set)->Open(Loopback4(), {}, &tag_b);
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*set)->open_count(), 2u);

  std::vector<Received> at_peer;
  auto peer = UdpSocket::Create(*loop, Loopback4(), {}, [&](std::span<const Datagram> batch) {
    for (const Datagram& d : batch) {
      at_peer.push_back({nullptr, d.from, std::string(base::AsString(d.data))});
    }
  });
  ASSERT_TRUE(peer);

  const SocketAddress to = (*peer)->local_address();
  for (int i = 0; i < 10; ++i) {
    const std::string text = "m" + std::to_string(i);
    ASSERT_EQ((*set)->QueueSend(i % 3 == 0 ? *a : *b, to, base::AsBytes(text)), SendResult::kSent);
  }
  const std::string large(200, 'x');
  ASSERT_EQ((*set)->QueueSend(*a, to, base::AsBytes(large)), SendResult::kSent);
  ASSERT_TRUE(RunUntil(*loop, [&] { return at_peer.size() == 11; }));
  for (const Received& r : at_peer) {
    if (r.data == large) {
      EXPECT_EQ(r.from, UdpSocketSet::LocalAddress(*a));
      continue;
    }
    const int i = std::stoi(r.data.substr(1));
    EXPECT_EQ(r.from, UdpSocketSet::LocalAddress(i % 3 == 0 ? *a : *b)) << r.data;
  }

  ASSERT_EQ((*peer)->Send(UdpSocketSet::LocalAddress(*a), base::AsBytes(std::string("to-a"))),
            SendResult::kSent);
  ASSERT_EQ((*peer)->Send(UdpSocketSet::LocalAddress(*b), base::AsBytes(std::string("to-b"))),
            SendResult::kSent);
  ASSERT_TRUE(RunUntil(*loop, [&] { return at_set.size() == 2; }));
  for (const Received& r : at_set) {
    EXPECT_EQ(r.context, r.data == "to-a" ? static_cast<void*>(&tag_a) : &tag_b);
    EXPECT_EQ(r.from, to);
  }
  EXPECT_EQ((*set)->dropped_sends() + (*set)->send_errors(), 0u);
}

int MtuDiscover(int fd) {
  int value = -1;
  socklen_t len = sizeof(value);
  EXPECT_EQ(::getsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &value, &len), 0);
  return value;
}

// RFC 8656 section 14: relayed datagrams leave with DF clear, unless the
// allocation asked for DONT-FRAGMENT (the socket's option) or one Send
// indication did (SendDontFragment, which leaves the socket as it was).
TEST(UdpSocketSetTest, DontFragmentIsOffUnlessAskedForBySocketOrDatagram) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> at_peer;
  auto peer = UdpSocket::Create(*loop, Loopback4(), {}, [&](std::span<const Datagram> batch) {
    for (const Datagram& d : batch) {
      at_peer.emplace_back(base::AsString(d.data));
    }
  });
  ASSERT_TRUE(peer);
  EXPECT_EQ(MtuDiscover((*peer)->fd()), IP_PMTUDISC_DONT);
  auto set = UdpSocketSet::Create(*loop, {}, [](void*, auto) {});
  ASSERT_TRUE(set.has_value());
  UdpOpenOptions df;
  df.dont_fragment = true;
  auto plain = (*set)->Open(Loopback4(), {}, nullptr);
  auto always = (*set)->Open(Loopback4(), df, nullptr);
  ASSERT_TRUE(plain && always);
  EXPECT_EQ(MtuDiscover(UdpSocketSet::Fd(*plain)), IP_PMTUDISC_DONT);
  EXPECT_EQ(MtuDiscover(UdpSocketSet::Fd(*always)), IP_PMTUDISC_DO);

  const SocketAddress to = (*peer)->local_address();
  (*set)->QueueSend(*plain, to, base::AsBytes("queued"));
  EXPECT_EQ((*set)->SendDontFragment(*plain, to, base::AsBytes("df")), SendResult::kSent);
  EXPECT_EQ((*set)->SendDontFragment(*always, to, base::AsBytes("df again")), SendResult::kSent);
  EXPECT_EQ(MtuDiscover(UdpSocketSet::Fd(*plain)), IP_PMTUDISC_DONT);
  EXPECT_EQ(MtuDiscover(UdpSocketSet::Fd(*always)), IP_PMTUDISC_DO);
  ASSERT_TRUE(RunUntil(*loop, [&] { return at_peer.size() == 3; }));
  EXPECT_EQ(at_peer, (std::vector<std::string>{"queued", "df", "df again"}));
}

TEST(UdpSocketSetTest, CloseSendsWhatWasQueuedAndPortInUseIsReported) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto set = UdpSocketSet::Create(*loop, {}, [](void*, auto) {});
  ASSERT_TRUE(set.has_value());
  std::vector<std::string> at_peer;
  auto peer = UdpSocket::Create(*loop, Loopback4(), {}, [&](std::span<const Datagram> batch) {
    for (const Datagram& d : batch) {
      at_peer.emplace_back(base::AsString(d.data));
    }
  });
  ASSERT_TRUE(peer);
  auto a = (*set)->Open(Loopback4(), {}, nullptr);
  ASSERT_TRUE(a);
  const SocketAddress bound = UdpSocketSet::LocalAddress(*a);
  bool in_use = false;
  EXPECT_FALSE((*set)->Open(bound, {}, nullptr, &in_use).has_value());
  EXPECT_TRUE(in_use);
  ASSERT_EQ((*set)->QueueSend(*a, (*peer)->local_address(), base::AsBytes(std::string("last"))),
            SendResult::kSent);
  (*set)->Close(*a);
  EXPECT_EQ((*set)->open_count(), 0u);
  ASSERT_TRUE(RunUntil(*loop, [&] { return at_peer.size() == 1; }));
  EXPECT_EQ(at_peer[0], "last");
  // The port is free again.
  EXPECT_TRUE((*set)->Open(bound, {}, nullptr).has_value());
}

// The flush handler hears what sendmmsg took: a datagram the kernel refuses
// (broadcast without SO_BROADCAST: EACCES, or no route) is an error, not sent,
// and only the bytes of the sent ones are reported.
TEST(UdpSocketSetTest, FlushHandlerReportsWhatTheKernelTook) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto set = UdpSocketSet::Create(*loop, {}, [](void*, auto) {});
  ASSERT_TRUE(set.has_value());
  std::vector<SendBatch::FlushResult> reports;
  (*set)->SetFlushHandler([&](const SendBatch::FlushResult& r) { reports.push_back(r); });
  size_t at_peer = 0;
  auto peer = UdpSocket::Create(*loop, Loopback4(), {},
                                [&](std::span<const Datagram> batch) { at_peer += batch.size(); });
  ASSERT_TRUE(peer);
  auto a = (*set)->Open(Loopback4(), {}, nullptr);
  ASSERT_TRUE(a);
  const SocketAddress broadcast = *SocketAddress::ParseIp("255.255.255.255", 9);
  ASSERT_EQ((*set)->QueueSend(*a, (*peer)->local_address(), base::AsBytes(std::string("one"))),
            SendResult::kSent);
  ASSERT_EQ((*set)->QueueSend(*a, broadcast, base::AsBytes(std::string("refused"))),
            SendResult::kSent);
  ASSERT_EQ((*set)->QueueSend(*a, (*peer)->local_address(), base::AsBytes(std::string("three"))),
            SendResult::kSent);
  EXPECT_TRUE(reports.empty());  // queued, not sent yet
  (*set)->Flush();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].sent, 2u);
  EXPECT_EQ(reports[0].sent_bytes, 8u);
  EXPECT_EQ(reports[0].dropped + reports[0].errors, 1u);
  ASSERT_TRUE(RunUntil(*loop, [&] { return at_peer == 2; }));
}

// A bound socket holds its port before any set reads it; once adopted it
// reads like an opened one.
TEST(UdpSocketSetTest, BoundSocketHoldsItsPortUntilAdopted) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> received;
  int tag = 0;
  auto set = UdpSocketSet::Create(*loop, {}, [&](void* context, auto batch) {
    EXPECT_EQ(context, &tag);
    for (const Datagram& d : batch) {
      received.emplace_back(base::AsString(d.data));
    }
  });
  ASSERT_TRUE(set.has_value());
  auto bound = UdpSocketSet::Bind(Loopback4(), {});
  ASSERT_TRUE(bound.has_value());
  const SocketAddress address = UdpSocketSet::BoundAddress(*bound);
  ASSERT_NE(address.port(), 0);
  bool in_use = false;
  EXPECT_FALSE(UdpSocketSet::Bind(address, {}, &in_use).has_value());
  EXPECT_TRUE(in_use);
  auto a = (*set)->Adopt(*bound, {}, &tag);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(UdpSocketSet::LocalAddress(*a), address);
  auto sender = UdpSocket::Create(*loop, Loopback4(), {}, [](std::span<const Datagram>) {});
  ASSERT_TRUE(sender);
  ASSERT_EQ((*sender)->Send(address, base::AsBytes(std::string("hello"))), SendResult::kSent);
  ASSERT_TRUE(RunUntil(*loop, [&] { return received.size() == 1; }));
  EXPECT_EQ(received[0], "hello");
}

// A UDP port nothing listens on, on `loopback` (bound, then closed).
SocketAddress ClosedPort(const SocketAddress& loopback) {
  auto fd = CreateBoundSocket(loopback, SOCK_DGRAM, {});
  EXPECT_TRUE(fd);
  return *LocalAddressOf(fd->get());
}

// A socket opened with receive_errors reports the ICMP port unreachable the
// kernel gets back for what it sent to a closed port, with the datagram's
// destination; the error pending on the socket costs neither the next send
// to someone else (the send is tried again) nor a datagram waiting to be
// read. One without receive_errors never hears of it.
void CheckIcmpPortUnreachable(const SocketAddress& loopback, bool v6) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::vector<std::string> at_set;
  auto set = UdpSocketSet::Create(*loop, {}, [&](void*, std::span<const Datagram> batch) {
    for (const Datagram& d : batch) {
      at_set.emplace_back(reinterpret_cast<const char*>(d.data.data()), d.data.size());
    }
  });
  ASSERT_TRUE(set.has_value());
  std::vector<std::pair<void*, IcmpError>> errors;
  (*set)->SetIcmpHandler(
      [&](void* context, const IcmpError& e) { errors.emplace_back(context, e); });
  std::vector<SendBatch::FlushResult> reports;
  (*set)->SetFlushHandler([&](const SendBatch::FlushResult& r) { reports.push_back(r); });
  size_t at_peer = 0;
  auto peer = UdpSocket::Create(*loop, loopback, {},
                                [&](std::span<const Datagram> batch) { at_peer += batch.size(); });
  ASSERT_TRUE(peer);
  int hearing = 1;
  int deaf = 2;
  auto a = (*set)->Open(loopback, {.receive_errors = true}, &hearing);
  auto b = (*set)->Open(loopback, {}, &deaf);
  ASSERT_TRUE(a && b);
  const SocketAddress closed = ClosedPort(loopback);

  const auto send = [&](UdpSocketSet::Handle from, const SocketAddress& to, std::string text) {
    ASSERT_EQ((*set)->QueueSend(from, to, base::AsBytes(text)), SendResult::kSent);
    (*set)->Flush();
  };
  send(*b, closed, "nobody");
  send(*a, closed, "nobody");
  // Loopback answers at once: the error is pending on `a` now, and a
  // datagram arrives behind it.
  ASSERT_EQ((*peer)->Send((*set)->LocalAddress(*a), base::AsBytes(std::string("back"))),
            SendResult::kSent);
  ASSERT_TRUE(RunUntil(*loop, [&] { return !errors.empty() && at_set.size() == 1; }));
  EXPECT_EQ(at_set[0], "back");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, &hearing);
  EXPECT_EQ(errors[0].second.destination, closed);
  EXPECT_EQ(errors[0].second.v6, v6);
  EXPECT_EQ(errors[0].second.type, v6 ? 1 : 3);  // destination unreachable
  EXPECT_EQ(errors[0].second.code, v6 ? 4 : 3);  // port unreachable

  // Pending again, now before a send to someone else.
  send(*a, closed, "nobody");
  send(*a, (*peer)->local_address(), "one");
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_EQ(reports[3].sent, 1u);
  EXPECT_EQ(reports[3].errors, 0u);
  ASSERT_TRUE(RunUntil(*loop, [&] { return errors.size() == 2 && at_peer == 1; }));
  EXPECT_EQ(errors[1].second.destination, closed);
}

TEST(UdpSocketSetTest, IcmpPortUnreachableIpv4) { CheckIcmpPortUnreachable(Loopback4(), false); }

TEST(UdpSocketSetTest, IcmpPortUnreachableIpv6) {
  CheckIcmpPortUnreachable(*SocketAddress::ParseIp("::1", 0), true);
}

}  // namespace
}  // namespace turnkey::net
