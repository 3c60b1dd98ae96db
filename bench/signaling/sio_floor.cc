// sio_floor: the least a Socket.IO call server can do for sio_loadgen's call
// flow, to measure the floor under any real server's CPU per call.
//
// It answers exactly what bench/signaling/call_driver.cc needs and nothing
// else: the WebSocket handshake (RFC 6455 section 4.2), the Engine.IO open
// packet, the Socket.IO CONNECT (the user id is read from the token's "sub"
// claim; the signature is not checked), and for initiateCall / acceptCall /
// endCall one ack to the sender and one event to the other party. No JSON
// parser, no database, no rate limits, no timers, no heartbeats: what is left
// is the socket work of the exchange (per call: 3 frames in, 6 frames out) and
// the few lookups routing needs. It is a measuring tool, never a server to
// deploy; bench/README.md ("The floor") says what its numbers mean.
//
//   sio_floor --listen 127.0.0.1:0
// prints "listening 127.0.0.1:PORT" once ready and runs until killed.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/crypto.h"
#include "bench/signaling/json_scan.h"
#include "bench/udp_util.h"

namespace turnkey::bench {
namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kMaxFrame = 1 << 20;

struct Connection {
  int fd = -1;
  bool websocket = false;
  std::string in;
  std::string out;  // what send() did not take yet
  std::string user;
};

struct Call {
  Connection* caller = nullptr;
  Connection* callee = nullptr;
  std::string caller_id;
  std::string callee_id;
};

class FloorServer {
 public:
  explicit FloorServer(int listen_fd) : listen_fd_(listen_fd), epoll_fd_(epoll_create1(0)) {
    Watch(listen_fd_, nullptr, EPOLLIN);
  }

  void Run() {
    std::vector<epoll_event> events(256);
    while (true) {
      int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        std::perror("epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto* conn = static_cast<Connection*>(events[i].data.ptr);
        if (conn == nullptr) {
          Accept();
          continue;
        }
        if ((events[i].events & EPOLLOUT) != 0) {
          Flush(*conn);
        }
        if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
          Read(*conn);
        }
      }
      // Closed connections are freed once no event of this batch can name them.
      closed_.clear();
    }
  }

 private:
  void Watch(int fd, Connection* conn, uint32_t events, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = conn;
    epoll_ctl(epoll_fd_, op, fd, &ev);
  }

  void Accept() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_unique<Connection>();
      conn->fd = fd;
      Watch(fd, conn.get(), EPOLLIN);
      connections_.emplace(conn.get(), std::move(conn));
    }
  }

  void Close(Connection& conn) {
    if (conn.fd < 0) {
      return;
    }
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
    close(conn.fd);
    conn.fd = -1;
    if (!conn.user.empty()) {
      auto it = users_.find(conn.user);
      if (it != users_.end() && it->second == &conn) {
        users_.erase(it);
      }
    }
    for (auto& [id, call] : calls_) {
      if (call.caller == &conn) {
        call.caller = nullptr;
      }
      if (call.callee == &conn) {
        call.callee = nullptr;
      }
    }
    auto node = connections_.extract(&conn);
    closed_.push_back(std::move(node.mapped()));
  }

  void Read(Connection& conn) {
    char buf[16384];
    ssize_t n = recv(conn.fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
      }
      Close(conn);
      return;
    }
    conn.in.append(buf, static_cast<size_t>(n));
    if (!conn.websocket) {
      Handshake(conn);
    }
    if (conn.websocket) {
      Frames(conn);
    }
  }

  void Send(Connection* conn, std::string_view bytes) {
    if (conn == nullptr || conn->fd < 0) {
      return;
    }
    if (!conn->out.empty()) {
      conn->out.append(bytes);
      return;
    }
    ssize_t n = send(conn->fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN) {
        Close(*conn);
        return;
      }
      n = 0;
    }
    if (static_cast<size_t>(n) < bytes.size()) {
      conn->out.assign(bytes.substr(static_cast<size_t>(n)));
      Watch(conn->fd, conn, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    }
  }

  void Flush(Connection& conn) {
    if (conn.fd < 0 || conn.out.empty()) {
      return;
    }
    ssize_t n = send(conn.fd, conn.out.data(), conn.out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN) {
        Close(conn);
      }
      return;
    }
    conn.out.erase(0, static_cast<size_t>(n));
    if (conn.out.empty()) {
      Watch(conn.fd, &conn, EPOLLIN, EPOLL_CTL_MOD);
    }
  }

  // An unmasked server frame (RFC 6455 section 5.2) holding `text`.
  void SendText(Connection* conn, std::string_view text) {
    frame_.clear();
    frame_.push_back(static_cast<char>(0x81));
    if (text.size() < 126) {
      frame_.push_back(static_cast<char>(text.size()));
    } else if (text.size() <= 0xFFFF) {
      frame_.push_back(126);
      frame_.push_back(static_cast<char>(text.size() >> 8));
      frame_.push_back(static_cast<char>(text.size() & 0xFF));
    } else {
      frame_.push_back(127);
      for (int shift = 56; shift >= 0; shift -= 8) {
        frame_.push_back(static_cast<char>((static_cast<uint64_t>(text.size()) >> shift) & 0xFF));
      }
    }
    frame_.append(text);
    Send(conn, frame_);
  }

  static std::string_view HeaderValue(std::string_view head, std::string_view name) {
    size_t line = head.find("\r\n");
    while (line != std::string_view::npos) {
      size_t start = line + 2;
      size_t end = head.find("\r\n", start);
      if (end == std::string_view::npos) {
        break;
      }
      std::string_view field = head.substr(start, end - start);
      size_t colon = field.find(':');
      if (colon == name.size() && strncasecmp(field.data(), name.data(), name.size()) == 0) {
        std::string_view value = field.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') {
          value.remove_prefix(1);
        }
        return value;
      }
      line = end;
    }
    return {};
  }

  void Handshake(Connection& conn) {
    size_t end = conn.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (conn.in.size() > 16384) {
        Close(conn);
      }
      return;
    }
    std::string_view key =
        HeaderValue(std::string_view(conn.in).substr(0, end + 2), "Sec-WebSocket-Key");
    if (key.empty()) {
      Send(&conn, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      Close(conn);
      return;
    }
    std::string accept_input(key);
    accept_input.append(kWebSocketGuid);
    base::Sha1Digest digest = base::Sha1(base::AsBytes(accept_input));
    std::string reply =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        base::Base64Encode(digest) + "\r\n\r\n";
    conn.in.erase(0, end + 4);
    conn.websocket = true;
    Send(&conn, reply);
    SendText(&conn, R"(0{"sid":"floor)" + std::to_string(++next_sid_) +
                        R"(","upgrades":[],"pingInterval":25000,"pingTimeout":20000,)"
                        R"("maxPayload":1000000})");
  }

  // Whole frames from the front of conn.in (a message in one frame: the load
  // generator sends no fragments).
  void Frames(Connection& conn) {
    while (conn.fd >= 0) {
      const auto* p = reinterpret_cast<const uint8_t*>(conn.in.data());
      size_t have = conn.in.size();
      if (have < 2) {
        return;
      }
      uint8_t opcode = p[0] & 0x0F;
      bool masked = (p[1] & 0x80) != 0;
      uint64_t len = p[1] & 0x7F;
      size_t at = 2;
      if (len == 126) {
        if (have < 4) {
          return;
        }
        len = (uint64_t{p[2]} << 8) | p[3];
        at = 4;
      } else if (len == 127) {
        if (have < 10) {
          return;
        }
        len = 0;
        for (int i = 0; i < 8; ++i) {
          len = (len << 8) | p[2 + i];
        }
        at = 10;
      }
      if (!masked || len > kMaxFrame) {
        Close(conn);
        return;
      }
      if (have < at + 4 + len) {
        return;
      }
      const uint8_t* mask = p + at;
      at += 4;
      message_.resize(len);
      for (size_t i = 0; i < len; ++i) {
        message_[i] = static_cast<char>(p[at + i] ^ mask[i & 3]);
      }
      conn.in.erase(0, at + len);
      if (opcode == 0x8) {
        Close(conn);
        return;
      }
      if (opcode == 0x9) {
        frame_.assign("\x8a");
        frame_.push_back(static_cast<char>(message_.size()));
        frame_.append(message_);
        Send(&conn, frame_);
      } else if (opcode == 0x1) {
        OnText(conn, message_);
      }
    }
  }

  void OnText(Connection& conn, const std::string& text) {
    if (text.starts_with("40")) {
      Connect(conn, text);
    } else if (text.starts_with("42")) {
      Event(conn, std::string_view(text).substr(2));
    }
    // "3" (pong) and anything else: nothing to do.
  }

  void Connect(Connection& conn, std::string_view text) {
    std::optional<std::string_view> token = JsonStringField(text, "token");
    std::string user;
    if (token) {
      size_t dot1 = token->find('.');
      size_t dot2 = token->find('.', dot1 + 1);
      if (dot1 != std::string_view::npos && dot2 != std::string_view::npos) {
        if (auto claims = base::Base64UrlDecode(token->substr(dot1 + 1, dot2 - dot1 - 1))) {
          std::string_view json(reinterpret_cast<const char*>(claims->data()), claims->size());
          if (auto sub = JsonStringField(json, "sub")) {
            user.assign(*sub);
          }
        }
      }
    }
    if (user.empty()) {
      SendText(&conn, R"(44{"message":"no user in the token","data":{"code":"INVALID_TOKEN"}})");
      return;
    }
    conn.user = user;
    users_[user] = &conn;
    SendText(&conn, R"(40{"sid":"floor-s)" + std::to_string(next_sid_) + R"("})");
  }

  void Ack(Connection& conn, std::string_view id, std::string_view body) {
    out_.assign("43");
    out_.append(id);
    out_.append("[");
    out_.append(body);
    out_.append("]");
    SendText(&conn, out_);
  }

  // `rest` is what follows "42": the ack id digits, then ["event",{...}].
  void Event(Connection& conn, std::string_view rest) {
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') {
      ++digits;
    }
    std::string_view ack_id = rest.substr(0, digits);
    std::string_view body = rest.substr(digits);
    if (body.size() < 3 || body[0] != '[' || body[1] != '"') {
      return;
    }
    size_t name_end = body.find('"', 2);
    if (name_end == std::string_view::npos) {
      return;
    }
    std::string_view event = body.substr(2, name_end - 2);
    std::string_view args = body.substr(name_end + 1);
    if (event == "initiateCall") {
      std::optional<std::string_view> receiver = JsonStringField(args, "receiverId");
      auto callee = receiver ? users_.find(std::string(*receiver)) : users_.end();
      if (callee == users_.end()) {
        Ack(conn, ack_id, R"({"ok":false,"error":"Receiver not found"})");
        return;
      }
      std::string call_id = "c" + std::to_string(++next_call_);
      calls_[call_id] = Call{&conn, callee->second, conn.user, callee->first};
      Ack(conn, ack_id, R"({"ok":true,"callId":")" + call_id + R"("})");
      SendText(callee->second, R"(42["incomingCall",{"callId":")" + call_id + R"(","callerId":")" +
                                   conn.user + R"(","callType":"audio"}])");
      return;
    }
    if (event != "acceptCall" && event != "endCall") {
      Ack(conn, ack_id, R"({"ok":false,"error":"Unknown event"})");
      return;
    }
    std::optional<std::string_view> id = JsonStringField(args, "callId");
    auto call = id ? calls_.find(std::string(*id)) : calls_.end();
    if (call == calls_.end()) {
      Ack(conn, ack_id, R"({"ok":false,"error":"Call not found"})");
      return;
    }
    Ack(conn, ack_id, R"({"ok":true})");
    if (event == "acceptCall") {
      SendText(call->second.caller, R"(42["callAccepted",{"callId":")" + call->first +
                                        R"(","receiverId":")" + call->second.callee_id + R"("}])");
      return;
    }
    Connection* other = &conn == call->second.caller ? call->second.callee : call->second.caller;
    SendText(other, R"(42["callEnded",{"callId":")" + call->first + R"(","endedBy":")" + conn.user +
                        R"(","reason":"hangup"}])");
    calls_.erase(call);
  }

  int listen_fd_;
  int epoll_fd_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> closed_;
  std::unordered_map<std::string, Connection*> users_;
  std::unordered_map<std::string, Call> calls_;
  uint64_t next_sid_ = 0;
  uint64_t next_call_ = 0;
  std::string frame_;
  std::string message_;
  std::string out_;
};

// A listening TCP socket on `spec` (IP:PORT, port 0 picks one), announced
// as "listening IP:PORT" on stdout; -1 on failure.
int ListenOn(std::string_view spec) {
  std::optional<base::SocketAddress> address = base::SocketAddress::ParseIpPort(spec);
  if (!address) {
    return -1;
  }
  sockaddr_storage storage{};
  const socklen_t len = address->ToSockaddr(&storage);
  int fd = socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0 || listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  std::printf("listening %s\n", LocalAddress(fd).ToString().c_str());
  std::fflush(stdout);
  return fd;
}

}  // namespace
}  // namespace turnkey::bench

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else {
      std::fprintf(stderr, "usage: sio_floor [--listen ADDRESS:PORT]\n");
      return 2;
    }
  }
  int fd = turnkey::bench::ListenOn(listen);
  if (fd < 0) {
    std::fprintf(stderr, "sio_floor: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  turnkey::bench::FloorServer(fd).Run();
  return 1;
}
