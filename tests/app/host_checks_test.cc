// CheckHost: what check-config finds on this host that serve would refuse at
// its start (addresses, directories), with a made-up list of local addresses
// and real temporary directories.
#include "app/host_checks.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "base/crypto.h"

namespace turnkey::app {
namespace {

namespace fs = std::filesystem;

base::SocketAddress Ip(const char* text, uint16_t port) {
  base::SocketAddress address = *base::SocketAddress::ParseIp(text);
  address.set_port(port);
  return address;
}

bool Local(const base::SocketAddress& address) {
  return address.IpString() == "127.0.0.1" || address.IpString() == "192.0.2.10";
}

class HostChecksTest : public ::testing::Test {
 protected:
  HostChecksTest() : dir_(fs::temp_directory_path() / ("tk-host-" + base::RandomHex(8))) {
    fs::create_directories(dir_);
    config_.state_dir = (dir_ / "state").string();
    config_.turn.listeners = {config::ListenerOptions{.address = Ip("0.0.0.0", 3478)}};
    config_.signal.listen.address = Ip("127.0.0.1", 8080);
    config_.metrics.listen = Ip("127.0.0.1", 9641);
  }
  ~HostChecksTest() override {
    std::error_code error;
    fs::remove_all(dir_, error);
  }

  std::vector<std::string> Errors() { return CheckHost(config_, &Local).errors; }
  bool HasErrorAbout(const std::string& key) {
    const std::vector<std::string> errors = Errors();
    return std::any_of(errors.begin(), errors.end(),
                       [&](const std::string& e) { return e.starts_with(key + ":"); });
  }

  fs::path dir_;
  config::Config config_;
};

TEST_F(HostChecksTest, TheDefaultsOnAWritableStateDirPass) {
  EXPECT_EQ(Errors(), std::vector<std::string>{});
  // Not made yet, several levels down: serve makes it.
  config_.state_dir = (dir_ / "a" / "b" / "state").string();
  EXPECT_EQ(Errors(), std::vector<std::string>{});
}

TEST_F(HostChecksTest, AListenAddressNotOnThisHostIsNamed) {
  config_.turn.listeners.push_back(config::ListenerOptions{.address = Ip("203.0.113.5", 3478)});
  config_.signal.listen.address = Ip("203.0.113.5", 443);
  config_.metrics.listen = Ip("192.0.2.10", 9641);  // local: fine
  config_.turn.nat_discovery.enabled = true;
  config_.turn.nat_discovery.alternate_address = Ip("198.51.100.7", 0);
  const std::vector<std::string> errors = Errors();
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_TRUE(errors[0].starts_with("turn.listeners[1].address: cannot bind 203.0.113.5"))
      << errors[0];
  EXPECT_TRUE(errors[1].starts_with("turn.nat_discovery.alternate_address: cannot bind"))
      << errors[1];
  EXPECT_TRUE(errors[2].starts_with("signal.listen.address: cannot bind 203.0.113.5")) << errors[2];
  // What is not served is not checked.
  config_.turn.enabled = false;
  config_.signal.enabled = false;
  EXPECT_EQ(Errors(), std::vector<std::string>{});
}

TEST_F(HostChecksTest, AWebRootThatIsNotADirectoryIsNamed) {
  config_.signal.web_root = (dir_ / "nonexistent").string();
  EXPECT_TRUE(HasErrorAbout("signal.web_root"));
  fs::create_directories(dir_ / "web");
  config_.signal.web_root = (dir_ / "web").string();
  EXPECT_FALSE(HasErrorAbout("signal.web_root"));
}

TEST_F(HostChecksTest, TheSqliteDirectoryMustExistAndBeWritable) {
  // A bare file name lives in state_dir, which serve (or systemd) creates.
  config_.database.sqlite.path = "turnkey.db";
  EXPECT_FALSE(HasErrorAbout("database.sqlite.path"));
  EXPECT_FALSE(HasErrorAbout("state_dir"));
  // A directory where the file should be.
  fs::create_directories(dir_ / "state" / "turnkey.db");
  EXPECT_TRUE(HasErrorAbout("database.sqlite.path"));
  fs::remove(dir_ / "state" / "turnkey.db");
  // Another directory must exist.
  config_.database.sqlite.path = (dir_ / "missing" / "turnkey.db").string();
  EXPECT_TRUE(HasErrorAbout("database.sqlite.path"));
  config_.database.sqlite.path = "sub/turnkey.db";  // in state_dir, not created by serve
  EXPECT_TRUE(HasErrorAbout("database.sqlite.path"));

  // A directory this user cannot write (the service user, as the guide runs
  // check-config; root writes anywhere, so a child checks as nobody then).
  fs::create_directories(dir_ / "locked" / "state");
  ::chmod((dir_ / "locked" / "state").c_str(), 0500);
  ::chmod((dir_ / "locked").c_str(), 0500);
  config_.database.sqlite.path = (dir_ / "locked" / "turnkey.db").string();
  config_.state_dir = (dir_ / "locked" / "state").string();
  // Nor create one under a directory it may read but not write (serve
  // would fail to make it).
  fs::create_directories(dir_ / "read-only");
  ::chmod((dir_ / "read-only").c_str(), 0555);
  const auto missing_cannot_be_made = [&] {
    const fs::path missing = dir_ / "read-only" / "new" / "state";
    config_.state_dir = missing.string();
    const std::vector<std::string> errors = Errors();
    config_.state_dir = (dir_ / "locked" / "state").string();
    return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
      return e == "state_dir: " + missing.string() +
                      " does not exist and this user cannot create it (" +
                      (dir_ / "read-only").string() +
                      ": Permission denied); create it for the service user";
    });
  };
  auto check = [&] {
    return HasErrorAbout("database.sqlite.path") && HasErrorAbout("state_dir") &&
           missing_cannot_be_made();
  };
  bool skipped = false;
  if (::geteuid() != 0) {
    EXPECT_TRUE(check());
  } else {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
        ::_exit(2);
      }
      ::_exit(check() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    skipped = WEXITSTATUS(status) == 2;
    EXPECT_NE(WEXITSTATUS(status), 1);
  }
  ::chmod((dir_ / "locked").c_str(), 0700);
  ::chmod((dir_ / "locked" / "state").c_str(), 0700);
  ::chmod((dir_ / "read-only").c_str(), 0700);
  if (skipped) {
    GTEST_SKIP() << "cannot become nobody here (a user namespace?)";
  }
}

}  // namespace
}  // namespace turnkey::app
