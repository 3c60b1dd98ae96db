#include "bench/signaling/sio_client.h"

#include <errno.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <iterator>
#include <string>
#include <utility>

#include "base/bytes.h"
#include "base/crypto.h"
#include "bench/signaling/ws_client_codec.h"
#include "bench/udp_util.h"

namespace turnkey::bench {
namespace {

// RFC 6455 section 1.3: the GUID appended to the key for Sec-WebSocket-Accept.
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// Largest message accepted from the server; both servers default to 1 MB.
constexpr uint64_t kMaxMessage = 1 << 20;
constexpr size_t kMaxResponseHeader = 16 * 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads a decimal ack id at the start of `s`; advances `s` past it.
uint64_t TakeNumber(std::string_view& s) {
  uint64_t value = 0;
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    value = value * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
  }
  s.remove_prefix(i);
  return value;
}

}  // namespace

SioClient::SioClient(int fd, std::string_view host, std::string_view path, std::string auth_json,
                     SioClientHandler& handler, std::vector<SioClient*>& dirty, uint64_t tag)
    : fd_(fd),
      host_(host),
      path_(path),
      auth_json_(std::move(auth_json)),
      handler_(handler),
      dirty_(dirty),
      tag_(tag),
      mask_state_(static_cast<uint32_t>(base::RandomUint64()) | 1) {
  std::array<uint8_t, 16> nonce;
  const uint64_t a = base::RandomUint64();
  const uint64_t b = base::RandomUint64();
  std::memcpy(nonce.data(), &a, 8);
  std::memcpy(nonce.data() + 8, &b, 8);
  ws_key_ = base::Base64Encode(nonce);
  // RFC 6455 section 4.1: the opening handshake; no Origin (not a browser).
  out_ = fmt::format(
      "GET {}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
      path_, host_, ws_key_);
}

SioClient::~SioClient() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void SioClient::SetState(State next) {
  // Forward only, or to kClosed from anywhere.
  if (next == State::kClosed || static_cast<int>(next) == static_cast<int>(state_) + 1) {
    state_ = next;
  }
}

void SioClient::OnWritable() {
  if (state_ == State::kClosed) {
    return;
  }
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err != 0) {
      Close("connect: " + ErrnoText(err));
      return;
    }
    SetState(State::kUpgrading);
  }
  Flush();
}

void SioClient::OnHangup() {
  if (state_ == State::kClosed) {
    return;
  }
  // Read what is left first: the server's last words may explain the close.
  OnReadable();
  if (state_ != State::kClosed) {
    Close("connection closed by the server");
  }
}

void SioClient::OnReadable() {
  if (state_ == State::kClosed || state_ == State::kConnecting) {
    return;
  }
  thread_local std::array<char, 64 * 1024> buffer;
  while (true) {
    ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n > 0) {
      in_.append(buffer.data(), static_cast<size_t>(n));
      if (static_cast<size_t>(n) < buffer.size()) {
        break;
      }
      continue;
    }
    if (n == 0) {
      Process();
      Close("connection closed by the server");
      return;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    }
    Close("read: " + ErrnoText(errno));
    return;
  }
  Process();
}

void SioClient::Process() {
  if (state_ == State::kUpgrading && !ProcessUpgradeResponse()) {
    return;
  }
  while (state_ != State::kClosed && in_start_ < in_.size()) {
    const std::string_view input = std::string_view(in_).substr(in_start_);
    const WsServerFrame frame = ParseServerFrame(input, kMaxMessage);
    if (frame.status == WsParseStatus::kNeedMore) {
      break;
    }
    if (frame.status == WsParseStatus::kError) {
      Close(std::string("websocket: ") + frame.error);
      return;
    }
    in_start_ += frame.consumed;
    switch (frame.opcode) {
      case WsOpcode::kText:
      case WsOpcode::kBinary:
        if (in_fragment_) {
          Close("websocket: new message inside a fragmented one");
          return;
        }
        if (frame.fin) {
          if (frame.opcode == WsOpcode::kText) {
            OnMessage(frame.payload);
          }
        } else {
          in_fragment_ = true;
          fragment_text_ = frame.opcode == WsOpcode::kText;
          fragmented_.assign(frame.payload);
        }
        break;
      case WsOpcode::kContinuation:
        if (!in_fragment_) {
          Close("websocket: continuation without a message");
          return;
        }
        if (fragmented_.size() + frame.payload.size() > kMaxMessage) {
          Close("websocket: message larger than the limit");
          return;
        }
        fragmented_.append(frame.payload);
        if (frame.fin) {
          in_fragment_ = false;
          const std::string message = std::move(fragmented_);
          fragmented_.clear();
          if (fragment_text_) {
            OnMessage(message);
          }
        }
        break;
      case WsOpcode::kPing:
        // Section 5.5.3: a Pong with the same payload, as soon as practical.
        QueueFrame(static_cast<uint8_t>(WsOpcode::kPong), frame.payload);
        break;
      case WsOpcode::kPong:
        break;
      case WsOpcode::kClose:
        Close("websocket close frame from the server");
        return;
    }
  }
  if (in_start_ == in_.size()) {
    in_.clear();
    in_start_ = 0;
  } else if (in_start_ > 64 * 1024) {
    in_.erase(0, in_start_);
    in_start_ = 0;
  }
}

bool SioClient::ProcessUpgradeResponse() {
  const size_t end = in_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (in_.size() > kMaxResponseHeader) {
      Close("upgrade: response header too long");
    }
    return false;
  }
  const std::string_view head = std::string_view(in_).substr(0, end);
  size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  if (status_line.substr(0, 13) != "HTTP/1.1 101 ") {
    const std::string_view body = std::string_view(in_).substr(end + 4, 200);
    Close(fmt::format("upgrade refused: {} {}", status_line, body));
    return false;
  }
  const base::Sha1Digest digest = base::Sha1(base::AsBytes(ws_key_ + std::string(kWebSocketGuid)));
  const std::string expected = base::Base64Encode(digest);
  bool accepted = false;
  while (line_end != std::string_view::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(
        start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos &&
        EqualsIgnoreCase(Trim(line.substr(0, colon)), "Sec-WebSocket-Accept")) {
      accepted = Trim(line.substr(colon + 1)) == expected;
    }
  }
  if (!accepted) {
    Close("upgrade: missing or wrong Sec-WebSocket-Accept");
    return false;
  }
  in_start_ = end + 4;
  SetState(State::kOpening);
  return true;
}

void SioClient::OnMessage(std::string_view text) {
  if (text.empty()) {
    Close("engine.io: empty packet");
    return;
  }
  switch (text[0]) {
    case '0':  // open
      if (state_ == State::kOpening) {
        QueueText("40" + auth_json_);
        SetState(State::kJoining);
      }
      return;
    case '2':  // ping: the server's heartbeat, answered at once
      QueueText("3");
      return;
    case '3':
    case '6':
      return;
    case '1':
      Close("engine.io close from the server");
      return;
    case '4':
      OnSocketIoPacket(text.substr(1));
      return;
    default:
      Close(fmt::format("engine.io: bad packet type '{}'", text[0]));
      return;
  }
}

void SioClient::OnSocketIoPacket(std::string_view packet) {
  if (packet.empty()) {
    Close("socket.io: empty packet");
    return;
  }
  const char type = packet[0];
  std::string_view rest = packet.substr(1);
  if (!rest.empty() && rest[0] == '/') {
    const size_t comma = rest.find(',');
    if (rest.substr(0, comma) != "/") {
      return;  // another namespace: not ours
    }
    rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
  }
  switch (type) {
    case '0':  // CONNECT accepted
      if (state_ == State::kJoining) {
        SetState(State::kReady);
        was_ready_ = true;
        handler_.OnReady(*this);
      }
      return;
    case '4':  // CONNECT_ERROR
      Close(fmt::format("CONNECT_ERROR {}", rest));
      return;
    case '1':
      Close("socket.io: the server disconnected the socket");
      return;
    case '2': {  // EVENT ["name", ...]
      TakeNumber(rest);
      if (rest.size() < 3 || rest[0] != '[' || rest[1] != '"') {
        Close("socket.io: event without a name");
        return;
      }
      const size_t name_end = rest.find('"', 2);
      if (name_end == std::string_view::npos) {
        Close("socket.io: event without a name");
        return;
      }
      handler_.OnEvent(*this, rest.substr(2, name_end - 2), packet);
      return;
    }
    case '3': {  // ACK <id>[...]
      const uint64_t id = TakeNumber(rest);
      handler_.OnAck(*this, id, rest);
      return;
    }
    default:
      return;  // binary events and acks: not part of this contract
  }
}

void SioClient::QueueText(std::string_view text) {
  QueueFrame(static_cast<uint8_t>(WsOpcode::kText), text);
}

void SioClient::QueueFrame(uint8_t opcode, std::string_view payload) {
  if (state_ == State::kClosed) {
    return;
  }
  // xorshift32: masking keys only need to differ from frame to frame for a
  // load generator; RFC 6455 section 10.3's unpredictability protects
  // browsers against cache poisoning, which is not a concern here.
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 17;
  mask_state_ ^= mask_state_ << 5;
  AppendClientFrame(out_, static_cast<WsOpcode>(opcode), payload, mask_state_);
  if (!on_dirty_list_) {
    on_dirty_list_ = true;
    dirty_.push_back(this);
  }
}

void SioClient::Emit(std::string_view event, std::string_view json_arg, uint64_t ack_id) {
  if (state_ != State::kReady) {
    return;
  }
  thread_local std::string text;
  text.clear();
  text.append("42");
  if (ack_id != 0) {
    fmt::format_to(std::back_inserter(text), "{}", ack_id);
  }
  text.append("[\"");
  text.append(event);
  text.append("\",");
  text.append(json_arg);
  text.push_back(']');
  QueueText(text);
}

bool SioClient::Flush() {
  on_dirty_list_ = false;
  if (state_ == State::kClosed) {
    return false;
  }
  if (state_ == State::kConnecting) {
    return true;
  }
  while (out_start_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
    if (n > 0) {
      out_start_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    }
    Close("write: " + ErrnoText(errno));
    return false;
  }
  out_.clear();
  out_start_ = 0;
  return false;
}

void SioClient::Close(std::string_view why) {
  if (state_ == State::kClosed) {
    return;
  }
  state_ = State::kClosed;
  ::close(fd_);
  fd_ = -1;
  out_.clear();
  out_start_ = 0;
  in_.clear();
  in_start_ = 0;
  handler_.OnClosed(*this, why);
}

}  // namespace turnkey::bench
