#include "tests/sql/commit_answer_cutter.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <list>
#include <set>
#include <string_view>
#include <vector>

namespace turnkey::sql::testing {

namespace {

constexpr uint8_t kComQuery = 0x03;
constexpr uint8_t kComStmtPrepare = 0x16;
constexpr uint8_t kComStmtExecute = 0x17;

// One client connection and its connection to the server.
struct Link {
  int client = -1;
  int server = -1;
  std::string from_client;
  std::string from_server;
  bool commit_prepare_pending = false;  // its answer names a COMMIT statement
  std::set<uint32_t> commit_statements;
  bool cut_on_answer = false;
  bool closed = false;

  void Close() {
    ::close(client);
    ::close(server);
    closed = true;
  }
};

uint32_t Le32(std::string_view bytes) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) {
    value = value << 8 | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

bool IsCommitText(std::string_view text) {
  return text.size() == 6 && ::strncasecmp(text.data(), "COMMIT", 6) == 0;
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Whole packets at the front of `buffer`, removed from it, each passed to
// `visit(sequence_id, payload)`; returns their bytes.
template <typename Visit>
std::string TakePackets(std::string& buffer, Visit visit) {
  size_t used = 0;
  while (buffer.size() - used >= 4) {
    const auto* head = reinterpret_cast<const uint8_t*>(buffer.data() + used);
    const size_t length = head[0] | head[1] << 8 | head[2] << 16;
    if (buffer.size() - used < 4 + length) {
      break;
    }
    visit(head[3], std::string_view(buffer).substr(used + 4, length));
    used += 4 + length;
  }
  std::string packets = buffer.substr(0, used);
  buffer.erase(0, used);
  return packets;
}

int ConnectTo(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
    return -1;
  }
  int fd = ::socket(found->ai_family, SOCK_STREAM, 0);
  if (fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

}  // namespace

CommitAnswerCutter::CommitAnswerCutter(std::string host, uint16_t port)
    : host_(std::move(host)), upstream_port_(port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), length) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0 ||
      ::pipe(wake_) != 0) {
    return;
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Loop(); });
}

CommitAnswerCutter::~CommitAnswerCutter() {
  if (thread_.joinable()) {
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
  }
  for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
}

void CommitAnswerCutter::Loop() {
  std::list<Link> links;
  for (;;) {
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const Link& link : links) {
      fds.push_back({link.client, POLLIN, 0});
      fds.push_back({link.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      continue;
    }
    if (fds[0].revents != 0) {
      break;
    }
    size_t i = 2;
    for (Link& link : links) {
      const short client_events = fds[i++].revents;
      const short server_events = fds[i++].revents;
      char buffer[16384];
      if (client_events != 0) {
        ssize_t n = ::recv(link.client, buffer, sizeof(buffer), 0);
        if (n <= 0) {
          link.Close();
          continue;
        }
        link.from_client.append(buffer, static_cast<size_t>(n));
        std::string packets =
            TakePackets(link.from_client, [&](uint8_t seq, std::string_view payload) {
              if (seq != 0 || payload.empty()) {
                return;
              }
              const uint8_t command = static_cast<uint8_t>(payload[0]);
              bool commit = false;
              if (command == kComStmtPrepare && IsCommitText(payload.substr(1))) {
                link.commit_prepare_pending = true;
              } else if (command == kComQuery) {
                commit = IsCommitText(payload.substr(1));
              } else if (command == kComStmtExecute && payload.size() >= 5) {
                commit = link.commit_statements.contains(Le32(payload.substr(1)));
              }
              if (commit && armed_.exchange(false)) {
                link.cut_on_answer = true;
              }
            });
        if (!SendAll(link.server, packets)) {
          link.Close();
          continue;
        }
      }
      if (server_events != 0) {
        ssize_t n = ::recv(link.server, buffer, sizeof(buffer), 0);
        if (n <= 0 || link.cut_on_answer) {
          // The COMMIT ran (its answer is here): neither side hears more.
          cuts_ += n > 0 ? 1 : 0;
          link.Close();
          continue;
        }
        link.from_server.append(buffer, static_cast<size_t>(n));
        std::string packets =
            TakePackets(link.from_server, [&](uint8_t seq, std::string_view payload) {
              if (link.commit_prepare_pending && seq == 1) {
                // COM_STMT_PREPARE_OK: 0x00, then the statement id.
                if (payload.size() >= 5 && payload[0] == 0) {
                  link.commit_statements.insert(Le32(payload.substr(1)));
                }
                link.commit_prepare_pending = false;
              }
            });
        if (!SendAll(link.client, packets)) {
          link.Close();
        }
      }
    }
    links.remove_if([](const Link& link) { return link.closed; });
    // Last: `fds` has no entries for a link added now.
    if (fds[1].revents != 0) {
      int client = ::accept(listen_fd_, nullptr, nullptr);
      int server = client < 0 ? -1 : ConnectTo(host_, upstream_port_);
      if (server < 0) {
        ::close(client);
      } else {
        links.push_back(Link{client, server});
      }
    }
  }
  for (Link& link : links) {
    link.Close();
  }
}

}  // namespace turnkey::sql::testing
