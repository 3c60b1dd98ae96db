// HttpResponse: one HTTP/1.1 response as a plain value, and its
// serialization (a pure function: HttpServer decides the framing, this only
// writes bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "net/http_headers.h"

namespace turnkey::net {

struct HttpResponse {
  int status = 200;
  // Empty = the standard phrase for `status` (HttpReasonPhrase).
  std::string reason;
  // Content-Length, Transfer-Encoding and Date set here are ignored: the
  // serializer writes them. "Connection: close" makes the server close the
  // connection after this response.
  HttpHeaders headers;
  std::string body;

  // A response with `body` and a Content-Type.
  static HttpResponse Text(int status, std::string body,
                           std::string content_type = "text/plain; charset=utf-8");
  // A response with no body.
  static HttpResponse Empty(int status);
  // `status` with its reason phrase and a newline as a text body (the
  // server's own error answers: 400, 404, 408, ...).
  static HttpResponse Error(int status);
};

// The RFC 9110 reason phrase for `status` ("Not Found"), or "Unknown".
const char* HttpReasonPhrase(int status);

// IMF-fixdate (RFC 9110 section 5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string FormatHttpDate(int64_t unix_seconds);

// How a response goes on the wire; HttpServer fills it from the request.
struct HttpResponseFraming {
  // HEAD request: headers (including Content-Length) but no body bytes.
  bool head_only = false;
  // Adds "Connection: close" (the server closes after this response).
  bool close = false;
  // Adds "Connection: keep-alive" (an HTTP/1.0 client that asked for it).
  bool keep_alive_header = false;
  // The Date header value; empty = no Date header.
  std::string_view date;
  // A Strict-Transport-Security value (RFC 6797) added unless the response
  // has one; empty = none. Never set over plain HTTP (RFC 6797 section
  // 7.2): HttpServer sets it on TLS connections only.
  std::string_view strict_transport_security;
};

// Serializes `response` as HTTP/1.1. Framing rules (RFC 9110 sections 8.6,
// 15.2, 15.3.5, 15.4.5): Content-Length is the body size, except for 1xx,
// 204 and 304 where neither Content-Length nor body is sent. For 1xx the
// handler's Connection/Upgrade headers are kept (a 101 needs them); for
// other statuses Connection comes from `framing` only. A header whose name
// is not a token or whose value holds CR, LF or NUL is dropped (no response
// splitting); a CR or LF in `reason` is replaced by a space.
std::string SerializeHttpResponse(const HttpResponse& response, const HttpResponseFraming& framing);

}  // namespace turnkey::net
