// Secret files other users can read or change: warned about at load, never
// refused (config/secret_files.h). The reading of the files themselves is
// tested with the loader (loader_test.cc).
#include "config/secret_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/loader.h"
#include "tests/config/test_util.h"

namespace turnkey::config {
namespace {

using testing::TempDir;

// The file-mode warnings among `warnings`: the others (CheckExposure: plain
// HTTP on the default address, short secrets) are loader_test's.
std::vector<std::string> ModeWarnings(std::vector<std::string> warnings) {
  std::erase_if(warnings, [](const std::string& w) { return w.find(" has mode ") == w.npos; });
  return warnings;
}

// Loads `path`, which must load, and returns its file-mode warnings.
std::vector<std::string> WarningsOf(const std::string& path) {
  std::vector<std::string> warnings = {"not filled"};
  base::Result<Config> cfg = LoadConfigFile(path, &warnings);
  EXPECT_TRUE(cfg.has_value()) << cfg.error().message;
  return ModeWarnings(std::move(warnings));
}

void Chmod(const std::string& path, mode_t mode) { ASSERT_EQ(::chmod(path.c_str(), mode), 0); }

// A config naming every kind of secret file, all mode 0600.
struct AllSecretFiles {
  explicit AllSecretFiles(const TempDir& dir)
      : turn(dir.Write("turn.txt", std::string(32, 's') + "\n")),
        jwt(dir.Write("jwt.key", std::string(64, 'k') + "\n")),
        mysql(dir.Write("db.pass", "pw\n")),
        key(dir.Write("key.pem", "not checked here\n")),
        config(dir.Write("turnkey.yaml",
                         "tls:\n"
                         "  private_key: key.pem\n"
                         "turn:\n"
                         "  auth: {secrets_file: turn.txt}\n"
                         "signal:\n"
                         "  jwt: {secret_file: jwt.key}\n"
                         "  listen: {address: 127.0.0.1, port: 8080}\n"
                         "database:\n"
                         "  driver: mysql\n"
                         "  mysql: {password_file: db.pass}\n")) {
    for (const std::string* file : {&turn, &jwt, &mysql, &key, &config}) {
      Chmod(*file, 0600);
    }
  }
  std::string turn, jwt, mysql, key, config;
};

TEST(SecretFileModesTest, FilesOtherUsersCanReadOrChangeAreWarnedAbout) {
  TempDir dir;
  AllSecretFiles files(dir);
  EXPECT_EQ(WarningsOf(files.config), std::vector<std::string>{});

  Chmod(files.turn, 0644);
  Chmod(files.jwt, 0602);
  Chmod(files.mysql, 0606);
  Chmod(files.key, 0604);
  EXPECT_EQ(WarningsOf(files.config),
            (std::vector<std::string>{
                files.config + ":2: warning: tls.private_key: \"" + files.key +
                    "\" has mode 0604: any user can read it (chmod o-rwx)",
                files.config + ":4: warning: turn.auth.secrets_file: \"" + files.turn +
                    "\" has mode 0644: any user can read it (chmod o-rwx)",
                files.config + ":6: warning: signal.jwt.secret_file: \"" + files.jwt +
                    "\" has mode 0602: any user can change it (chmod o-rwx)",
                files.config + ":10: warning: database.mysql.password_file: \"" + files.mysql +
                    "\" has mode 0606: any user can read and change it (chmod o-rwx)",
            }));

  // Execute bits and the owner's own bits say nothing about the secret.
  Chmod(files.turn, 0700);
  Chmod(files.jwt, 0611);
  Chmod(files.mysql, 0400);
  Chmod(files.key, 0601);
  EXPECT_EQ(WarningsOf(files.config), std::vector<std::string>{});
}

TEST(SecretFileModesTest, GroupAccessIsFineForAGroupTurnkeyRunsIn) {
  // The documented layout is root:turnkey 0640: the service reads its files
  // through their group.
  TempDir dir;
  AllSecretFiles files(dir);
  ASSERT_EQ(::chown(files.turn.c_str(), static_cast<uid_t>(-1), ::getegid()), 0);
  Chmod(files.turn, 0660);
  EXPECT_EQ(WarningsOf(files.config), std::vector<std::string>{});

  // A group it does not run in; only root can hand a file to one.
  gid_t foreign = 65534;
  while (foreign == ::getegid()) {
    --foreign;
  }
  if (::chown(files.turn.c_str(), static_cast<uid_t>(-1), foreign) != 0) {
    GTEST_SKIP() << "cannot give a file a group this process is not in (not root)";
  }
  std::vector<gid_t> groups(static_cast<size_t>(::getgroups(0, nullptr)) + 1);
  groups.resize(static_cast<size_t>(::getgroups(static_cast<int>(groups.size()), groups.data())));
  ASSERT_EQ(std::find(groups.begin(), groups.end(), foreign), groups.end());
  Chmod(files.turn, 0640);
  std::vector<std::string> warnings = WarningsOf(files.config);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(warnings[0].starts_with(files.config + ":4: warning: turn.auth.secrets_file: \"" +
                                      files.turn + "\" has mode 0640: group "))
      << warnings[0];
  EXPECT_TRUE(warnings[0].ends_with(
      " can read it, and turnkey does not run in that group (chmod g-rwx, or chgrp to "
      "turnkey's group)"))
      << warnings[0];
  Chmod(files.turn, 0620);
  warnings = WarningsOf(files.config);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(" can change it,"), std::string::npos) << warnings[0];
  Chmod(files.turn, 0600);
  EXPECT_EQ(WarningsOf(files.config), std::vector<std::string>{});
}

TEST(SecretFileModesTest, TheConfigFileCountsWhenSecretsAreWrittenInIt) {
  TempDir dir;
  const std::string inline_secrets =
      dir.Write("a.yaml", "realm: x\nturn:\n  auth:\n    secrets: [s1]\n");
  const std::string static_users = dir.Write("b.yaml",
                                             "turn:\n  auth:\n    static_users:\n      - {name: a, "
                                             "key: 0123456789abcdef0123456789abcdef}\n");
  const std::string no_secrets = dir.Write("c.yaml", "realm: x\n");
  for (const std::string* file : {&inline_secrets, &static_users, &no_secrets}) {
    Chmod(*file, 0644);
  }
  EXPECT_EQ(WarningsOf(inline_secrets),
            std::vector<std::string>{inline_secrets + ":4: warning: turn.auth.secrets: \"" +
                                     inline_secrets +
                                     "\" has mode 0644: any user can read it (chmod o-rwx)"});
  std::vector<std::string> warnings = WarningsOf(static_users);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(warnings[0].starts_with(static_users + ":3: warning: turn.auth.static_users: "))
      << warnings[0];
  EXPECT_EQ(WarningsOf(no_secrets), std::vector<std::string>{});
  Chmod(inline_secrets, 0600);
  EXPECT_EQ(WarningsOf(inline_secrets), std::vector<std::string>{});
}

TEST(SecretFileModesTest, WarningsDoNotStopALoadAndErrorsComeFirst) {
  TempDir dir;
  AllSecretFiles files(dir);
  Chmod(files.turn, 0644);
  Chmod(files.jwt, 0644);
  // From a string the config itself is no file; the *_file keys still are.
  std::vector<std::string> warnings;
  base::Result<Config> cfg =
      LoadConfigString("turn:\n  auth: {secrets: [s1]}\nsignal: {jwt: {secret_file: jwt.key}}\n",
                       "t.yaml", dir.path().string(), &warnings);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(ModeWarnings(warnings),
            std::vector<std::string>{"t.yaml:3: warning: signal.jwt.secret_file: \"" + files.jwt +
                                     "\" has mode 0644: any user can read it (chmod "
                                     "o-rwx)"});
  // A config with an error has no warnings to give, only the error.
  const std::string broken =
      dir.Write("broken.yaml", "turn:\n  auth: {secrets_file: turn.txt}\nrealm: [x]\n");
  warnings = {"untouched"};
  cfg = LoadConfigFile(broken, &warnings);
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(warnings, std::vector<std::string>{"untouched"});
}

// A TURN-only node that shares its config with the signaling nodes does not
// need their token secret, database password or Redis password on its disk.
TEST(SecretFileModesTest, ATurnOnlyNodeReadsOnlyTheTurnSecrets) {
  TempDir dir;
  const std::string turn = dir.Write("turn.txt", std::string(32, 's') + "\n");
  Chmod(turn, 0600);
  const std::string body =
      "turn:\n"
      "  auth: {secrets_file: turn.txt}\n"
      "signal:\n"
      "  enabled: SIGNAL\n"
      "  jwt: {secret_file: missing-jwt.key}\n"
      "  listen: {address: 127.0.0.1, port: 8080}\n"
      "database:\n"
      "  driver: mysql\n"
      "  mysql: {password_file: missing-db.pass}\n"
      "cluster:\n"
      "  enabled: true\n"
      "  redis: {password_file: missing-redis.pass}\n";
  std::string turn_only = body;
  turn_only.replace(turn_only.find("SIGNAL"), 6, "false");
  const std::string path = dir.Write("turn-only.yaml", turn_only);
  Chmod(path, 0600);
  std::vector<std::string> warnings;
  base::Result<Config> cfg = LoadConfigFile(path, &warnings);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->turn.auth.secrets, std::vector<std::string>{std::string(32, 's')});
  EXPECT_EQ(cfg->signal.jwt.secret, "");
  // Where they are there, they are read: `turnkey migrate` and the other
  // database commands run with this config too.
  Chmod(dir.Write("missing-db.pass", "db-password\n"), 0600);
  cfg = LoadConfigFile(path, &warnings);
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->database.mysql.password, "db-password");

  std::filesystem::remove(dir.path() / "missing-db.pass");
  std::string signaling = body;
  signaling.replace(signaling.find("SIGNAL"), 6, "true");
  const std::string signaling_path = dir.Write("signaling.yaml", signaling);
  Chmod(signaling_path, 0600);
  base::Result<Config> refused = LoadConfigFile(signaling_path, &warnings);
  ASSERT_FALSE(refused.has_value());
  for (const char* key :
       {"signal.jwt.secret_file", "database.mysql.password_file", "cluster.redis.password_file"}) {
    EXPECT_NE(refused.error().message.find(key), std::string::npos) << refused.error().message;
  }
}

}  // namespace
}  // namespace turnkey::config
