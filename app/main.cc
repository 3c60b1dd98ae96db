// turnkey: command line entry point. Parses the command line (CLI11) and
// hands off to one subcommand; see DESIGN.md section 8 for the interface.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "app/commands.h"
#include "app/version.h"

int main(int argc, char** argv) {
  using turnkey::app::kVersion;
  CLI::App cli{"turnkey: a TURN/STUN relay and calling backend in one daemon", "turnkey"};
  // A plain flag, not CLI11's version flag: that one prints and exits as soon
  // as it is read, so `--version --bogus` would exit 0 with the rest unread.
  bool version_flag = false;
  cli.add_flag("--version,-V", version_flag, "print the version and exit");
  cli.require_subcommand(0, 1);
  cli.fallthrough();

  std::string config_path = "/etc/turnkey/turnkey.yaml";
  cli.add_option("--config,-c", config_path, "config file")->capture_default_str();

  CLI::App* serve = cli.add_subcommand("serve", "run the server (the default)");
  CLI::App* check = cli.add_subcommand("check-config", "validate the config file and exit");
  CLI::App* migrate = cli.add_subcommand(
      "migrate", "apply pending database migrations (database.* of the config) and exit");

  turnkey::app::ProbeArgs probe_args;
  CLI::App* probe = cli.add_subcommand(
      "probe",
      "check a STUN/TURN server from the outside: stun://HOST:PORT[?transport=tcp], "
      "stuns://HOST:PORT[?transport=udp], turn://USER:PASS@HOST:PORT[?transport=tcp], "
      "turns://USER:PASS@HOST:PORT[?transport=udp] (secure over udp: DTLS). TURN: allocates and "
      "relays to a UDP echo peer the "
      "probe starts on this host (the server must allow that address as a peer)");
  probe->add_option("uri", probe_args.uri, "server URI")->required();
  probe->add_option("--timeout", probe_args.timeout, "how long to wait for each answer")
      ->capture_default_str();
  probe->add_option("--ca", probe_args.ca_file, "CA file to verify a TLS server with");
  probe->add_flag("--insecure", probe_args.insecure, "do not verify the TLS certificate");
  probe->add_option("--secret", probe_args.secret,
                    "TURN REST shared secret: mint the credential for turn://USER@HOST:PORT");
  probe
      ->add_option("--relay-family", probe_args.relay_family,
                   "TURN: ask for a relayed address of this family (REQUESTED-ADDRESS-FAMILY)")
      ->check(CLI::IsMember({"ipv4", "ipv6"}));

  turnkey::app::CredentialsArgs credentials_args;
  CLI::App* credentials = cli.add_subcommand(
      "credentials", "print TURN REST credentials (JSON) for a user, minted with the first secret");
  credentials->add_option("--user,-u", credentials_args.user, "user id")->required();
  credentials
      ->add_option_function<std::string>(
          "--ttl",
          [&credentials_args](const std::string& text) {
            credentials_args.ttl_seconds = turnkey::app::ParseTtlSeconds(text);
          },
          "lifetime: seconds, or a duration such as 10m or 12h (default: "
          "signal.ice_servers.credential_ttl)")
      ->check([](const std::string& text) {
        return turnkey::app::ParseTtlSeconds(text) > 0
                   ? std::string()
                   : "expected a number of seconds or a duration (10m, 12h), at least 1 s and "
                     "at most 2147483647 s";
      });

  turnkey::app::UserArgs user_args;
  CLI::App* user = cli.add_subcommand(
      "user", "account tasks on the configured database; passwords are read from standard input");
  user->require_subcommand(1);
  CLI::App* user_add = user->add_subcommand("add", "create an account and print it (JSON)");
  user_add->add_option("--email", user_args.email, "login email")->required();
  user_add->add_option("--handle", user_args.handle, "public handle (the Call ID)")->required();
  user_add->add_option("--display-name", user_args.display_name, "default: the handle");
  for (auto [name, help] :
       {std::pair{"show", "print an account (JSON)"},
        std::pair{"set-password", "set a new password and revoke every refresh token"},
        std::pair{"revoke-sessions", "revoke every refresh token"}}) {
    user->add_subcommand(name, help)
        ->add_option("user", user_args.who, "user id, email or handle")
        ->required();
  }
  std::string call_id;
  std::string call_user;
  int call_limit = 20;
  CLI::App* call = cli.add_subcommand("call", "call history tasks on the configured database");
  call->require_subcommand(1);
  call->add_subcommand("show", "print one call with both participants and their ICE reports (JSON)")
      ->add_option("call_id", call_id, "call id (from the log or the API)")
      ->required();
  CLI::App* call_list = call->add_subcommand(
      "list", "print a user's newest calls with status, reason and ICE reports (JSON)");
  call_list->add_option("user", call_user, "user id, email or handle")->required();
  call_list->add_option("--limit", call_limit, "how many calls, newest first (1-1000; default 20)")
      ->check(CLI::Range(1, 1000));
  CLI::App* version = cli.add_subcommand("version", "print the version");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; any other parse error is a usage error, 2
    // (the operator guide), not CLI11's own codes (106 for a missing
    // argument, 109 for an extra one).
    return cli.exit(e) == 0 ? 0 : 2;
  }

  if (version_flag || *version) {
    std::printf("turnkey %s\n", kVersion);
    return 0;
  }
  if (*check) {
    return turnkey::app::RunCheckConfig(config_path);
  }
  if (*migrate) {
    return turnkey::app::RunMigrate(config_path);
  }
  if (*credentials) {
    return turnkey::app::RunCredentials(config_path, credentials_args);
  }
  if (*user) {
    user_args.action = user->get_subcommands().front()->get_name();
    return turnkey::app::RunUser(config_path, user_args);
  }
  if (*probe) {
    return turnkey::app::RunProbe(probe_args);
  }
  if (*call_list) {
    return turnkey::app::RunCallList(config_path, call_user, call_limit);
  }
  if (*call) {
    return turnkey::app::RunCallShow(config_path, call_id);
  }
  (void)serve;
  return turnkey::app::RunServe(config_path);
}
