#include "app/jwt_key.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "app/database_setup.h"
#include "base/crypto.h"
#include "base/log.h"

namespace turnkey::app {

namespace {

// RFC 7518 section 3.2: an HS256 key at least as long as the hash output.
constexpr size_t kMinKeyBytes = 32;
constexpr size_t kKeyRandomBytes = 32;

base::Result<std::string> ReadKey(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return base::Unavailable(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.pop_back();
  }
  if (line.size() < kMinKeyBytes) {
    return base::InvalidArgument(fmt::format(
        "{}: the key must be at least {} bytes on the first line; delete the file to have a new "
        "one generated (this signs every user out)",
        path, kMinKeyBytes));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    TK_LOG_WARN("signal: {} is readable by other users; chmod 600 it", path);
  }
  return line;
}

// Writes `content` to a new file `path` (mode 0600) and syncs it.
base::Status WriteNewFile(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return base::Unavailable(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return base::Unavailable(fmt::format("{}: cannot write: {}", path, std::strerror(saved)));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(path.c_str());
    return base::Unavailable(fmt::format("{}: cannot sync: {}", path, std::strerror(errno)));
  }
  return base::Ok();
}

}  // namespace

base::Result<std::string> LoadOrCreateJwtKey(const std::string& state_dir) {
  const std::string path = (std::filesystem::path(state_dir) / kJwtKeyFileName).string();
  if (::access(path.c_str(), F_OK) == 0) {
    return ReadKey(path);
  }
  if (auto made = EnsureStateDir(state_dir); !made) {
    return std::unexpected(made.error());
  }
  const std::string temp = path + ".tmp-" + base::RandomHex(8);
  if (auto written = WriteNewFile(temp, base::RandomHex(kKeyRandomBytes) + "\n"); !written) {
    return std::unexpected(written.error());
  }
  // link() fails with EEXIST if another process got there first: then its
  // key wins and both use it.
  const int linked = ::link(temp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (linked != 0 && link_errno != EEXIST) {
    return base::Unavailable(fmt::format("{}: cannot create: {}", path, std::strerror(link_errno)));
  }
  if (linked == 0) {
    TK_LOG_INFO("signal: generated a new token key in {}", path);
  }
  return ReadKey(path);
}

}  // namespace turnkey::app
