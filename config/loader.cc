#include "config/loader.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <utility>

#include "base/cidr.h"
#include "config/diagnostics.h"
#include "config/duration.h"
#include "config/field_checks.h"
#include "config/secret_files.h"
#include "config/validate.h"
#include "config/yaml_read.h"

namespace turnkey::config {
namespace {

using yaml_read::AsDuration;
using yaml_read::AsEnum;
using yaml_read::AsListOf;
using yaml_read::AsNumber;
using yaml_read::AsUnsigned;
using yaml_read::Checked;
using yaml_read::DecodeBool;
using yaml_read::DecodeCidr;
using yaml_read::DecodeIp;
using yaml_read::DecodeIpPort;
using yaml_read::DecodeItemMapping;
using yaml_read::DecodeLongTermKey;
using yaml_read::DecodeLongTermKeySha256;
using yaml_read::DecodeNonEmptyString;
using yaml_read::DecodeOptionalIp;
using yaml_read::DecodePort;
using yaml_read::DecodeString;
using yaml_read::EnumName;
using yaml_read::JoinPath;
using yaml_read::KindName;
using yaml_read::MarkLine;
using yaml_read::Node;
using yaml_read::Section;
using yaml_read::Where;

// A config file is a few kilobytes; refusing big ones early bounds the
// parser's memory on a mistaken path such as a log file.
constexpr std::uintmax_t kMaxConfigBytes = 4 * 1024 * 1024;

constexpr EnumName<Transport> kTransports[] = {{"udp", Transport::kUdp},
                                               {"tcp", Transport::kTcp},
                                               {"tls", Transport::kTls},
                                               {"dtls", Transport::kDtls}};
constexpr EnumName<base::LogLevel> kLogLevels[] = {
    {"trace", base::LogLevel::kTrace}, {"debug", base::LogLevel::kDebug},
    {"info", base::LogLevel::kInfo},   {"warn", base::LogLevel::kWarn},
    {"error", base::LogLevel::kError}, {"off", base::LogLevel::kOff}};
constexpr EnumName<base::LogFormat> kLogFormats[] = {{"text", base::LogFormat::kText},
                                                     {"json", base::LogFormat::kJson}};
constexpr EnumName<Registration> kRegistrations[] = {{"open", Registration::kOpen},
                                                     {"closed", Registration::kClosed}};
constexpr EnumName<RelayFamily> kRelayFamilies[] = {{"ipv4", RelayFamily::kIpv4},
                                                    {"ipv6", RelayFamily::kIpv6}};
constexpr EnumName<DatabaseDriver> kDrivers[] = {{"sqlite", DatabaseDriver::kSqlite},
                                                 {"mysql", DatabaseDriver::kMysql}};

// ---- Sections.

constexpr std::chrono::seconds kZeroSeconds{0};
constexpr std::chrono::seconds kOneSecond{1};
constexpr std::chrono::milliseconds kOneMilli{1};
constexpr std::chrono::milliseconds kZeroMillis{0};
constexpr std::chrono::milliseconds kTenSeconds{10000};
constexpr std::chrono::milliseconds kOneSecondMs{1000};
constexpr std::chrono::milliseconds kSixtySeconds{60000};

void DecodeListener(Section& s, ListenerOptions& listener, const Where& at) {
  std::optional<Transport> transport;
  s.Read("transport", transport, AsEnum(kTransports, "transport"));
  if (!s.Has("transport")) {
    at.diag.Error(at.line, JoinPath(at.path, "transport"),
                  "missing (expected udp, tcp, tls or dtls)");
  }
  listener.transport = transport.value_or(Transport::kUdp);
  base::SocketAddress address = base::SocketAddress::V4({0, 0, 0, 0}, 0);
  s.Read("address", address, DecodeIp);
  // The usual port of the transport when none is given (RFC 8656 section 4).
  uint16_t port =
      listener.transport == Transport::kTls || listener.transport == Transport::kDtls ? 5349 : 3478;
  s.Read("port", port, DecodePort);
  address.set_port(port);
  listener.address = address;
}

void DecodeRelay(Section& s, RelayOptions& relay) {
  s.Read("addresses", relay.addresses, AsListOf(DecodeIp));
  s.Read("external_addresses", relay.external_addresses, AsListOf(DecodeIp));
  s.Read("default_family", relay.default_family, AsEnum(kRelayFamilies, "address family"));
  s.Nested("ports", [&](Section& ports) {
    ports.Read("min", relay.ports.min, DecodePort);
    ports.Read("max", relay.ports.max, DecodePort);
  });
}

void DecodeAuth(Section& s, AuthOptions& auth) {
  s.Read("secrets", auth.secrets, AsListOf(DecodeNonEmptyString));
  s.Read("secrets_file", auth.secrets_file, DecodeString);
  s.Read("static_users", auth.static_users, AsListOf([](const Node& node, const Where& at) {
           return DecodeItemMapping<StaticUser>(
               node, at, [](Section& user, StaticUser& out, const Where& item_at) {
                 user.Read("name", out.name, DecodeNonEmptyString);
                 user.Read("key", out.key, DecodeLongTermKey);
                 user.Read("key_sha256", out.key_sha256, DecodeLongTermKeySha256);
                 for (std::string_view required : {"name", "key"}) {
                   if (!user.Has(required)) {
                     item_at.diag.Error(item_at.line, JoinPath(item_at.path, required), "missing");
                   }
                 }
               });
         }));
  s.Read("nonce_lifetime", auth.nonce_lifetime, AsDuration(kOneSecond));
}

void DecodeTurn(Section& s, TurnOptions& turn) {
  s.Read("enabled", turn.enabled, DecodeBool);
  s.Read("threads", turn.threads, AsUnsigned<uint32_t>(0, 1024));
  s.Read("connections_per_address", turn.connections_per_address,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("pending_connections", turn.pending_connections,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("listeners", turn.listeners, AsListOf([](const Node& node, const Where& at) {
           return DecodeItemMapping<ListenerOptions>(node, at, DecodeListener);
         }));
  s.Nested("relay", [&](Section& relay) { DecodeRelay(relay, turn.relay); });
  s.Nested("auth", [&](Section& auth) { DecodeAuth(auth, turn.auth); });
  s.Nested("lifetimes", [&](Section& l) {
    l.Read("allocation_default", turn.lifetimes.allocation_default, AsDuration(kOneSecond));
    l.Read("allocation_max", turn.lifetimes.allocation_max, AsDuration(kOneSecond));
    l.Read("permission", turn.lifetimes.permission, AsDuration(kOneSecond));
    l.Read("channel", turn.lifetimes.channel, AsDuration(kOneSecond));
  });
  s.Nested("quotas", [&](Section& q) {
    constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();
    q.Read("allocations_per_user", turn.quotas.allocations_per_user,
           AsUnsigned<uint32_t>(0, kMax32));
    q.Read("allocations_total", turn.quotas.allocations_total, AsUnsigned<uint32_t>(0, kMax32));
    q.Read("permissions_per_allocation", turn.quotas.permissions_per_allocation,
           AsUnsigned<uint32_t>(0, kMax32));
    q.Read("bandwidth_per_allocation", turn.quotas.bandwidth_per_allocation,
           AsUnsigned<uint64_t>(0, std::numeric_limits<uint64_t>::max()));
  });
  s.Nested("peers", [&](Section& p) {
    p.Read("deny", turn.peers.deny, AsListOf(DecodeCidr));
    p.Read("allow", turn.peers.allow, AsListOf(DecodeCidr));
  });
  s.Read("alternate_servers", turn.alternate_servers, AsListOf(DecodeIpPort));
  s.Read("alternate_tls_servers", turn.alternate_tls_servers, AsListOf(DecodeIpPort));
  s.Read("alternate_domain", turn.alternate_domain,
         Checked(DecodeString, [](std::string_view text) -> base::Status {
           return text.empty() ? base::Ok() : CheckDomainName(text);  // "" = none
         }));
  s.Nested("nat_discovery", [&](Section& n) {
    n.Read("enabled", turn.nat_discovery.enabled, DecodeBool);
    n.Read("alternate_address", turn.nat_discovery.alternate_address, DecodeOptionalIp);
    n.Read("alternate_port", turn.nat_discovery.alternate_port, AsUnsigned<uint16_t>(0, 65535));
  });
  s.Read("software", turn.software, Checked(DecodeString, CheckSoftware));
}

void DecodeSignal(Section& s, SignalOptions& signal) {
  s.Read("enabled", signal.enabled, DecodeBool);
  s.Nested("listen", [&](Section& l) {
    base::SocketAddress address = signal.listen.address;
    l.Read("address", address, DecodeIp);
    uint16_t port = signal.listen.address.port();
    l.Read("port", port, DecodePort);
    address.set_port(port);
    signal.listen.address = address;
    l.Read("tls", signal.listen.tls, DecodeBool);
    l.Read("hsts_max_age", signal.listen.hsts_max_age, AsDuration(kZeroSeconds));
  });
  s.Read("allowed_origins", signal.allowed_origins,
         AsListOf(Checked(DecodeNonEmptyString, CheckOrigin)));
  s.Read("trusted_proxies", signal.trusted_proxies, AsListOf(DecodeCidr));
  s.Read("connections_per_address", signal.connections_per_address,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("pending_connections", signal.pending_connections,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("sockets_per_user", signal.sockets_per_user,
         AsUnsigned<uint32_t>(0, std::numeric_limits<uint32_t>::max()));
  s.Read("registration", signal.registration, AsEnum(kRegistrations, "registration"));
  s.Nested("jwt", [&](Section& j) {
    j.Read("secret_file", signal.jwt.secret_file, DecodeString);
    j.Read("access_ttl", signal.jwt.access_ttl, AsDuration(kOneSecond));
    j.Read("refresh_ttl", signal.jwt.refresh_ttl, AsDuration(kOneSecond));
  });
  s.Read("ring_timeout", signal.ring_timeout, AsDuration(kOneMilli));
  s.Read("reconnect_grace", signal.reconnect_grace, AsDuration(kZeroMillis));
  s.Read("connection_recovery", signal.connection_recovery, DecodeBool);
  s.Nested("ice_servers", [&](Section& i) {
    i.Read("urls", signal.ice_servers.urls, AsListOf(Checked(DecodeNonEmptyString, CheckIceUrl)));
    i.Read("credential_ttl", signal.ice_servers.credential_ttl, AsDuration(kOneSecond));
  });
  s.Nested("engineio", [&](Section& e) {
    e.Read("ping_interval", signal.engineio.ping_interval, AsDuration(kOneMilli));
    e.Read("ping_timeout", signal.engineio.ping_timeout, AsDuration(kOneMilli));
    e.Read("max_payload", signal.engineio.max_payload, AsUnsigned<uint64_t>(1, 1u << 30));
    e.Read("connect_timeout", signal.engineio.connect_timeout, AsDuration(kOneMilli));
    e.Read("max_pending_per_address", signal.engineio.max_pending_per_address,
           AsUnsigned<uint32_t>(0, 1000000));
  });
  s.Nested("rate_limits", [&](Section& r) {
    for (auto [key, limit] :
         {std::pair{"events", &signal.rate_limits.events},
          std::pair{"initiate_per_socket", &signal.rate_limits.initiate_per_socket},
          std::pair{"initiate_per_user", &signal.rate_limits.initiate_per_user},
          std::pair{"register_per_address", &signal.rate_limits.register_per_address}}) {
      r.Nested(key, [&](Section& b) {
        b.Read("rate", limit->rate, AsNumber(0, 1e6));
        b.Read("burst", limit->burst, AsNumber(1, 1e6));
      });
    }
  });
  s.Nested("history", [&](Section& h) {
    h.Read("commit_delay", signal.history.commit_delay, AsDuration(kZeroMillis, kTenSeconds));
  });
  s.Read("protocol_test_mode", signal.protocol_test_mode, DecodeBool);
  s.Read("web_root", signal.web_root, DecodeString);
}

void DecodeDatabase(Section& s, DatabaseOptions& db) {
  s.Read("driver", db.driver, AsEnum(kDrivers, "database driver"));
  s.Nested("sqlite", [&](Section& l) { l.Read("path", db.sqlite.path, DecodeNonEmptyString); });
  s.Nested("mysql", [&](Section& m) {
    m.Read("host", db.mysql.host, DecodeNonEmptyString);
    m.Read("port", db.mysql.port, DecodePort);
    m.Read("user", db.mysql.user, DecodeNonEmptyString);
    m.Read("password_file", db.mysql.password_file, DecodeString);
    m.Read("database", db.mysql.database, DecodeNonEmptyString);
    m.Read("pool_size", db.mysql.pool_size, AsUnsigned<uint32_t>(1, 256));
    m.Read("tls", db.mysql.tls, DecodeBool);
    m.Read("tls_ca_file", db.mysql.tls_ca_file, DecodeString);
  });
}

void DecodeCluster(Section& s, ClusterOptions& cluster) {
  s.Read("enabled", cluster.enabled, DecodeBool);
  s.Read("name", cluster.name, Checked(DecodeNonEmptyString, CheckClusterName));
  s.Read("node_timeout", cluster.node_timeout, AsDuration(kOneSecondMs, kSixtySeconds));
  s.Nested("redis", [&](Section& r) {
    r.Read("host", cluster.redis.host, DecodeNonEmptyString);
    r.Read("port", cluster.redis.port, DecodePort);
    r.Read("username", cluster.redis.username, DecodeString);
    r.Read("password_file", cluster.redis.password_file, DecodeString);
  });
}

void DecodeConfig(Section& root, Config& cfg) {
  root.Read("realm", cfg.realm, Checked(DecodeNonEmptyString, CheckRealm));
  root.Read("state_dir", cfg.state_dir, DecodeNonEmptyString);
  root.Read("drain_timeout", cfg.drain_timeout, AsDuration(kOneMilli));
  root.Nested("log", [&](Section& s) {
    s.Read("level", cfg.log.level, AsEnum(kLogLevels, "log level"));
    s.Read("format", cfg.log.format, AsEnum(kLogFormats, "log format"));
  });
  root.Nested("tls", [&](Section& s) {
    s.Read("certificate", cfg.tls.certificate, DecodeString);
    s.Read("private_key", cfg.tls.private_key, DecodeString);
  });
  root.Nested("turn", [&](Section& s) { DecodeTurn(s, cfg.turn); });
  root.Nested("signal", [&](Section& s) { DecodeSignal(s, cfg.signal); });
  root.Nested("database", [&](Section& s) { DecodeDatabase(s, cfg.database); });
  root.Nested("metrics", [&](Section& s) {
    s.Read("enabled", cfg.metrics.enabled, DecodeBool);
    s.Read("listen", cfg.metrics.listen, DecodeIpPort);
    s.Read("path", cfg.metrics.path, Checked(DecodeString, CheckUrlPath));
  });
  root.Nested("cluster", [&](Section& s) { DecodeCluster(s, cfg.cluster); });
}

// Parses and decodes; everything yaml-cpp throws is turned into a message.
void Decode(std::string_view yaml, Diagnostics& diag, Config& cfg) {
  std::vector<Node> documents;
  try {
    std::string text(yaml);
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    diag.RawError(MarkLine(e.mark), "syntax error: " + e.msg);
    return;
  }
  if (documents.size() > 1) {
    diag.RawError(MarkLine(documents[1].Mark()),
                  "syntax error: more than one YAML document (a second \"---\")");
    return;
  }
  if (documents.empty() || documents[0].IsNull()) {
    return;
  }
  const Node& doc = documents[0];
  if (!doc.IsMap()) {
    diag.Error(MarkLine(doc.Mark()), "", "expected a mapping of settings, found " + KindName(doc));
    return;
  }
  Section root(diag, doc, "");
  DecodeConfig(root, cfg);
  root.Finish();
}

base::Result<Config> LoadImpl(std::string_view yaml, std::string_view name,
                              const std::string& base_dir, const std::string& config_path,
                              std::vector<std::string>* warnings) {
  Diagnostics diag{std::string(name)};
  Config cfg;
  try {
    Decode(yaml, diag, cfg);
    if (diag.has_errors()) {
      return std::unexpected(diag.ToError());
    }
    ResolvePaths(cfg, base_dir);
    ReadSecretFiles(cfg, diag);
    CheckConsistency(cfg, diag);
    CheckExposure(cfg, diag);
    CheckSecretFileModes(cfg, config_path, diag);
  } catch (const YAML::Exception& e) {
    diag.RawError(MarkLine(e.mark), "cannot load: " + e.msg);
  } catch (const std::exception& e) {
    diag.RawError(0, std::string("cannot load: ") + e.what());
  } catch (...) {
    diag.RawError(0, "cannot load: unknown error");
  }
  if (diag.has_errors()) {
    return std::unexpected(diag.ToError());
  }
  if (warnings != nullptr) {
    *warnings = diag.Warnings();
  }
  return cfg;
}

}  // namespace

base::Result<Config> LoadConfigString(std::string_view yaml, std::string_view name_for_errors,
                                      const std::string& base_dir,
                                      std::vector<std::string>* warnings) {
  return LoadImpl(yaml, name_for_errors, base_dir, "", warnings);
}

base::Result<Config> LoadConfigFile(const std::string& path, std::vector<std::string>* warnings) {
  try {
    std::error_code ec;
    const std::filesystem::path file(path);
    const std::uintmax_t size = std::filesystem::file_size(file, ec);
    if (ec) {
      return base::InvalidArgument(path + ": cannot read: " + ec.message());
    }
    if (size > kMaxConfigBytes) {
      return base::InvalidArgument(path + ": cannot read: larger than 4 MiB");
    }
    errno = 0;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      // The open(2) failure, e.g. "Permission denied" for a file the
      // service user may not read.
      return base::InvalidArgument(
          path + ": cannot read: " + (errno != 0 ? std::strerror(errno) : "cannot open"));
    }
    std::string contents{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) {
      return base::InvalidArgument(path + ": cannot read: I/O error");
    }
    std::filesystem::path dir = std::filesystem::absolute(file, ec).parent_path();
    if (ec) {
      dir = file.parent_path();
    }
    return LoadImpl(contents, path, dir.string(), path, warnings);
  } catch (const std::exception& e) {
    return base::InvalidArgument(path + ": cannot read: " + e.what());
  }
}

}  // namespace turnkey::config
