#include "tests/signal/raw_client.h"

#include <charconv>

#include "base/crypto.h"

namespace turnkey::signal::testing {

namespace {

constexpr std::string_view kHeadEnd = "\r\n\r\n";

bool EqualsLower(std::string_view a, std::string_view b) { return net::EqualsIgnoreCase(a, b); }

// Parses the head of a response; the body length from Content-Length.
std::optional<HttpReply> ParseHead(std::string_view head, size_t& body_length) {
  HttpReply reply;
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) {
    return std::nullopt;
  }
  std::string_view code = status_line.substr(9, 3);
  std::from_chars(code.data(), code.data() + code.size(), reply.status);
  body_length = 0;
  size_t pos = line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) {
      end = head.size();
    }
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
    reply.headers.Add(std::string(name), std::string(value));
    if (EqualsLower(name, "Content-Length")) {
      std::from_chars(value.data(), value.data() + value.size(), body_length);
    }
  }
  if (reply.status == 101 || reply.status == 204 || reply.status == 304) {
    body_length = 0;
  }
  return reply;
}

base::Result<size_t> HttpFramer(base::ByteView buffered) {
  std::string_view text = base::AsString(buffered);
  size_t end = text.find(kHeadEnd);
  if (end == std::string_view::npos) {
    return size_t{0};
  }
  size_t body_length = 0;
  if (!ParseHead(text.substr(0, end), body_length)) {
    return base::InvalidArgument("bad response head");
  }
  size_t total = end + kHeadEnd.size() + body_length;
  return buffered.size() >= total ? total : 0;
}

base::Result<size_t> WsFramer(base::ByteView buffered) {
  if (buffered.size() < 2) {
    return size_t{0};
  }
  size_t header = 2;
  uint64_t length = buffered[1] & 0x7f;
  if (length == 126) {
    header = 4;
    if (buffered.size() < header) {
      return size_t{0};
    }
    length = base::LoadBe16(&buffered[2]);
  } else if (length == 127) {
    header = 10;
    if (buffered.size() < header) {
      return size_t{0};
    }
    length = base::LoadBe64(&buffered[2]);
  }
  if (buffered[1] & 0x80) {
    header += 4;  // a masked server frame is a bug, but frame it anyway
  }
  size_t total = header + static_cast<size_t>(length);
  return buffered.size() >= total ? total : 0;
}

}  // namespace

std::unique_ptr<RawClient> RawClient::Connect(uint16_t port) {
  net::BlockingClientOptions options;
  options.transport = net::Transport::kTcp;
  auto client = net::BlockingClient::Connect("127.0.0.1", port, options);
  if (!client) {
    return nullptr;
  }
  return std::unique_ptr<RawClient>(new RawClient(std::move(*client)));
}

bool RawClient::SendRequest(std::string_view method, std::string_view target, std::string_view body,
                            const HeaderList& headers) {
  std::string request;
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  request.append("Host: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers) {
    request.append(name).append(": ").append(value).append("\r\n");
  }
  if (!body.empty() || method == "POST") {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);
  return client_->Send(base::AsBytes(request), 5s).has_value();
}

bool RawClient::SendRaw(std::string_view bytes) {
  return client_->Send(base::AsBytes(bytes), 5s).has_value();
}

std::optional<HttpReply> RawClient::ReadReply(std::chrono::milliseconds timeout) {
  auto frame = client_->ReceiveFrame(HttpFramer, timeout);
  if (!frame) {
    return std::nullopt;
  }
  std::string_view text = base::AsString(*frame);
  size_t end = text.find(kHeadEnd);
  size_t body_length = 0;
  auto reply = ParseHead(text.substr(0, end), body_length);
  if (reply) {
    reply->body.assign(text.substr(end + kHeadEnd.size()));
  }
  return reply;
}

std::optional<HttpReply> RawClient::Request(std::string_view method, std::string_view target,
                                            std::string_view body, const HeaderList& headers) {
  if (!SendRequest(method, target, body, headers)) {
    return std::nullopt;
  }
  return ReadReply();
}

std::optional<HttpReply> RawClient::Upgrade(std::string_view target, const HeaderList& headers) {
  HeaderList all = {{"Upgrade", "websocket"},
                    {"Connection", "Upgrade"},
                    {"Sec-WebSocket-Version", "13"},
                    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}};
  all.insert(all.end(), headers.begin(), headers.end());
  return Request("GET", target, {}, all);
}

bool RawClient::SendFrame(int opcode, std::string_view payload) {
  base::Bytes frame;
  frame.push_back(static_cast<uint8_t>(0x80 | opcode));
  if (payload.size() < 126) {
    frame.push_back(static_cast<uint8_t>(0x80 | payload.size()));
  } else if (payload.size() <= 0xffff) {
    frame.push_back(0x80 | 126);
    base::AppendBe16(frame, static_cast<uint16_t>(payload.size()));
  } else {
    frame.push_back(0x80 | 127);
    base::AppendBe32(frame, 0);
    base::AppendBe32(frame, static_cast<uint32_t>(payload.size()));
  }
  const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  frame.insert(frame.end(), mask, mask + 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    frame.push_back(static_cast<uint8_t>(payload[i]) ^ mask[i % 4]);
  }
  return client_->Send(frame, 5s).has_value();
}

std::optional<WsMessage> RawClient::ReadMessage(std::chrono::milliseconds timeout) {
  auto frame = client_->ReceiveFrame(WsFramer, timeout);
  if (!frame) {
    return std::nullopt;
  }
  const base::Bytes& bytes = *frame;
  WsMessage message;
  message.opcode = bytes[0] & 0x0f;
  size_t header = 2;
  uint64_t length = bytes[1] & 0x7f;
  if (length == 126) {
    header = 4;
  } else if (length == 127) {
    header = 10;
  }
  message.payload.assign(reinterpret_cast<const char*>(bytes.data()) + header,
                         bytes.size() - header);
  return message;
}

bool RawClient::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto frame = client_->ReceiveFrame(WsFramer, left);
    if (!frame) {
      return frame.error().message.find("peer closed") != std::string::npos;
    }
    if (((*frame)[0] & 0x0f) == 8) {
      // Answer the close as a browser would, so the server closes TCP now.
      SendFrame(8, {});
    }
  }
  return false;
}

std::vector<std::string> SplitPayload(std::string_view body) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = body.find('\x1e', start);
    out.emplace_back(body.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) {
      return out;
    }
    start = end + 1;
  }
}

}  // namespace turnkey::signal::testing
