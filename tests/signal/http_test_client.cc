#include "tests/signal/http_test_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>

namespace turnkey::signal::testing {

namespace {

constexpr int kTimeoutMs = 30000;

std::string Lower(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

HttpTestResponse Parse(const std::string& raw) {
  HttpTestResponse response;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) {
    response.error = "no complete response head: " + raw.substr(0, 200);
    return response;
  }
  response.status = std::stoi(raw.substr(9, 3));
  size_t line_start = raw.find("\r\n") + 2;
  while (line_start < head_end) {
    size_t line_end = raw.find("\r\n", line_start);
    std::string line = raw.substr(line_start, line_end - line_start);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') {
        value.erase(0, 1);
      }
      response.headers[Lower(line.substr(0, colon))] = value;
    }
    line_start = line_end + 2;
  }
  response.body = raw.substr(head_end + 4);
  return response;
}

}  // namespace

nlohmann::json HttpTestResponse::Json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string HttpTestResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

HttpTestResponse SendHttp(const base::SocketAddress& server, const HttpTestRequest& request) {
  HttpTestResponse failed;
  sockaddr_storage address{};
  socklen_t length = server.ToSockaddr(&address);
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failed.error = "socket";
    return failed;
  }
  if (!request.source_ip.empty()) {
    auto source = base::SocketAddress::ParseIp(request.source_ip);
    sockaddr_storage local{};
    const socklen_t local_length = source ? source->ToSockaddr(&local) : 0;
    if (!source || ::bind(fd, reinterpret_cast<sockaddr*>(&local), local_length) != 0) {
      ::close(fd);
      failed.error = "bind " + request.source_ip;
      return failed;
    }
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    ::close(fd);
    failed.error = "connect";
    return failed;
  }
  std::string wire = request.method + " " + request.target +
                     " HTTP/1.1\r\nHost: " + server.ToString() + "\r\nConnection: close\r\n";
  for (const auto& [name, value] : request.headers) {
    wire += name + ": " + value + "\r\n";
  }
  if (!request.bearer.empty()) {
    wire += "Authorization: Bearer " + request.bearer + "\r\n";
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    wire += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  wire += "\r\n" + request.body;
  size_t sent = 0;
  while (sent < wire.size()) {
    ssize_t n = ::send(fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;  // the server may answer (e.g. 413) before reading everything
    }
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  char buffer[16384];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      continue;
    }
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      break;
    }
    raw.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return Parse(raw);
}

HttpTestResponse SendJson(const base::SocketAddress& server, const std::string& method,
                          const std::string& target, const nlohmann::json& body,
                          const std::string& bearer) {
  HttpTestRequest request;
  request.method = method;
  request.target = target;
  request.body = body.dump();
  request.headers.emplace_back("Content-Type", "application/json");
  request.bearer = bearer;
  return SendHttp(server, request);
}

}  // namespace turnkey::signal::testing
