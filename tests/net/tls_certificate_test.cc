// CertificateInfo: what is read from a loaded certificate (name, validity,
// chain) and the warnings derived from it at a given time.
#include "net/tls_certificate.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "net/tls_context.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using testing::TestCertificate;
using testing::TestCertificateChain;

constexpr int64_t kDay = 86400;
// 2026-01-01T00:00:00Z
constexpr int64_t kJan2026 = 1767225600;

CertificateInfo Info(int64_t not_before, int64_t not_after, std::string chain_problem = "") {
  return CertificateInfo{.name = "turn.example.org",
                         .not_before_unix = not_before,
                         .not_after_unix = not_after,
                         .chain_problem = std::move(chain_problem)};
}

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

TEST(CertificateInfoTest, ValidityIncludesBothEnds) {
  const CertificateInfo info = Info(kJan2026, kJan2026 + 90 * kDay);
  EXPECT_EQ(ValidityAt(info, kJan2026 - 1), CertificateValidity::kNotYetValid);
  EXPECT_EQ(ValidityAt(info, kJan2026), CertificateValidity::kValid);
  EXPECT_EQ(ValidityAt(info, kJan2026 + 90 * kDay), CertificateValidity::kValid);
  EXPECT_EQ(ValidityAt(info, kJan2026 + 90 * kDay + 1), CertificateValidity::kExpired);
}

TEST(CertificateInfoTest, FormatsUtc) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(kJan2026 + 3661), "2026-01-01T01:01:01Z");
  EXPECT_EQ(DescribeCertificate(Info(0, kJan2026)),
            "turn.example.org, valid until 2026-01-01T00:00:00Z");
}

TEST(CertificateInfoTest, NoWarningForAValidTrustedCertificate) {
  EXPECT_EQ(CertificateWarnings(Info(kJan2026, kJan2026 + 90 * kDay), kJan2026 + kDay),
            std::vector<std::string>{});
}

TEST(CertificateInfoTest, WarnsAboutExpiryStartAndChainEachOnce) {
  const CertificateInfo info = Info(kJan2026, kJan2026 + 90 * kDay);
  EXPECT_EQ(CertificateWarnings(info, kJan2026 + 93 * kDay),
            std::vector<std::string>{
                "the certificate for turn.example.org expired at 2026-04-01T00:00:00Z (3 days "
                "ago); clients refuse it"});
  EXPECT_EQ(CertificateWarnings(info, kJan2026 - 10),
            std::vector<std::string>{"the certificate for turn.example.org is not valid before "
                                     "2026-01-01T00:00:00Z; clients refuse it until then"});
  const std::vector<std::string> both =
      CertificateWarnings(Info(0, kJan2026, "self-signed certificate"), kJan2026 + 1);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_NE(both[0].find("expired"), std::string::npos) << both[0];
  EXPECT_NE(both[1].find("do not lead to a trusted root (self-signed certificate)"),
            std::string::npos)
      << both[1];
}

TEST(CertificateInfoTest, ReadsNameValidityAndChainFromALoadedCertificate) {
  TestCertificate cert(5 * kDay);
  ASSERT_TRUE(cert.ok());
  // The system store does not hold a certificate made a moment ago.
  auto untrusted = TlsContext::CreateServer(cert.cert_path(), cert.key_path());
  ASSERT_TRUE(untrusted.has_value()) << untrusted.error().message;
  const CertificateInfo& info = (*untrusted)->certificate();
  EXPECT_EQ(info.name, "localhost");
  EXPECT_NEAR(static_cast<double>(info.not_before_unix), static_cast<double>(Now() - 3600), 120);
  EXPECT_NEAR(static_cast<double>(info.not_after_unix), static_cast<double>(Now() + 5 * kDay), 120);
  EXPECT_EQ(info.chain_problem, "self-signed certificate");
  // Trusted as its own root, the chain is complete.
  auto trusted = TlsContext::CreateServer(cert.cert_path(), cert.key_path(), cert.cert_path());
  ASSERT_TRUE(trusted.has_value()) << trusted.error().message;
  EXPECT_EQ((*trusted)->certificate().chain_problem, "");
  EXPECT_EQ(CertificateWarnings((*trusted)->certificate(), Now()), std::vector<std::string>{});
}

TEST(CertificateInfoTest, AnExpiredCertificateLoadsAndIsReportedOnlyAsExpired) {
  TestCertificate cert(-2 * kDay);
  ASSERT_TRUE(cert.ok());
  auto context = TlsContext::CreateServer(cert.cert_path(), cert.key_path(), cert.cert_path());
  ASSERT_TRUE(context.has_value()) << context.error().message;
  const CertificateInfo& info = (*context)->certificate();
  EXPECT_EQ(ValidityAt(info, Now()), CertificateValidity::kExpired);
  // Time is not part of the chain check: one warning, not two.
  EXPECT_EQ(info.chain_problem, "");
  const std::vector<std::string> warnings = CertificateWarnings(info, Now());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("the certificate for localhost expired at "), std::string::npos)
      << warnings[0];
}

TEST(CertificateInfoTest, CoversTheNamesAndAddressesOfItsSubjectAltNames) {
  TestCertificate cert;  // DNS:localhost, IP:127.0.0.1
  ASSERT_TRUE(cert.ok());
  auto context = TlsContext::CreateServer(cert.cert_path(), cert.key_path());
  ASSERT_TRUE(context.has_value()) << context.error().message;
  ssl_ctx_st* ctx = (*context)->native();
  EXPECT_TRUE(CertificateCoversHost(ctx, "localhost"));
  EXPECT_TRUE(CertificateCoversHost(ctx, "LocalHost"));  // DNS names ignore case
  EXPECT_TRUE(CertificateCoversHost(ctx, "127.0.0.1"));
  EXPECT_FALSE(CertificateCoversHost(ctx, "turn.example.org"));
  EXPECT_FALSE(CertificateCoversHost(ctx, "sub.localhost"));
  EXPECT_FALSE(CertificateCoversHost(ctx, "127.0.0.2"));
  EXPECT_FALSE(CertificateCoversHost(ctx, "::1"));
  EXPECT_FALSE(CertificateCoversHost(ctx, ""));
}

TEST(CertificateInfoTest, AFullChainFileReachesItsRootAndALeafAloneDoesNot) {
  TestCertificateChain chain;
  ASSERT_TRUE(chain.ok());
  // certbot's fullchain.pem: the leaf, then the intermediate that signed it.
  auto full = TlsContext::CreateServer(chain.fullchain_path(), chain.key_path(), chain.root_path());
  ASSERT_TRUE(full.has_value()) << full.error().message;
  EXPECT_EQ((*full)->certificate().name, "localhost");
  EXPECT_EQ((*full)->certificate().chain_problem, "");
  EXPECT_EQ(CertificateWarnings((*full)->certificate(), Now()), std::vector<std::string>{});
  // cert.pem without the intermediate: clients that do not have it cannot
  // build the chain, and the load says so.
  auto leaf = TlsContext::CreateServer(chain.leaf_path(), chain.key_path(), chain.root_path());
  ASSERT_TRUE(leaf.has_value()) << leaf.error().message;
  EXPECT_EQ((*leaf)->certificate().chain_problem, "unable to get local issuer certificate");
  // The whole chain, but a root nobody trusts.
  auto untrusted = TlsContext::CreateServer(chain.fullchain_path(), chain.key_path());
  ASSERT_TRUE(untrusted.has_value()) << untrusted.error().message;
  EXPECT_EQ((*untrusted)->certificate().chain_problem, "unable to get local issuer certificate");
}

}  // namespace
}  // namespace turnkey::net
