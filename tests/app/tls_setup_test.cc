// When a reload keeps the running certificate instead of the new one.
#include "app/tls_setup.h"

#include <gtest/gtest.h>

namespace turnkey::app {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z

net::CertificateInfo Cert(const char* name, int64_t not_before, int64_t not_after) {
  return net::CertificateInfo{
      .name = name, .not_before_unix = not_before, .not_after_unix = not_after};
}

TEST(KeepRunningCertificateTest, AValidNewCertificateIsTaken) {
  const net::CertificateInfo running = Cert("old", kNow - 80 * kDay, kNow + 10 * kDay);
  EXPECT_EQ(KeepRunningCertificate(running, Cert("new", kNow - kDay, kNow + 89 * kDay), kNow),
            std::nullopt);
  // Whatever its chain: a self-signed certificate is only warned about.
  net::CertificateInfo self_signed = Cert("new", kNow - kDay, kNow + 89 * kDay);
  self_signed.chain_problem = "self-signed certificate";
  EXPECT_EQ(KeepRunningCertificate(running, self_signed, kNow), std::nullopt);
}

TEST(KeepRunningCertificateTest, AnExpiredOrFutureOneDoesNotReplaceAValidOne) {
  const net::CertificateInfo running = Cert("old", kNow - 80 * kDay, kNow + 10 * kDay);
  EXPECT_EQ(KeepRunningCertificate(running, Cert("new", kNow - 90 * kDay, kNow - kDay), kNow),
            "the new certificate for new expired at 2025-12-31T00:00:00Z, the running one for "
            "old is valid until 2026-01-11T00:00:00Z");
  EXPECT_EQ(KeepRunningCertificate(running, Cert("new", kNow + kDay, kNow + 90 * kDay), kNow),
            "the new certificate for new is not valid before 2026-01-02T00:00:00Z, the running "
            "one for old is valid until 2026-01-11T00:00:00Z");
}

TEST(KeepRunningCertificateTest, OneIssuedMinutesAheadOfThisHostsClockIsTaken) {
  const net::CertificateInfo running = Cert("old", kNow - 80 * kDay, kNow + 10 * kDay);
  EXPECT_EQ(KeepRunningCertificate(running, Cert("new", kNow + 300, kNow + 90 * kDay), kNow),
            std::nullopt);
  EXPECT_NE(KeepRunningCertificate(running, Cert("new", kNow + 301, kNow + 90 * kDay), kNow),
            std::nullopt);
}

TEST(KeepRunningCertificateTest, WhenTheRunningOneIsNotValidEitherTheNewOneIsTaken) {
  // Nothing that works today would break, and the operator sees the new
  // certificate's warning and expiry gauge.
  const net::CertificateInfo expired = Cert("old", kNow - 90 * kDay, kNow - 2 * kDay);
  EXPECT_EQ(KeepRunningCertificate(expired, Cert("new", kNow - 90 * kDay, kNow - kDay), kNow),
            std::nullopt);
  EXPECT_EQ(KeepRunningCertificate(expired, Cert("new", kNow + kDay, kNow + 90 * kDay), kNow),
            std::nullopt);
}

}  // namespace
}  // namespace turnkey::app
