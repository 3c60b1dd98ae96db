// HttpRequest: one parsed HTTP/1.x request as a plain value, plus the
// percent-decoding helpers that go with request targets.
//
// HttpRequestParser fills the message fields; HttpServer adds the transport
// fields (peer, tls); Router adds the path parameters. Not thread-safe (like
// any value); it may be moved to a worker thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/address.h"
#include "net/http_headers.h"

namespace turnkey::net {

// Splits a query string ("a=1&b=x%20y") into decoded name/value pairs in
// order. A field without '=' has an empty value; empty fields are skipped.
// A name or value with a malformed escape ('%' without two hex digits) is
// kept as written, as Node's query parsers do, so the code that reads it
// refuses it as a bad value instead of never seeing it.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

// Splits a request-target (RFC 9112 section 3.2) into its raw, still
// percent-encoded path and query. origin-form "/a/b?x=1" -> "/a/b", "x=1";
// absolute-form "http://host/a?x" -> "/a", "x" (empty path -> "/");
// asterisk-form "*" -> "*", "". A fragment ("#...") is dropped.
void SplitRequestTarget(std::string_view target, std::string& path, std::string& query);

struct HttpRequest {
  // Request method as sent, upper case: "GET", "POST", ...
  std::string method;
  // The raw request-target from the request line.
  std::string target;
  // The path of `target`, still percent-encoded ("/api/users/a%20b").
  std::string path;
  // The query of `target` without '?', still encoded; empty if none.
  std::string query;
  int version_major = 1;
  int version_minor = 1;
  HttpHeaders headers;
  // The body after transfer decoding (chunked bodies arrive de-chunked).
  std::string body;
  // Whether the client expects the connection to stay open after the
  // response (RFC 9112 section 9.3: HTTP/1.1 unless "Connection: close",
  // HTTP/1.0 only with "Connection: keep-alive").
  bool keep_alive = true;
  // "Connection: upgrade" with an "Upgrade" header: the bytes after this
  // request belong to another protocol (see Responder::TakeOver).
  bool upgrade = false;

  // Set by HttpServer: the client's address and whether it came over TLS.
  base::SocketAddress peer;
  bool tls = false;

  // Set by Router: the ":name" segments (and "*" for the rest of a prefix
  // route) of the matched pattern, percent-decoded.
  std::vector<std::pair<std::string, std::string>> params;

  // The first header named `name` (case-insensitive); see HttpHeaders::Get.
  std::optional<std::string_view> Header(std::string_view name) const { return headers.Get(name); }
  // The first query field named `name`, decoded; nullopt if absent.
  std::optional<std::string> QueryParam(std::string_view name) const;
  // A path parameter set by the router; nullopt if the route had none.
  std::optional<std::string_view> Param(std::string_view name) const;
};

}  // namespace turnkey::net
