#include "net/connection_budget.h"

#include <gtest/gtest.h>

#include <memory>
#include <string_view>

namespace turnkey::net {
namespace {

using Verdict = ConnectionBudget::Verdict;

base::SocketAddress Ip(std::string_view text, uint16_t port = 40000) {
  auto address = base::SocketAddress::ParseIp(text, port);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(base::SocketAddress{});
}

base::Cidr Net(std::string_view text) {
  auto cidr = base::ParseCidr(text);
  EXPECT_TRUE(cidr.has_value()) << text;
  return cidr.value_or(base::Cidr{});
}

TEST(ConnectionBudgetTest, LimitsEachClientAndGivesPlacesBack) {
  ConnectionBudget budget({.max_per_client = 2});
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1", 1)), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1", 2)), Verdict::kTaken);
  // Ports do not matter; the same address is the same client.
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1", 3)), Verdict::kClientFull);
  EXPECT_EQ(budget.TryTake(Ip("::ffff:192.0.2.1", 3)), Verdict::kClientFull);
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.2")), Verdict::kTaken);
  EXPECT_EQ(budget.held(), 3u);
  EXPECT_EQ(budget.refused(), 2u);
  budget.Give(Ip("192.0.2.1", 1));
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1", 4)), Verdict::kTaken);
  budget.Give(Ip("192.0.2.1"));
  budget.Give(Ip("192.0.2.1"));
  budget.Give(Ip("192.0.2.2"));
  EXPECT_EQ(budget.held(), 0u);
  EXPECT_EQ(budget.clients(), 0u);  // nothing kept for clients that left
}

TEST(ConnectionBudgetTest, AnIpv6ClientIsItsSlash64) {
  ConnectionBudget budget({.max_per_client = 1});
  EXPECT_EQ(budget.TryTake(Ip("2001:db8:1:2::1")), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("2001:db8:1:2:ffff::9")), Verdict::kClientFull);
  EXPECT_EQ(budget.TryTake(Ip("2001:db8:1:3::1")), Verdict::kTaken);
}

TEST(ConnectionBudgetTest, ExemptClientsCountOnlyTowardsTheTotal) {
  ConnectionBudget budget({.max_total = 4, .max_per_client = 1, .exempt = {Net("127.0.0.1/32")}});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(budget.TryTake(Ip("127.0.0.1")), Verdict::kTaken);
  }
  EXPECT_EQ(budget.TryTake(Ip("127.0.0.2")), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("127.0.0.1")), Verdict::kTotalFull);
  EXPECT_EQ(budget.clients(), 1u);
}

TEST(ConnectionBudgetTest, LoopbackClientsMayBeExempt) {
  ConnectionBudget budget({.max_total = 5, .max_per_client = 1, .exempt_loopback = true});
  EXPECT_EQ(budget.TryTake(Ip("127.0.0.1")), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("127.0.0.1")), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("127.9.9.9")), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("::1")), Verdict::kTaken);
  EXPECT_EQ(budget.clients(), 0u);
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1")), Verdict::kTaken);
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1")), Verdict::kTotalFull);
  budget.Give(Ip("127.0.0.1"));
  budget.Give(Ip("::1"));
  EXPECT_EQ(budget.TryTake(Ip("192.0.2.1")), Verdict::kClientFull);
  EXPECT_EQ(budget.held(), 3u);
  // Off by default.
  ConnectionBudget strict({.max_per_client = 1});
  EXPECT_EQ(strict.TryTake(Ip("127.0.0.1")), Verdict::kTaken);
  EXPECT_EQ(strict.TryTake(Ip("127.0.0.1")), Verdict::kClientFull);
}

TEST(ConnectionBudgetTest, APlaceIsTakenInTheParentToo) {
  auto process = std::make_shared<ConnectionBudget>(ConnectionBudgetOptions{.max_total = 3});
  ConnectionBudget signal({.max_per_client = 2}, process);
  ConnectionBudget turn({.max_per_client = 2}, process);
  EXPECT_EQ(signal.TryTake(Ip("192.0.2.1")), Verdict::kTaken);
  EXPECT_EQ(signal.TryTake(Ip("192.0.2.1")), Verdict::kTaken);
  // Each child has its own per-client count.
  EXPECT_EQ(turn.TryTake(Ip("192.0.2.1")), Verdict::kTaken);
  EXPECT_EQ(process->held(), 3u);
  // The parent is full: refused there, nothing kept here.
  EXPECT_EQ(turn.TryTake(Ip("192.0.2.9")), Verdict::kTotalFull);
  EXPECT_EQ(turn.held(), 1u);
  EXPECT_EQ(turn.clients(), 1u);
  signal.Give(Ip("192.0.2.1"));
  EXPECT_EQ(process->held(), 2u);
  EXPECT_EQ(turn.TryTake(Ip("192.0.2.9")), Verdict::kTaken);
}

TEST(ConnectionBudgetTest, TheProcessBudgetLeavesAReserveUnderTheFileLimit) {
  const size_t files = RaiseFileLimit();
  const size_t total = ProcessConnectionBudget()->max_total();
  EXPECT_GT(total, 0u);
  // A quarter, at least 64, is kept back.
  EXPECT_EQ(total, files - std::max<size_t>(files / 4, 64));
}

}  // namespace
}  // namespace turnkey::net
