#include "net/http_response.h"

#include <fmt/format.h>

#include <ctime>
#include <iterator>

namespace turnkey::net {

namespace {

bool HasForbiddenValueByte(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool BodyAllowed(int status) { return status >= 200 && status != 204 && status != 304; }

struct ReasonPhrase {
  int status;
  const char* phrase;
};

// RFC 9110 section 15 (413 and 422 under their RFC 9110 names).
constexpr ReasonPhrase kReasonPhrases[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

}  // namespace

HttpResponse HttpResponse::Text(int status, std::string body, std::string content_type) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers.Set("Content-Type", std::move(content_type));
  return response;
}

HttpResponse HttpResponse::Empty(int status) {
  HttpResponse response;
  response.status = status;
  return response;
}

HttpResponse HttpResponse::Error(int status) {
  return Text(status, std::string(HttpReasonPhrase(status)) + "\n");
}

const char* HttpReasonPhrase(int status) {
  for (const auto& entry : kReasonPhrases) {
    if (entry.status == status) {
      return entry.phrase;
    }
  }
  return "Unknown";
}

std::string FormatHttpDate(int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t seconds = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) {
    return {};
  }
  // Day and month names are fixed English (not the process locale).
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT", kDays[tm.tm_wday % 7],
                     tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

std::string SerializeHttpResponse(const HttpResponse& response,
                                  const HttpResponseFraming& framing) {
  const int status = response.status;
  const bool informational = status >= 100 && status < 200;
  std::string reason = response.reason.empty() ? HttpReasonPhrase(status) : response.reason;
  for (char& c : reason) {
    if (c == '\r' || c == '\n' || c == '\0') {
      c = ' ';
    }
  }
  std::string out;
  out.reserve(128 + response.body.size());
  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\n", status, reason);
  for (const auto& [name, value] : response.headers) {
    if (!IsHttpToken(name) || HasForbiddenValueByte(value) ||
        EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
        EqualsIgnoreCase(name, "Date") ||
        (!informational && EqualsIgnoreCase(name, "Connection"))) {
      continue;
    }
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (!framing.date.empty()) {
    out.append("Date: ").append(framing.date).append("\r\n");
  }
  if (!framing.strict_transport_security.empty() && !informational &&
      !response.headers.Has("Strict-Transport-Security")) {
    out.append("Strict-Transport-Security: ")
        .append(framing.strict_transport_security)
        .append("\r\n");
  }
  if (BodyAllowed(status)) {
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", response.body.size());
  }
  if (!informational) {
    if (framing.close) {
      out.append("Connection: close\r\n");
    } else if (framing.keep_alive_header) {
      out.append("Connection: keep-alive\r\n");
    }
  }
  out.append("\r\n");
  if (BodyAllowed(status) && !framing.head_only) {
    out.append(response.body);
  }
  return out;
}

}  // namespace turnkey::net
