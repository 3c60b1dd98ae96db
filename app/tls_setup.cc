#include "app/tls_setup.h"

#include <set>

#include "app/probe_uri.h"
#include "app/relay_options.h"

namespace turnkey::app {

base::Result<std::shared_ptr<net::TlsContext>> LoadTls(const config::Config& config) {
  if (!NeedsTls(config)) {
    return std::shared_ptr<net::TlsContext>();
  }
  return net::TlsContext::CreateServer(config.tls.certificate, config.tls.private_key);
}

std::string TlsLoadedLine(const config::Config& config, const net::TlsContext& context) {
  return "tls: " + config.tls.certificate + ": " + net::DescribeCertificate(context.certificate());
}

std::vector<std::string> TlsWarnings(const config::Config& config, const net::TlsContext& context,
                                     int64_t now_unix) {
  std::vector<std::string> warnings = net::CertificateWarnings(context.certificate(), now_unix);
  // The names clients are given for TURN over TLS: browsers check the
  // certificate of a turns: server against the URI's host. Only a node that
  // serves TURN over TLS itself, and hands those URIs out, can compare; the
  // URIs may also name other hosts (TURN-only ones), hence "if".
  std::set<std::string> hosts;
  const std::vector<std::string> no_urls;
  const bool compare = config.signal.enabled && ServesTurnOverTls(config);
  for (const std::string& url : compare ? config.signal.ice_servers.urls : no_urls) {
    base::Result<ProbeUri> uri = ParseProbeUri(url);
    if (!uri ||
        (uri->scheme != ProbeUri::Scheme::kTurns && uri->scheme != ProbeUri::Scheme::kStuns)) {
      continue;
    }
    if (hosts.insert(uri->host).second &&
        !net::CertificateCoversHost(context.native(), uri->host)) {
      warnings.push_back("the certificate for " + context.certificate().name +
                         " is not valid for " + uri->host + " (signal.ice_servers.urls: " + url +
                         "); if " + uri->host +
                         " is this server, clients that check the name, as browsers do, refuse "
                         "TLS to it");
    }
  }
  for (std::string& warning : warnings) {
    warning = "tls: " + config.tls.certificate + ": " + warning;
  }
  return warnings;
}

std::optional<std::string> KeepRunningCertificate(const net::CertificateInfo& running,
                                                  const net::CertificateInfo& next,
                                                  int64_t now_unix) {
  // A certificate issued seconds ago reaches a host whose clock is behind
  // the CA's (certbot's deploy hook reloads at once): five minutes early is
  // taken, as clients allow too.
  constexpr int64_t kClockSkewSeconds = 300;
  const net::CertificateValidity next_validity = net::ValidityAt(next, now_unix);
  if (next_validity == net::CertificateValidity::kValid ||
      (next_validity == net::CertificateValidity::kNotYetValid &&
       next.not_before_unix - now_unix <= kClockSkewSeconds) ||
      net::ValidityAt(running, now_unix) != net::CertificateValidity::kValid) {
    return std::nullopt;
  }
  const std::string why = next_validity == net::CertificateValidity::kExpired
                              ? "expired at " + net::FormatUtc(next.not_after_unix)
                              : "is not valid before " + net::FormatUtc(next.not_before_unix);
  return "the new certificate for " + next.name + " " + why + ", the running one for " +
         running.name + " is valid until " + net::FormatUtc(running.not_after_unix);
}

}  // namespace turnkey::app
