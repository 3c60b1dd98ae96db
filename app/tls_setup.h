// The `tls:` certificate of `turnkey serve` and `turnkey check-config`:
// loading it for the listeners that use it, what to tell the operator about
// it, and when a reload keeps the running one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "net/tls_certificate.h"
#include "net/tls_context.h"

namespace turnkey::app {

// Loads tls.certificate and tls.private_key when a role that runs uses them
// (NeedsTls); a null context when none does. The error names the file and
// the reason.
base::Result<std::shared_ptr<net::TlsContext>> LoadTls(const config::Config& config);

// The info line logged on every load: "tls: FILE: NAME, valid until TIME".
std::string TlsLoadedLine(const config::Config& config, const net::TlsContext& context);

// The certificate's warnings (net::CertificateWarnings), each as
// "tls: FILE: ...".
std::vector<std::string> TlsWarnings(const config::Config& config, const net::TlsContext& context,
                                     int64_t now_unix);

// Whether a reload keeps the `running` certificate rather than take `next`:
// when `next` is not valid at `now_unix` (expired, or not valid for more
// than five minutes yet: clocks differ) while `running` is, since swapping
// would break every new TLS connection that works today. The reason for the
// log, or nullopt when `next` may replace `running`. At start there is
// nothing to keep, so an expired certificate is only warned about there.
std::optional<std::string> KeepRunningCertificate(const net::CertificateInfo& running,
                                                  const net::CertificateInfo& next,
                                                  int64_t now_unix);

}  // namespace turnkey::app
