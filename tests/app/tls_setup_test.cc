// When a reload keeps the running certificate instead of the new one, and
// what serve and check-config warn about a certificate.
#include "app/tls_setup.h"

#include <gtest/gtest.h>

#include <ctime>

#include "tests/net/net_test_util.h"

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

TEST(TlsWarningsTest, ATurnsHostTheCertificateIsNotForIsNamedOnce) {
  net::testing::TestCertificate cert;  // DNS:localhost, IP:127.0.0.1
  ASSERT_TRUE(cert.ok());
  auto context = net::TlsContext::CreateServer(cert.cert_path(), cert.key_path(), cert.cert_path());
  ASSERT_TRUE(context.has_value()) << context.error().message;
  config::Config config;
  config.tls.certificate = cert.cert_path();
  config.signal.enabled = true;
  config.signal.ice_servers.urls = {
      "stun:turn.example.org:3478",                 // no TLS: not checked
      "turn:turn.example.org:3478?transport=udp",   // no TLS: not checked
      "turns:localhost:5349?transport=tcp",         // covered
      "turns:127.0.0.1:443?transport=tcp",          // covered (IP subjectAltName)
      "turns:turn.example.org:5349?transport=tcp",  // not covered
      "turns:turn.example.org:443?transport=tcp",   // the same host: said once
  };
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  EXPECT_EQ(TlsWarnings(config, **context, now),
            std::vector<std::string>{
                "tls: " + cert.cert_path() +
                ": the certificate for localhost is not valid for turn.example.org "
                "(signal.ice_servers.urls: turns:turn.example.org:5349?transport=tcp); if "
                "turn.example.org is this server, clients that check the name, as browsers do, "
                "refuse TLS to it"});
  // A node without a TURN TLS listener (signaling only) has nothing to compare.
  std::erase_if(config.turn.listeners, [](const config::ListenerOptions& listener) {
    return listener.transport == config::Transport::kTls;
  });
  EXPECT_EQ(TlsWarnings(config, **context, now), std::vector<std::string>{});
  config.turn.listeners.push_back({.transport = config::Transport::kTls});
  // A TURN-only server hands out no URIs: nothing to compare.
  config.signal.enabled = false;
  EXPECT_EQ(TlsWarnings(config, **context, now), std::vector<std::string>{});
}

}  // namespace
}  // namespace turnkey::app
