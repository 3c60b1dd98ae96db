// HttpRequestParser: a sans-I/O HTTP/1.x request parser over libhttp-parser.
//
// Feed it bytes as they arrive; it consumes them and reports one complete
// request at a time, "need more", or an error kind that maps to the status
// the server should answer with before closing. It never writes, reads the
// clock or logs (DESIGN.md section 1: codecs are sans-I/O).
//
// Usage: Parse(bytes) -> kNeedMore (all bytes consumed; call again with the
// next bytes), kRequest (a request ends at `consumed`; TakeRequest() it, then
// Parse the rest), or kError (error() says which; close the connection after
// answering HttpParseErrorStatus(error())).
//
// Parsing stops after each request, so pipelined requests are returned one
// by one and the bytes after an upgrade request (RFC 9110 section 7.8) are
// left unconsumed for the new protocol. After an upgrade request, or a
// request with keep_alive == false, the parser takes no more input (a
// further Parse is an error).
//
// Expect: 100-continue (RFC 9110 section 10.1.1): once the head of such a
// request is parsed and its body is still missing, TakeContinueRequest()
// returns true once; the caller then sends "100 Continue". Any other
// expectation is kExpectationFailed (417).
//
// Not thread-safe; one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "net/http_request.h"

struct http_parser;

namespace turnkey::net {

// The request size limits: the one place they and their defaults are
// defined (HttpServerOptions carries them for its connections).
struct HttpParserLimits {
  // Request line plus header fields (everything up to and including the
  // empty line), in bytes; more is kHeaderTooLarge (431). Default 16 KiB.
  // libhttp-parser also stops at 80 KiB on its own (same error).
  size_t max_header_bytes = 16 * 1024;
  // The request-target (the path and query of the request line), in bytes;
  // longer is kUriTooLong (414), refused as soon as that many bytes of it
  // arrived. Default 8 KiB, so request lines of 8000 bytes, the least RFC
  // 9112 section 3 recommends supporting, always pass. max_header_bytes
  // still bounds the whole head.
  size_t max_target_bytes = 8 * 1024;
  // Decoded body plus chunked trailers, in bytes; more is kBodyTooLarge
  // (413). A larger Content-Length fails as soon as the head is parsed, a
  // chunk that does not fit as soon as its chunk-size line is. Default 1 MiB.
  size_t max_body_bytes = 1024 * 1024;
};

// HttpRequestParser::error_detail() when its chunked framing check and
// libhttp-parser disagree on where a body ends (a bug; tests/fuzz traps on it).
inline constexpr std::string_view kFramingDisagreement = "chunked framing disagreement";

enum class HttpParseError {
  kNone,
  kMalformed,            // 400: bad syntax, bad or missing Host, CL with chunked, ...
  kUriTooLong,           // 414: the request-target passed max_target_bytes
  kHeaderTooLarge,       // 431: the head passed max_header_bytes
  kBodyTooLarge,         // 413: the body passed max_body_bytes
  kExpectationFailed,    // 417: an Expect other than 100-continue
  kNotImplemented,       // 501: a method token we do not know, CONNECT (no tunnels here), a
                         // transfer coding other than chunked
  kVersionNotSupported,  // 505: HTTP/2 or later on the request line
};

// The status to answer `error` with (400 for kNone, which is not an error).
int HttpParseErrorStatus(HttpParseError error);
// "malformed", "header_too_large", ... for logs and metric labels.
const char* HttpParseErrorName(HttpParseError error);

struct HttpParserHooks;  // the libhttp-parser callbacks (http_request_parser.cc)

class HttpRequestParser {
 public:
  enum class Status {
    kNeedMore,  // every byte given was consumed; the request is not complete yet
    kRequest,   // a complete request ends at `consumed`; call TakeRequest()
    kError,     // see error(); the parser is finished
  };
  struct Result {
    Status status = Status::kNeedMore;
    // Bytes of the input that belong to the request(s) parsed so far. With
    // kRequest, the bytes after `consumed` are the next request (or the
    // upgraded protocol's data).
    size_t consumed = 0;
  };

  explicit HttpRequestParser(const HttpParserLimits& limits = {});
  ~HttpRequestParser();
  HttpRequestParser(HttpRequestParser&& other) noexcept;
  HttpRequestParser& operator=(HttpRequestParser&& other) noexcept;
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Parses from the front of `data`; stops after one complete request.
  // While a returned request has not been taken, returns kRequest with
  // consumed 0.
  Result Parse(base::ByteView data);

  // The request reported by the last kRequest; readies the parser for the
  // next request. Only valid after kRequest.
  HttpRequest TakeRequest();

  HttpParseError error() const { return error_; }
  // A short description of the error for logs; empty without an error.
  const std::string& error_detail() const { return error_detail_; }

  // Some bytes of a request that is not complete yet were consumed (an idle
  // timeout now deserves a 408).
  bool in_progress() const {
    return (message_begun_ || method_scan_ != MethodScan::kBefore) && !message_complete_;
  }
  // The head (request line and headers) of the current request is parsed.
  bool head_complete() const { return headers_complete_; }
  // That head's Content-Length, if it has one (validated).
  std::optional<uint64_t> content_length() const {
    return headers_complete_ ? declared_length_ : std::nullopt;
  }
  // That head (method, target, path, query, headers; the body is partial),
  // for answering an error about the request; null before head_complete().
  const HttpRequest* head() const { return headers_complete_ ? &request_ : nullptr; }
  // True once per request that sent "Expect: 100-continue" and whose body is
  // still to come; the caller should send "HTTP/1.1 100 Continue".
  bool TakeContinueRequest();
  // An upgrade request was returned; the rest of the stream is not HTTP.
  bool upgraded() const { return upgraded_; }

 private:
  friend struct HttpParserHooks;

  void ResetMessage();
  // Records the first error; returns -1 for libhttp-parser to stop.
  int Fail(HttpParseError error, std::string detail);
  // Counts chunked trailer bytes against the body limit.
  int CountTrailer(size_t length);
  // Follows the framing of a chunked body over `length` bytes at `from`, up
  // to the body's end: chunk-size lines with their extensions, the CRLF
  // after each chunk's data (the data itself is skipped, not read), trailer
  // field lines and the empty line. Fails on anything RFC 9112 section 7.1
  // does not allow. What the input ends inside is checked on the next Parse.
  int CheckChunkedFraming(const char* from, size_t length);
  // One byte of the framing outside chunk data (CheckChunkedFraming).
  int StepChunkScan(char byte);
  // A byte after the chunk-size, an extension's name or its token value, or
  // the BWS after them: CR, ";", BWS, and "=" or more of the token where
  // they may come.
  int StepChunkExtension(char byte);
  // Fail for an unexpected byte in a chunk-size line or a trailer line, with
  // a detail that names a bare LF.
  int FailChunkLine(char byte, const char* invalid);
  int FailTrailerLine(char byte);
  // Follows the lines of the head (any empty lines before the request line,
  // the request line, the field lines, the empty line that ends them) over
  // `length` bytes at `from`, up to the head's end; fails on a CR that is
  // not followed by LF. A CR ending the input is checked on the next Parse.
  // Once the head's end is found, `length` is cut to end there.
  int CheckHeadLineEnds(const char* from, size_t& length);
  // Follows the request line's method over `length` bytes at `from`, up to
  // the SP after it: the library refuses a method it does not know at its
  // first unexpected byte, before the token has ended.
  void ScanMethod(const char* from, size_t length);
  // After the library refused the method: 501 for a token ended by SP, 400
  // for anything else, 431 when the head limit comes first; 0 while the
  // token goes on.
  int JudgeUnknownMethod();
  // Transfer-Encoding: chunked, last and once; nothing else (see the .cc).
  int CheckTransferCodings();
  void CommitHeaderField();
  int HeadersComplete();

  std::unique_ptr<http_parser> parser_;
  HttpParserLimits limits_;
  HttpRequest request_;
  std::optional<uint64_t> declared_length_;  // the head's Content-Length
  std::string field_name_;                   // the header field being assembled
  std::string field_value_;
  bool in_field_value_ = false;
  size_t head_bytes_ = 0;     // bytes consumed for the current head
  size_t trailer_bytes_ = 0;  // chunked trailer bytes, counted against the body limit
  // CheckChunkedFraming's place in a chunked body (RFC 9112 section 7.1).
  enum class ChunkScan {
    kOff,            // no chunked body, or its end was reached
    kSizeStart,      // the first hex digit of a chunk-size
    kSize,           // more hex digits, BWS, ";" or CR
    kExtBeforeSemi,  // after BWS or an extension's value: BWS, ";" or CR
    kExtNameStart,   // after ";": BWS, then a chunk-ext-name (a token)
    kExtName,        // inside the name: more of it, BWS, "=", ";" or CR
    kExtAfterName,   // BWS after the name: BWS, "=", ";" or CR
    kExtValueStart,  // after "=": BWS, then a token or a quoted-string
    kExtToken,       // inside a token value: more of it, BWS, ";" or CR
    kExtQuoted,      // inside a quoted-string value
    kExtQuotedPair,  // after a backslash in the quoted-string
    kSizeLineLf,     // the LF after the CR that ends a chunk-size line
    kData,           // chunk data, chunk_data_left_ bytes of it still to come
    kDataCr,         // the CR after a chunk's data
    kDataLf,         // the LF after that CR
    kTrailerStart,   // a trailer field line, or the empty line that ends the body
    kTrailerName,    // inside a trailer field name
    kTrailerValue,   // inside a trailer field value, up to its CR
    kTrailerLf,      // the LF after the CR that ends a trailer field line
    kEndLf,          // the LF of the empty line that ends the body
  };
  ChunkScan chunk_scan_ = ChunkScan::kOff;
  uint64_t chunk_size_ = 0;       // the chunk-size being read, in bytes
  uint64_t chunk_data_left_ = 0;  // data bytes of the current chunk still to come
  // CheckHeadLineEnds' place in the head: the last byte was a CR; the line
  // so far has other bytes; a non-empty line was seen; the head's empty
  // line was reached (no more checking for this request).
  bool head_cr_pending_ = false;
  bool head_line_has_bytes_ = false;
  bool head_line_seen_ = false;
  bool head_lines_done_ = false;
  // ScanMethod's place in the request line. Ordered: kToken and kNotToken
  // end the scan.
  enum class MethodScan {
    kBefore,    // nothing but empty lines yet
    kInToken,   // inside a method of tchars so far
    kToken,     // a token followed by SP
    kNotToken,  // a byte that is neither tchar nor the SP after one
  };
  MethodScan method_scan_ = MethodScan::kBefore;
  // The library refused the method; the scan decides between 501 and 400.
  bool method_unknown_ = false;
  bool message_begun_ = false;
  bool headers_complete_ = false;
  bool message_complete_ = false;
  bool continue_pending_ = false;
  bool finished_ = false;  // no more input accepted (upgrade, close, error)
  bool upgraded_ = false;
  HttpParseError error_ = HttpParseError::kNone;
  std::string error_detail_;
};

}  // namespace turnkey::net
