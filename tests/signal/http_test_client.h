// A minimal blocking HTTP/1.1 client for the account service tests: one
// request per connection ("Connection: close"), Content-Length bodies, a
// receive timeout so a hung server fails the test instead of blocking it.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/address.h"

namespace turnkey::signal::testing {

struct HttpTestResponse {
  int status = 0;                              // 0: no valid response (error holds why)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string error;

  // The body parsed as JSON (null on failure).
  nlohmann::json Json() const;
  std::string Header(const std::string& lower_name) const;
};

struct HttpTestRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Adds "Authorization: Bearer <token>" when non-empty.
  std::string bearer;
  // The client's own address (e.g. 127.0.0.2, another loopback client);
  // empty: the kernel's choice.
  std::string source_ip;
};

HttpTestResponse SendHttp(const base::SocketAddress& server, const HttpTestRequest& request);

// POST/PUT/PATCH with a JSON body.
HttpTestResponse SendJson(const base::SocketAddress& server, const std::string& method,
                          const std::string& target, const nlohmann::json& body,
                          const std::string& bearer = "");

}  // namespace turnkey::signal::testing
