#include "net/http_request_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "base/address.h"
#include "base/bytes.h"

namespace turnkey::net {

namespace {

// HTAB, SP, VCHAR or obs-text: what a field value or a quoted-string may
// hold (RFC 9110 sections 5.5 and 5.6.4); no other control byte.
bool IsFieldTextByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// RFC 3986 section 2.2: sub-delims = "!" / "$" / "&" / "'" / "(" / ")" /
// "*" / "+" / "," / ";" / "=".
bool IsUriSubDelim(char c) {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}

// RFC 3986 section 3.2.2: reg-name = *( unreserved / pct-encoded /
// sub-delims ), possibly empty. Every IPv4address is a reg-name as well.
bool IsRegName(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (text.size() - i < 3 || base::HexDigitValue(text[i + 1]) < 0 ||
          base::HexDigitValue(text[i + 2]) < 0) {
        return false;
      }
      i += 2;
    } else if (!base::IsUriUnreserved(text[i]) && !IsUriSubDelim(text[i])) {
      return false;
    }
  }
  return true;
}

// What RFC 3986 section 3.2.2 allows between the brackets of an
// IP-literal: IPv6address, or IPvFuture = "v" 1*HEXDIG "." 1*( unreserved /
// sub-delims / ":" ).
bool IsIpLiteralAddress(std::string_view text) {
  if (!text.empty() && (text.front() == 'v' || text.front() == 'V')) {
    const size_t dot = text.find('.');
    if (dot == std::string_view::npos || dot < 2 || dot + 1 == text.size()) {
      return false;
    }
    const std::string_view version = text.substr(1, dot - 1);
    const std::string_view rest = text.substr(dot + 1);
    return std::all_of(version.begin(), version.end(),
                       [](char c) { return base::HexDigitValue(c) >= 0; }) &&
           std::all_of(rest.begin(), rest.end(), [](char c) {
             return base::IsUriUnreserved(c) || IsUriSubDelim(c) || c == ':';
           });
  }
  // The text forms of RFC 4291 section 2.2, which IPv6address spells out;
  // no zone ID (that is RFC 6874, not a Host value).
  const auto address = base::SocketAddress::ParseIp(text);
  return address && address->is_v6();
}

// RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
// then "://" for the absolute-form targets a client sends to a proxy.
bool IsAbsoluteForm(std::string_view target) {
  const size_t colon = target.find("://");
  if (colon == 0 || colon == std::string_view::npos) {
    return false;
  }
  const std::string_view scheme = target.substr(0, colon);
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  return alpha(scheme.front()) && std::all_of(scheme.begin(), scheme.end(), [&alpha](char c) {
           return alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
         });
}

// An IPv6 address without the brackets RFC 3986 wants, optionally followed
// by ":" port: Node's xmlhttprequest-ssl, which socket.io-client uses for
// long-polling under Node, sends "::1:8080" for http://[::1]:8080/. It names
// no host but the literal (where it is ambiguous, either reading is one), so
// it is taken; it never equals a bracketed Origin, so it is never
// same-origin.
bool IsUnbracketedIpv6(std::string_view value) {
  const auto is_v6 = [](std::string_view text) {
    const auto address = base::SocketAddress::ParseIp(text);
    return address && address->is_v6();
  };
  if (std::count(value.begin(), value.end(), ':') < 2) {
    return false;
  }
  if (is_v6(value)) {
    return true;
  }
  const size_t colon = value.rfind(':');
  const std::string_view port = value.substr(colon + 1);
  return !port.empty() &&
         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         is_v6(value.substr(0, colon));
}

// RFC 9110 section 7.2: Host = uri-host [ ":" port ], uri-host being
// RFC 3986's host (IP-literal / IPv4address / reg-name) and port = *DIGIT;
// and an unbracketed IPv6 literal (IsUnbracketedIpv6).
bool IsValidHost(std::string_view value) {
  if (IsUnbracketedIpv6(value)) {
    return true;
  }
  std::string_view port;
  if (!value.empty() && value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string_view::npos || !IsIpLiteralAddress(value.substr(1, close - 1))) {
      return false;
    }
    const std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return false;
      }
      port = rest.substr(1);
    }
  } else {
    const size_t colon = value.find(':');
    if (!IsRegName(value.substr(0, colon))) {
      return false;
    }
    if (colon != std::string_view::npos) {
      port = value.substr(colon + 1);
    }
  }
  return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

// Static trampolines from libhttp-parser into the parser object.
struct HttpParserHooks {
  static HttpRequestParser& Self(http_parser* p) {
    return *static_cast<HttpRequestParser*>(p->data);
  }

  static int OnMessageBegin(http_parser* p) {
    Self(p).message_begun_ = true;
    return 0;
  }

  static int OnUrl(http_parser* p, const char* at, size_t length) {
    HttpRequestParser& self = Self(p);
    // RFC 9112 section 3: a request-target longer than the server wishes to
    // parse is answered 414 (RFC 9110 section 15.5.15). The library reports
    // the target piecewise as it arrives, so this stops a slow sender early.
    if (length > self.limits_.max_target_bytes - self.request_.target.size()) {
      return self.Fail(HttpParseError::kUriTooLong, "request-target longer than the limit");
    }
    self.request_.target.append(at, length);
    return 0;
  }

  static int OnHeaderField(http_parser* p, const char* at, size_t length) {
    HttpRequestParser& self = Self(p);
    if (self.headers_complete_) {
      return self.CountTrailer(length);
    }
    if (self.in_field_value_) {
      self.CommitHeaderField();
    }
    self.field_name_.append(at, length);
    return 0;
  }

  static int OnHeaderValue(http_parser* p, const char* at, size_t length) {
    HttpRequestParser& self = Self(p);
    if (self.headers_complete_) {
      return self.CountTrailer(length);
    }
    self.in_field_value_ = true;
    self.field_value_.append(at, length);
    return 0;
  }

  static int OnHeadersComplete(http_parser* p) { return Self(p).HeadersComplete(); }

  static int OnBody(http_parser* p, const char* at, size_t length) {
    HttpRequestParser& self = Self(p);
    if (self.request_.body.size() + self.trailer_bytes_ + length > self.limits_.max_body_bytes) {
      return self.Fail(HttpParseError::kBodyTooLarge, "body larger than the limit");
    }
    self.request_.body.append(at, length);
    return 0;
  }

  static int OnChunkHeader(http_parser* p) {
    HttpRequestParser& self = Self(p);
    // content_length holds the chunk's size here (0 for the last chunk). A
    // size the body limit cannot take is refused now, at its chunk-size
    // line, rather than once its data arrives (RFC 9110 section 15.5.14);
    // a size that overflows 64 bits never gets here (CheckChunkedFraming
    // refuses it, 400), as RFC 9112 section 7.1 asks recipients to guard
    // against.
    if (p->content_length > self.limits_.max_body_bytes - self.request_.body.size()) {
      return self.Fail(HttpParseError::kBodyTooLarge, "chunk larger than the body limit");
    }
    return 0;
  }

  static int OnMessageComplete(http_parser* p) {
    HttpRequestParser& self = Self(p);
    if (self.chunk_scan_ != HttpRequestParser::ChunkScan::kOff) {
      // Our framing check and the library disagree on where a chunked body
      // ends: never expected (the fuzz target traps on this detail), and
      // refused rather than trusted either way.
      return self.Fail(HttpParseError::kMalformed, std::string(kFramingDisagreement));
    }
    self.message_complete_ = true;
    self.continue_pending_ = false;
    if (p->upgrade != 0 || http_should_keep_alive(p) == 0) {
      self.finished_ = true;
      self.upgraded_ = p->upgrade != 0;
    }
    // Stop here so that Parse() returns exactly the bytes of this request.
    http_parser_pause(p, 1);
    return 0;
  }

  static const http_parser_settings& Settings() {
    static const http_parser_settings settings = [] {
      http_parser_settings s;
      http_parser_settings_init(&s);
      s.on_message_begin = &OnMessageBegin;
      s.on_url = &OnUrl;
      s.on_header_field = &OnHeaderField;
      s.on_header_value = &OnHeaderValue;
      s.on_headers_complete = &OnHeadersComplete;
      s.on_body = &OnBody;
      s.on_chunk_header = &OnChunkHeader;
      s.on_message_complete = &OnMessageComplete;
      return s;
    }();
    return settings;
  }
};

int HttpParseErrorStatus(HttpParseError error) {
  switch (error) {
    case HttpParseError::kNone:
    case HttpParseError::kMalformed:
      return 400;
    case HttpParseError::kUriTooLong:
      return 414;
    case HttpParseError::kHeaderTooLarge:
      return 431;
    case HttpParseError::kBodyTooLarge:
      return 413;
    case HttpParseError::kExpectationFailed:
      return 417;
    case HttpParseError::kNotImplemented:
      return 501;
    case HttpParseError::kVersionNotSupported:
      return 505;
  }
  return 400;
}

const char* HttpParseErrorName(HttpParseError error) {
  switch (error) {
    case HttpParseError::kNone:
      return "none";
    case HttpParseError::kMalformed:
      return "malformed";
    case HttpParseError::kUriTooLong:
      return "uri_too_long";
    case HttpParseError::kHeaderTooLarge:
      return "header_too_large";
    case HttpParseError::kBodyTooLarge:
      return "body_too_large";
    case HttpParseError::kExpectationFailed:
      return "expectation_failed";
    case HttpParseError::kNotImplemented:
      return "not_implemented";
    case HttpParseError::kVersionNotSupported:
      return "version_not_supported";
  }
  return "unknown";
}

HttpRequestParser::HttpRequestParser(const HttpParserLimits& limits)
    : parser_(std::make_unique<http_parser>()), limits_(limits) {
  limits_.max_header_bytes = std::max<size_t>(limits_.max_header_bytes, 1);
  http_parser_init(parser_.get(), HTTP_REQUEST);
}

HttpRequestParser::~HttpRequestParser() = default;
HttpRequestParser::HttpRequestParser(HttpRequestParser&& other) noexcept = default;
HttpRequestParser& HttpRequestParser::operator=(HttpRequestParser&& other) noexcept = default;

HttpRequestParser::Result HttpRequestParser::Parse(base::ByteView data) {
  if (message_complete_) {
    return {Status::kRequest, 0};
  }
  if (error_ != HttpParseError::kNone) {
    return {Status::kError, 0};
  }
  if (finished_) {
    Fail(HttpParseError::kMalformed, "input after the last request of the connection");
    return {Status::kError, 0};
  }
  parser_->data = this;
  const char* bytes = reinterpret_cast<const char*>(data.data());
  size_t offset = 0;
  while (offset < data.size()) {
    size_t chunk = data.size() - offset;
    if (!headers_complete_) {
      // Never hand the library more head bytes than the limit allows, so the
      // limit is exact whatever the library's own (global) maximum is. Nor
      // any byte after the head: whether a chunked body follows, which is
      // checked before the library reads it, is known only once it has read
      // the head.
      chunk = std::min(chunk, limits_.max_header_bytes - head_bytes_);
      if (CheckHeadLineEnds(bytes + offset, chunk) != 0) {
        return {Status::kError, offset};
      }
      ScanMethod(bytes + offset, chunk);
    } else if (chunk_scan_ != ChunkScan::kOff) {
      if (CheckChunkedFraming(bytes + offset, chunk) != 0) {
        return {Status::kError, offset};
      }
    }
    if (method_unknown_) {
      // The library stopped at the method; only the scan goes on.
      head_bytes_ += chunk;
      offset += chunk;
      if (JudgeUnknownMethod() != 0) {
        return {Status::kError, offset};
      }
      continue;
    }
    const bool head_was_complete = headers_complete_;
    size_t parsed =
        http_parser_execute(parser_.get(), &HttpParserHooks::Settings(), bytes + offset, chunk);
    offset += parsed;
    if (!head_was_complete && !headers_complete_) {
      head_bytes_ += parsed;
    }
    auto err = static_cast<http_errno>(parser_->http_errno);
    if (err == HPE_PAUSED) {
      http_parser_pause(parser_.get(), 0);
      return {Status::kRequest, offset};
    }
    if (err == HPE_INVALID_METHOD && error_ == HttpParseError::kNone) {
      // The scan has seen the whole chunk; its end may be in the next one.
      head_bytes_ += chunk - parsed;
      offset += chunk - parsed;
      method_unknown_ = true;
      if (JudgeUnknownMethod() != 0) {
        return {Status::kError, offset};
      }
      continue;
    }
    if (err != HPE_OK) {
      if (error_ == HttpParseError::kNone) {
        // Errors raised by our own callbacks are already recorded.
        Fail(err == HPE_HEADER_OVERFLOW ? HttpParseError::kHeaderTooLarge
                                        : HttpParseError::kMalformed,
             http_errno_description(err));
      }
      return {Status::kError, offset};
    }
    if (!headers_complete_ && head_bytes_ >= limits_.max_header_bytes) {
      Fail(HttpParseError::kHeaderTooLarge, "request head larger than the limit");
      return {Status::kError, offset};
    }
    if (parsed == 0) {
      Fail(HttpParseError::kMalformed, "parser made no progress");
      return {Status::kError, offset};
    }
  }
  return {Status::kNeedMore, offset};
}

HttpRequest HttpRequestParser::TakeRequest() {
  HttpRequest request = std::move(request_);
  ResetMessage();
  return request;
}

bool HttpRequestParser::TakeContinueRequest() {
  bool pending = continue_pending_;
  continue_pending_ = false;
  return pending;
}

void HttpRequestParser::ResetMessage() {
  request_ = HttpRequest();
  declared_length_.reset();
  field_name_.clear();
  field_value_.clear();
  in_field_value_ = false;
  head_bytes_ = 0;
  trailer_bytes_ = 0;
  chunk_scan_ = ChunkScan::kOff;
  chunk_size_ = 0;
  chunk_data_left_ = 0;
  head_cr_pending_ = false;
  head_line_has_bytes_ = false;
  head_line_seen_ = false;
  head_lines_done_ = false;
  method_scan_ = MethodScan::kBefore;
  method_unknown_ = false;
  message_begun_ = false;
  headers_complete_ = false;
  message_complete_ = false;
  continue_pending_ = false;
}

int HttpRequestParser::Fail(HttpParseError error, std::string detail) {
  if (error_ == HttpParseError::kNone) {
    error_ = error;
    error_detail_ = std::move(detail);
  }
  finished_ = true;
  continue_pending_ = false;
  return -1;
}

int HttpRequestParser::CountTrailer(size_t length) {
  trailer_bytes_ += length;
  if (request_.body.size() + trailer_bytes_ > limits_.max_body_bytes) {
    return Fail(HttpParseError::kBodyTooLarge, "chunked trailers larger than the limit");
  }
  return 0;
}

int HttpRequestParser::CheckChunkedFraming(const char* from, size_t length) {
  // RFC 9112 section 7.1. libhttp-parser, built without HTTP_PARSER_STRICT
  // as distributions ship it, skips a chunk extension up to the next CR
  // whatever it holds (bare LFs, NULs, a whole request), takes any byte
  // after a CR as its LF and any two bytes after chunk data as CRLF. A
  // peer in front of us that reads those bytes otherwise (ends a line at a
  // bare LF, say) frames the body differently: a request smuggling desync.
  // So the framing is checked here, strictly, before the library reads it;
  // the library still decodes, and both find the same chunk sizes.
  for (const char* end = from + length; from < end && chunk_scan_ != ChunkScan::kOff;) {
    if (chunk_scan_ == ChunkScan::kData) {
      const uint64_t skip = std::min<uint64_t>(chunk_data_left_, static_cast<size_t>(end - from));
      from += skip;
      chunk_data_left_ -= skip;
      if (chunk_data_left_ == 0) {
        chunk_scan_ = ChunkScan::kDataCr;
      }
      continue;
    }
    if (StepChunkScan(*from) != 0) {
      return -1;
    }
    ++from;
  }
  return 0;
}

int HttpRequestParser::StepChunkScan(char byte) {
  // chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
  // last-chunk = 1*("0") [ chunk-ext ] CRLF
  // chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
  // chunk-ext-name = token; chunk-ext-val = token / quoted-string
  // trailer-section = *( field-line CRLF ), then the CRLF that ends the body
  const bool ows = byte == ' ' || byte == '\t';
  const bool tchar = IsHttpTokenChar(byte);
  const int hex = base::HexDigitValue(byte);
  switch (chunk_scan_) {
    case ChunkScan::kSizeStart:
      if (hex < 0) {
        return FailChunkLine(byte, "invalid chunk size");
      }
      chunk_size_ = static_cast<uint64_t>(hex);
      chunk_scan_ = ChunkScan::kSize;
      return 0;
    case ChunkScan::kSize:
      if (hex >= 0) {
        // Section 7.1 asks recipients to guard against overflow. The
        // library's own check lets some wrapped sizes through; refused here
        // first, it never reads a size other than the one skipped here.
        if (chunk_size_ > (UINT64_MAX >> 4)) {
          return Fail(HttpParseError::kMalformed, "chunk size overflows 64 bits");
        }
        chunk_size_ = chunk_size_ << 4 | static_cast<uint64_t>(hex);
        return 0;
      }
      return StepChunkExtension(byte);
    case ChunkScan::kExtBeforeSemi:
    case ChunkScan::kExtName:
    case ChunkScan::kExtAfterName:
    case ChunkScan::kExtToken:
      return StepChunkExtension(byte);
    case ChunkScan::kExtNameStart:
      if (tchar) {
        chunk_scan_ = ChunkScan::kExtName;
      } else if (!ows) {
        return FailChunkLine(byte, "invalid chunk extension");
      }
      return 0;
    case ChunkScan::kExtValueStart:
      if (byte == '"') {
        chunk_scan_ = ChunkScan::kExtQuoted;
      } else if (tchar) {
        chunk_scan_ = ChunkScan::kExtToken;
      } else if (!ows) {
        return FailChunkLine(byte, "invalid chunk extension");
      }
      return 0;
    case ChunkScan::kExtQuoted:
      // RFC 9110 section 5.6.4: qdtext, or a backslash starting a quoted-pair.
      if (byte == '"') {
        chunk_scan_ = ChunkScan::kExtBeforeSemi;
      } else if (byte == '\\') {
        chunk_scan_ = ChunkScan::kExtQuotedPair;
      } else if (!IsFieldTextByte(byte)) {
        return FailChunkLine(byte, "invalid chunk extension");
      }
      return 0;
    case ChunkScan::kExtQuotedPair:
      if (!IsFieldTextByte(byte)) {
        return FailChunkLine(byte, "invalid chunk extension");
      }
      chunk_scan_ = ChunkScan::kExtQuoted;
      return 0;
    case ChunkScan::kSizeLineLf:
      if (byte != '\n') {
        return Fail(HttpParseError::kMalformed, "CR not followed by LF in a chunk-size line");
      }
      chunk_data_left_ = chunk_size_;
      chunk_scan_ = chunk_size_ == 0 ? ChunkScan::kTrailerStart : ChunkScan::kData;
      return 0;
    case ChunkScan::kDataCr:
    case ChunkScan::kDataLf:
      if (byte != (chunk_scan_ == ChunkScan::kDataCr ? '\r' : '\n')) {
        return Fail(HttpParseError::kMalformed, "chunk data not followed by CRLF");
      }
      chunk_scan_ = chunk_scan_ == ChunkScan::kDataCr ? ChunkScan::kDataLf : ChunkScan::kSizeStart;
      return 0;
    case ChunkScan::kTrailerStart:
      // A line starting with SP or HTAB (obs-fold) is refused as well, as
      // RFC 9112 section 5.2 allows.
      if (byte == '\r') {
        chunk_scan_ = ChunkScan::kEndLf;
      } else if (tchar) {
        chunk_scan_ = ChunkScan::kTrailerName;
      } else {
        return FailTrailerLine(byte);
      }
      return 0;
    case ChunkScan::kTrailerName:
      if (byte == ':') {
        chunk_scan_ = ChunkScan::kTrailerValue;
      } else if (!tchar) {
        return FailTrailerLine(byte);
      }
      return 0;
    case ChunkScan::kTrailerValue:
      if (byte == '\r') {
        chunk_scan_ = ChunkScan::kTrailerLf;
      } else if (!IsFieldTextByte(byte)) {
        return FailTrailerLine(byte);
      }
      return 0;
    case ChunkScan::kTrailerLf:
    case ChunkScan::kEndLf:
      if (byte != '\n') {
        return Fail(HttpParseError::kMalformed, "CR not followed by LF in the chunked trailers");
      }
      chunk_scan_ = chunk_scan_ == ChunkScan::kEndLf ? ChunkScan::kOff : ChunkScan::kTrailerStart;
      return 0;
    case ChunkScan::kOff:
    case ChunkScan::kData:
      break;  // CheckChunkedFraming handles these
  }
  return 0;
}

int HttpRequestParser::StepChunkExtension(char byte) {
  const ChunkScan at = chunk_scan_;
  const bool ows = byte == ' ' || byte == '\t';
  const bool tchar = IsHttpTokenChar(byte);
  const bool in_name = at == ChunkScan::kExtName;
  const bool in_token = at == ChunkScan::kExtToken;
  const bool after_name = in_name || at == ChunkScan::kExtAfterName;
  if (byte == '\r') {
    chunk_scan_ = ChunkScan::kSizeLineLf;
  } else if (byte == ';') {
    chunk_scan_ = ChunkScan::kExtNameStart;
  } else if (ows) {
    chunk_scan_ = after_name ? ChunkScan::kExtAfterName : ChunkScan::kExtBeforeSemi;
  } else if (byte == '=' && after_name) {
    chunk_scan_ = ChunkScan::kExtValueStart;
  } else if (!(tchar && (in_name || in_token))) {
    return FailChunkLine(byte,
                         at == ChunkScan::kSize ? "invalid chunk size" : "invalid chunk extension");
  }
  return 0;
}

int HttpRequestParser::FailChunkLine(char byte, const char* invalid) {
  return Fail(HttpParseError::kMalformed, byte == '\n' ? "bare LF in a chunk-size line" : invalid);
}

int HttpRequestParser::FailTrailerLine(char byte) {
  return Fail(HttpParseError::kMalformed,
              byte == '\n' ? "bare LF in the chunked trailers" : "invalid trailer field line");
}

int HttpRequestParser::CheckHeadLineEnds(const char* from, size_t& length) {
  // RFC 9112 section 2.2: a bare CR (one not followed by LF) in a protocol
  // element makes it invalid. libhttp-parser, built without
  // HTTP_PARSER_STRICT, takes any byte after the CR of an empty line (the
  // head's last, or one before the request line) as its LF. A bare LF ends
  // a line, as section 2.2 allows; the library reads lines the same way, so
  // both find the same end of the head, and the body is not looked at.
  const char* const begin = from;
  for (const char* end = from + length; from < end && !head_lines_done_; ++from) {
    const char byte = *from;
    if (head_cr_pending_ && byte != '\n') {
      return Fail(HttpParseError::kMalformed, "CR not followed by LF in the request head");
    }
    head_cr_pending_ = byte == '\r';
    if (byte == '\n') {
      head_lines_done_ = !head_line_has_bytes_ && head_line_seen_;
      head_line_seen_ = head_line_seen_ || head_line_has_bytes_;
      head_line_has_bytes_ = false;
    } else if (byte != '\r') {
      head_line_has_bytes_ = true;
    }
  }
  if (head_lines_done_) {
    length = static_cast<size_t>(from - begin);
  }
  return 0;
}

void HttpRequestParser::ScanMethod(const char* from, size_t length) {
  // RFC 9112 section 3: request-line = method SP request-target SP
  // HTTP-version, and method is a token (RFC 9110 section 9.1). Empty lines
  // before it are skipped, as section 2.2 allows and the library does.
  for (const char* end = from + length; from < end && method_scan_ < MethodScan::kToken; ++from) {
    const char byte = *from;
    if (method_scan_ == MethodScan::kBefore && (byte == '\r' || byte == '\n')) {
      continue;
    }
    if (method_scan_ == MethodScan::kInToken && byte == ' ') {
      method_scan_ = MethodScan::kToken;
    } else if (IsHttpTokenChar(byte)) {
      method_scan_ = MethodScan::kInToken;
    } else {
      method_scan_ = MethodScan::kNotToken;
    }
  }
}

int HttpRequestParser::JudgeUnknownMethod() {
  // RFC 9110 section 15.6.2: 501 for a method the server does not
  // recognize; a method that is not a token makes no request line (400).
  if (method_scan_ == MethodScan::kToken) {
    return Fail(HttpParseError::kNotImplemented, "unknown method");
  }
  if (method_scan_ == MethodScan::kNotToken) {
    return Fail(HttpParseError::kMalformed, "invalid method");
  }
  if (head_bytes_ >= limits_.max_header_bytes) {
    return Fail(HttpParseError::kHeaderTooLarge, "request head larger than the limit");
  }
  return 0;
}

void HttpRequestParser::CommitHeaderField() {
  request_.headers.Add(std::move(field_name_), std::string(TrimOws(field_value_)));
  field_name_.clear();
  field_value_.clear();
  in_field_value_ = false;
}

int HttpRequestParser::HeadersComplete() {
  if (in_field_value_ || !field_name_.empty()) {
    CommitHeaderField();
  }
  headers_complete_ = true;
  http_parser* p = parser_.get();
  request_.method = http_method_str(static_cast<http_method>(p->method));
  request_.version_major = p->http_major;
  request_.version_minor = p->http_minor;
  request_.keep_alive = http_should_keep_alive(p) != 0;
  request_.upgrade = p->upgrade != 0;
  SplitRequestTarget(request_.target, request_.path, request_.query);

  if (p->http_major != 1) {
    // HTTP/0.9 has no head to answer in; 2 and later need their own framing.
    return p->http_major == 0
               ? Fail(HttpParseError::kMalformed, "HTTP/0.9 request")
               : Fail(HttpParseError::kVersionNotSupported, "unsupported HTTP version");
  }
  for (const auto& [name, value] : request_.headers) {
    // libhttp-parser accepts spaces inside field names; RFC 9112 section 5.1
    // requires a 400 (a smuggling vector through lenient proxies).
    if (!IsHttpToken(name)) {
      return Fail(HttpParseError::kMalformed, "invalid header field name");
    }
  }
  if (p->method == HTTP_CONNECT) {
    return Fail(HttpParseError::kNotImplemented, "CONNECT is not supported");
  }
  // RFC 9112 section 3.2: a target is origin-form ("/..."), absolute-form
  // ("scheme://..."), or "*" for OPTIONS only (authority-form is CONNECT's).
  // libhttp-parser lets "*app.js" through, which a router would read as a
  // path.
  if (const std::string& target = request_.target; !target.starts_with('/') &&
                                                   !(target == "*" && p->method == HTTP_OPTIONS) &&
                                                   !IsAbsoluteForm(target)) {
    return Fail(HttpParseError::kMalformed, "invalid request-target");
  }
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one in 1.0.
  size_t hosts = request_.headers.Count("Host");
  if (hosts > 1 || (hosts == 0 && p->http_minor >= 1)) {
    return Fail(HttpParseError::kMalformed, "missing or repeated Host header");
  }
  // RFC 6454 section 7.3: a request carries at most one Origin. With two,
  // which one a check reads decides it (a browser never sends two).
  if (request_.headers.Count("Origin") > 1) {
    return Fail(HttpParseError::kMalformed, "repeated Origin header");
  }
  // Section 3.2 again: a Host with an invalid value is a 400 as well.
  if (auto host = request_.headers.Get("Host"); host && !IsValidHost(*host)) {
    return Fail(HttpParseError::kMalformed, "invalid Host header");
  }
  // Section 3.2.2: with an absolute-form target the host is the target's,
  // whatever Host says (the same-origin check compares Origin with it).
  if (IsAbsoluteForm(request_.target)) {
    const std::string_view rest =
        std::string_view(request_.target).substr(request_.target.find("://") + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    if (authority.empty() || !IsValidHost(authority)) {
      return Fail(HttpParseError::kMalformed, "invalid host in the request-target");
    }
    request_.headers.Set("Host", std::string(authority));
  }
  if (p->upgrade != 0 && p->http_minor == 0) {
    // RFC 9110 section 7.8: a server MUST ignore Upgrade in an HTTP/1.0
    // request (and RFC 6455 section 4.2.1 wants HTTP/1.1 for a WebSocket).
    // libhttp-parser reads the flag only after this callback.
    p->upgrade = 0;
    request_.upgrade = false;
  }
  if (request_.headers.Has("Transfer-Encoding")) {
    // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
    // faulty framing (a 1.0 proxy in front may frame it by Content-Length
    // or the close).
    if (p->http_minor == 0) {
      return Fail(HttpParseError::kMalformed, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (int failed = CheckTransferCodings(); failed != 0) {
      return failed;
    }
  }
  const bool chunked = (p->flags & F_CHUNKED) != 0;
  if (chunked) {
    chunk_scan_ = ChunkScan::kSizeStart;
  }
  const bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
  if (has_length && p->content_length > limits_.max_body_bytes) {
    return Fail(HttpParseError::kBodyTooLarge, "Content-Length larger than the limit");
  }
  if (has_length) {
    declared_length_ = p->content_length;
  }
  if (auto expect = request_.headers.Get("Expect"); expect) {
    if (!EqualsIgnoreCase(*expect, "100-continue")) {
      return Fail(HttpParseError::kExpectationFailed, "unsupported expectation");
    }
    // RFC 9110 section 10.1.1: ignore it from HTTP/1.0 clients and when no
    // body follows.
    continue_pending_ = p->http_minor >= 1 && (chunked || (has_length && p->content_length > 0));
  }
  if (has_length) {
    request_.body.reserve(static_cast<size_t>(p->content_length));
  }
  return 0;
}

int HttpRequestParser::CheckTransferCodings() {
  // RFC 9112 section 6.1: every Transfer-Encoding field, in order, is one
  // list of codings. Only chunked is implemented, and it frames the body
  // only as the final coding, applied once; section 6.3 item 4 answers a
  // request without it last with 400. Any other coding is 501.
  bool chunked_last = false;
  bool unknown = false;
  const bool after_chunked =
      request_.headers.AnyListElement("Transfer-Encoding", [&](std::string_view element) {
        const std::string_view coding = TrimOws(element.substr(0, element.find(';')));
        if (coding.empty()) {
          return false;
        }
        if (chunked_last) {
          return true;
        }
        chunked_last = EqualsIgnoreCase(coding, "chunked");
        unknown = unknown || !chunked_last;
        return false;
      });
  if (after_chunked || !chunked_last) {
    return Fail(HttpParseError::kMalformed, "chunked is not the final transfer coding");
  }
  if (unknown) {
    return Fail(HttpParseError::kNotImplemented, "unsupported transfer coding");
  }
  return 0;
}

}  // namespace turnkey::net
