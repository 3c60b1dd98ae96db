// HttpRequestParser: good requests, chunked bodies, pipelining, every split
// point, limits, malformed input and upgrades.
#include "net/http_request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turnkey::net {
namespace {

using Status = HttpRequestParser::Status;

// What a connection would see: requests in order, then maybe an error, and
// the bytes left unconsumed after an upgrade or error.
struct Outcome {
  std::vector<HttpRequest> requests;
  HttpParseError error = HttpParseError::kNone;
  std::string unconsumed;
};

// Feeds `chunks` the way HttpServer does: unconsumed bytes stay buffered
// and are offered again with the next chunk. Stops parsing at an upgrade
// (the rest is collected as unconsumed) or an error.
Outcome Feed(const std::vector<std::string>& chunks, HttpParserLimits limits = {}) {
  HttpRequestParser parser(limits);
  Outcome outcome;
  std::string buffered;
  for (const std::string& chunk : chunks) {
    buffered += chunk;
    while (!buffered.empty() && !parser.upgraded()) {
      auto result = parser.Parse(base::AsBytes(buffered));
      EXPECT_LE(result.consumed, buffered.size());
      if (result.status == Status::kError) {
        outcome.error = parser.error();
        outcome.unconsumed = buffered.substr(result.consumed);
        return outcome;
      }
      buffered.erase(0, result.consumed);
      if (result.status == Status::kNeedMore) {
        EXPECT_TRUE(buffered.empty());
        break;
      }
      outcome.requests.push_back(parser.TakeRequest());
    }
  }
  outcome.unconsumed = buffered;
  return outcome;
}

Outcome FeedAll(const std::string& bytes, HttpParserLimits limits = {}) {
  return Feed({bytes}, limits);
}

// The same input split at `at`, and byte by byte.
std::vector<Outcome> FeedEverySplit(const std::string& bytes, HttpParserLimits limits = {}) {
  std::vector<Outcome> outcomes;
  for (size_t at = 0; at <= bytes.size(); ++at) {
    outcomes.push_back(Feed({bytes.substr(0, at), bytes.substr(at)}, limits));
  }
  std::vector<std::string> singles;
  for (char c : bytes) {
    singles.emplace_back(1, c);
  }
  outcomes.push_back(Feed(singles, limits));
  return outcomes;
}

TEST(HttpRequestParserTest, SimpleGet) {
  Outcome out = FeedAll(
      "GET /api/users/a%20b?x=1&y=two HTTP/1.1\r\nHost: example.org\r\n"
      "X-Spaces:   padded value \t\r\nAccept: a\r\nACCEPT: b\r\n\r\n");
  ASSERT_EQ(out.error, HttpParseError::kNone);
  ASSERT_EQ(out.requests.size(), 1u);
  const HttpRequest& r = out.requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/api/users/a%20b?x=1&y=two");
  EXPECT_EQ(r.path, "/api/users/a%20b");
  EXPECT_EQ(r.query, "x=1&y=two");
  EXPECT_EQ(r.version_major, 1);
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.upgrade);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.Header("host"), "example.org");
  EXPECT_EQ(r.Header("x-spaces"), "padded value");
  EXPECT_EQ(r.Header("Accept"), "a");
  EXPECT_EQ(r.headers.Count("accept"), 2u);
  EXPECT_EQ(r.QueryParam("y"), "two");
  EXPECT_TRUE(out.unconsumed.empty());
}

TEST(HttpRequestParserTest, KeepAliveRules) {
  struct Case {
    const char* request;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    Outcome out = FeedAll(c.request);
    ASSERT_EQ(out.requests.size(), 1u) << c.request;
    EXPECT_EQ(out.requests[0].keep_alive, c.keep_alive) << c.request;
  }
}

TEST(HttpRequestParserTest, ContentLengthBody) {
  Outcome out = FeedAll(
      "POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "Content-Length: 13\r\n\r\n{\"a\":\"hello\"}");
  ASSERT_EQ(out.requests.size(), 1u);
  EXPECT_EQ(out.requests[0].method, "POST");
  EXPECT_EQ(out.requests[0].body, "{\"a\":\"hello\"}");
}

TEST(HttpRequestParserTest, ChunkedBodyWithExtensionsAndTrailers) {
  const std::string request =
      "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "7\r\n, world\r\n"
      "0\r\nX-Trailer: ignored\r\n\r\n";
  for (const Outcome& out : FeedEverySplit(request)) {
    ASSERT_EQ(out.error, HttpParseError::kNone);
    ASSERT_EQ(out.requests.size(), 1u);
    EXPECT_EQ(out.requests[0].body, "hello, world");
    EXPECT_FALSE(out.requests[0].headers.Has("X-Trailer"));
  }
}

TEST(HttpRequestParserTest, ChunkExtensionsOfEveryValidShapePass) {
  // RFC 9112 section 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
  // [ BWS "=" BWS chunk-ext-val ] ), a token or a quoted-string as value.
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string bodies[] = {
      "2;name=value\r\n{}\r\n0\r\n\r\n",
      "2;name=\"quoted \\\" string\"\r\n{}\r\n0\r\n\r\n",
      "2 ; a ; b=c\r\n{}\r\n0\r\n\r\n",
      "2;a = b;c=\"\"\r\n{}\r\n0;last\r\n\r\n",
      "2;a=\"\t\xe9\\\xe9\"\r\n{}\r\n0\r\n\r\n",
      "2;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\n{}\r\n0\r\n\r\n",
      "0002\r\n{}\r\n00\r\n\r\n",
      "2\r\n{}\r\n0\r\nX-A: b\r\nX-B:\r\nX-C: \t\xe9 \"v\" \r\n\r\n",
  };
  for (const std::string& body : bodies) {
    for (const Outcome& out : FeedEverySplit(head + body + next)) {
      ASSERT_EQ(out.error, HttpParseError::kNone)
          << ::testing::PrintToString(body) << ": got " << HttpParseErrorName(out.error);
      ASSERT_EQ(out.requests.size(), 2u) << ::testing::PrintToString(body);
      EXPECT_EQ(out.requests[0].body, "{}");
      EXPECT_EQ(out.requests[1].path, "/next");
    }
  }
}

TEST(HttpRequestParserTest, MalformedChunkLinesAndTrailersAre400) {
  // libhttp-parser skips a chunk extension up to the next CR and takes any
  // byte after a CR as LF. A peer that ends a line at a bare LF would frame
  // these bodies differently (request smuggling), so each is refused.
  using namespace std::string_literals;
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string bodies[] = {
      "2;foo\nbar\r\n{}\r\n0\r\n\r\n",                 // a bare LF in the extension
      "2;a\x00"s + "b\r\n{}\r\n0\r\n\r\n",             // NUL in the extension
      "2;a\x01z\r\n{}\r\n0\r\n\r\n",                   // a CTL in the extension
      "2\r\n{}\r\n0;x\nGET /readyz HTTP/1.1\r\n\r\n",  // a request inside the extension
      "2\n{}\n0\n\n",                                  // a bare LF ends the size line
      "2;a\n{}\r\n0\r\n\r\n",                          // ... or the extension
      "2\rX{}\r\n0\r\n\r\n",                           // a bare CR ends the size line
      "2;a\rX{}\r\n0\r\n\r\n",                         // ... or the extension
      "2;\r\n{}\r\n0\r\n\r\n",                         // no name
      "2;=b\r\n{}\r\n0\r\n\r\n",                       // no name before "="
      "2;a=\r\n{}\r\n0\r\n\r\n",                       // no value after "="
      "2;a b\r\n{}\r\n0\r\n\r\n",                      // two tokens
      "2;a=b c\r\n{}\r\n0\r\n\r\n",                    // a value of two tokens
      "2;a=b=c\r\n{}\r\n0\r\n\r\n",                    // "=" twice
      "2;a/b\r\n{}\r\n0\r\n\r\n",                      // a name that is not a token
      "2;a=\"x\r\n{}\r\n0\r\n\r\n",                    // an unterminated quoted-string
      "2;a=\"x\"y\r\n{}\r\n0\r\n\r\n",                 // bytes after the quoted-string
      "2;a=\"\x7f\"\r\n{}\r\n0\r\n\r\n",               // DEL in the quoted-string
      "2;a=\"\\\x01\"\r\n{}\r\n0\r\n\r\n",             // a CTL in a quoted-pair
      "2 3\r\n{}\r\n0\r\n\r\n",                        // a size of two numbers
      "2 x\r\n{}\r\n0\r\n\r\n",                        // a token after BWS
      "10000000000000000\r\n",                         // a size over 64 bits
      "0\r\nX: y\n\r\n",                               // a bare LF ends a trailer line
      "0\r\nX: y\r\n\n",                               // ... or the trailers
      "0\r\n\n",                                       // ... or an empty trailer section
      "0\r\nX: y\rZ: w\r\n\r\n",                       // a bare CR in the trailers
      "0\r\n\rX",                                      // ... in the last line
      "0\r\n X: y\r\n\r\n",                            // obs-fold
      "0\r\nX y: z\r\n\r\n",                           // a name that is not a token
      "0\r\nX: a\x01z\r\n\r\n",                        // a CTL in a trailer value
      "0\r\nNo-Colon\r\n\r\n",                         // not a field line
  };
  for (const std::string& body : bodies) {
    for (const Outcome& out : FeedEverySplit(head + body)) {
      EXPECT_EQ(out.error, HttpParseError::kMalformed)
          << ::testing::PrintToString(body) << ": got " << HttpParseErrorName(out.error);
      EXPECT_TRUE(out.requests.empty()) << ::testing::PrintToString(body);
    }
  }
  // The smuggling shape, with the detail it logs.
  HttpRequestParser parser;
  auto result = parser.Parse(base::AsBytes(std::string_view(
      "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2;foo\nbar\r\n{}\r\n0\r\n\r\n")));
  EXPECT_EQ(result.status, Status::kError);
  EXPECT_EQ(parser.error_detail(), "bare LF in a chunk-size line");
}

TEST(HttpRequestParserTest, PipelinedRequestsInOneBufferComeOneByOne) {
  const std::string first = "GET /first HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  const std::string both = first + second;
  HttpRequestParser parser;
  auto r1 = parser.Parse(base::AsBytes(both));
  ASSERT_EQ(r1.status, Status::kRequest);
  EXPECT_EQ(r1.consumed, first.size());
  // Not taken yet: the parser holds it.
  EXPECT_EQ(parser.Parse(base::AsBytes(both).subspan(r1.consumed)).consumed, 0u);
  EXPECT_EQ(parser.TakeRequest().path, "/first");
  auto r2 = parser.Parse(base::AsBytes(both).subspan(r1.consumed));
  ASSERT_EQ(r2.status, Status::kRequest);
  EXPECT_EQ(r2.consumed, second.size());
  HttpRequest request = parser.TakeRequest();
  EXPECT_EQ(request.path, "/second");
  EXPECT_EQ(request.body, "abc");
}

TEST(HttpRequestParserTest, EverySplitPointGivesTheSameRequests) {
  const std::string bytes =
      "GET /a?q=1 HTTP/1.1\r\nHost: h\r\nX-One: 1\r\n\r\n"
      "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345"
      "PATCH /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
      "DELETE /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  for (const Outcome& out : FeedEverySplit(bytes)) {
    ASSERT_EQ(out.error, HttpParseError::kNone);
    ASSERT_EQ(out.requests.size(), 4u);
    EXPECT_EQ(out.requests[0].path, "/a");
    EXPECT_EQ(out.requests[0].Header("X-One"), "1");
    EXPECT_EQ(out.requests[1].method, "PUT");
    EXPECT_EQ(out.requests[1].body, "12345");
    EXPECT_EQ(out.requests[2].body, "xy");
    EXPECT_EQ(out.requests[3].method, "DELETE");
    EXPECT_FALSE(out.requests[3].keep_alive);
    EXPECT_TRUE(out.unconsumed.empty());
  }
}

TEST(HttpRequestParserTest, TargetForms) {
  Outcome absolute = FeedAll("GET http://example.org:8080/p/q?x=%2F HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(absolute.requests.size(), 1u);
  EXPECT_EQ(absolute.requests[0].path, "/p/q");
  EXPECT_EQ(absolute.requests[0].QueryParam("x"), "/");
  // RFC 9112 section 3.2.2: the target's host, not Host's.
  EXPECT_EQ(absolute.requests[0].headers.Get("Host"), "example.org:8080");
  Outcome bare = FeedAll("GET http://[::1]:80 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(bare.requests.size(), 1u);
  EXPECT_EQ(bare.requests[0].path, "/");
  EXPECT_EQ(bare.requests[0].headers.Get("Host"), "[::1]:80");
  Outcome asterisk = FeedAll("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(asterisk.requests.size(), 1u);
  EXPECT_EQ(asterisk.requests[0].path, "*");
  Outcome fragment = FeedAll("GET /x#frag HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(fragment.requests.size(), 1u);
  EXPECT_EQ(fragment.requests[0].path, "/x");
  // Any other form is a 400 (RFC 9112 section 3.2), not a path.
  for (const char* bad : {"GET * HTTP/1.1", "GET *app.js HTTP/1.1", "GET app.js HTTP/1.1",
                          "POST * HTTP/1.1", "GET ://x/ HTTP/1.1", "GET 1http://x/ HTTP/1.1",
                          "GET http:///x HTTP/1.1", "GET http://user@h/x HTTP/1.1"}) {
    Outcome out = FeedAll(std::string(bad) + "\r\nHost: h\r\n\r\n");
    EXPECT_EQ(out.error, HttpParseError::kMalformed) << bad;
    EXPECT_TRUE(out.requests.empty()) << bad;
  }
}

TEST(HttpRequestParserTest, HeadExactlyAtTheLimitPassesOneMoreByteIs431) {
  const std::string start = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  HttpParserLimits limits;
  limits.max_header_bytes = 256;
  const std::string fits = start + std::string(256 - start.size() - end.size(), 'a') + end;
  ASSERT_EQ(fits.size(), 256u);
  const std::string too_big = start + std::string(257 - start.size() - end.size(), 'a') + end;
  for (const Outcome& out :
       FeedEverySplit(fits + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n", limits)) {
    EXPECT_EQ(out.error, HttpParseError::kNone);
    EXPECT_EQ(out.requests.size(), 2u);
  }
  for (const Outcome& out : FeedEverySplit(too_big, limits)) {
    EXPECT_EQ(out.error, HttpParseError::kHeaderTooLarge);
    EXPECT_TRUE(out.requests.empty());
  }
  EXPECT_EQ(HttpParseErrorStatus(HttpParseError::kHeaderTooLarge), 431);
}

TEST(HttpRequestParserTest, TargetExactlyAtTheLimitPassesOneMoreByteIs414) {
  HttpParserLimits limits;
  limits.max_target_bytes = 64;
  const std::string fits = "/" + std::string(63, 'a');
  const std::string end = " HTTP/1.1\r\nHost: h\r\n\r\n";
  for (const Outcome& out : FeedEverySplit("GET " + fits + end, limits)) {
    ASSERT_EQ(out.error, HttpParseError::kNone);
    ASSERT_EQ(out.requests.size(), 1u);
    EXPECT_EQ(out.requests[0].target, fits);
  }
  for (const Outcome& out : FeedEverySplit("GET " + fits + "b" + end, limits)) {
    EXPECT_EQ(out.error, HttpParseError::kUriTooLong) << HttpParseErrorName(out.error);
    EXPECT_TRUE(out.requests.empty());
  }
  EXPECT_EQ(HttpParseErrorStatus(HttpParseError::kUriTooLong), 414);
}

TEST(HttpRequestParserTest, LongTargetIs414BeforeTheRequestLineEnds) {
  // The default limit: a request line of 8000 bytes (RFC 9112 section 3's
  // recommended minimum) passes; a 16,000-byte target, well inside the head
  // limit, is refused as soon as the limit is passed.
  const HttpParserLimits defaults;
  const std::string request_line = "GET /" + std::string(8000 - 16, 'a') + " HTTP/1.1\r\n";
  ASSERT_EQ(request_line.size(), 8000u);
  Outcome fits = FeedAll(request_line + "Host: h\r\n\r\n");
  ASSERT_EQ(fits.error, HttpParseError::kNone);
  ASSERT_EQ(fits.requests.size(), 1u);

  ASSERT_LT(16000u, defaults.max_header_bytes);
  HttpRequestParser parser;
  const std::string start = "GET /" + std::string(defaults.max_target_bytes, 'a');
  auto result = parser.Parse(base::AsBytes(start));
  EXPECT_EQ(result.status, Status::kError);
  EXPECT_EQ(parser.error(), HttpParseError::kUriTooLong);
  Outcome refused = FeedAll("GET /" + std::string(16000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(refused.error, HttpParseError::kUriTooLong);
  EXPECT_TRUE(refused.requests.empty());
}

TEST(HttpRequestParserTest, EndlessHeadWithoutEndIs431) {
  HttpParserLimits limits;
  limits.max_header_bytes = 1024;
  std::vector<std::string> chunks = {"GET / HTTP/1.1\r\nHost: h\r\n"};
  for (int i = 0; i < 100; ++i) {
    chunks.push_back("X-Header-" + std::to_string(i) + ": value\r\n");
  }
  EXPECT_EQ(Feed(chunks, limits).error, HttpParseError::kHeaderTooLarge);
}

TEST(HttpRequestParserTest, BodyLimits) {
  HttpParserLimits limits;
  limits.max_body_bytes = 10;
  // Exactly at the limit.
  Outcome fits =
      FeedAll("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits);
  ASSERT_EQ(fits.requests.size(), 1u);
  // A larger Content-Length fails on the head alone, before any body byte.
  HttpRequestParser parser(limits);
  auto result = parser.Parse(
      base::AsBytes(std::string_view("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n")));
  EXPECT_EQ(result.status, Status::kError);
  EXPECT_EQ(parser.error(), HttpParseError::kBodyTooLarge);
  EXPECT_EQ(HttpParseErrorStatus(parser.error()), 413);
  // Chunked bodies are counted as they arrive.
  const std::string chunked =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\n012345\r\n5\r\n67890\r\n0\r\n\r\n";
  for (const Outcome& out : FeedEverySplit(chunked, limits)) {
    EXPECT_EQ(out.error, HttpParseError::kBodyTooLarge);
  }
  // Trailers count against the body limit too.
  Outcome trailers = FeedAll(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "8\r\n01234567\r\n0\r\nX-Long-Trailer: abcdef\r\n\r\n",
      limits);
  EXPECT_EQ(trailers.error, HttpParseError::kBodyTooLarge);
}

TEST(HttpRequestParserTest, ChunkSizeOverTheBodyLimitIsRefusedAtItsLine) {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  HttpParserLimits limits;
  limits.max_body_bytes = 10;
  struct Case {
    const char* name;
    std::string chunks;  // everything after the head, up to a chunk-size line
    HttpParseError error;
  };
  const Case cases[] = {
      // RFC 9110 section 15.5.14: 413, before any of the chunk's data.
      {"2^60", "1000000000000000\r\n", HttpParseError::kBodyTooLarge},
      {"one over the limit", "b\r\n", HttpParseError::kBodyTooLarge},
      {"second chunk over the rest", "6\r\n012345\r\n5;ext=1\r\n", HttpParseError::kBodyTooLarge},
      {"leading zeros", "000000000000000000000b\r\n", HttpParseError::kBodyTooLarge},
      // RFC 9112 section 7.1: a size that overflows is malformed (400).
      {"2^64", "10000000000000000\r\n", HttpParseError::kMalformed},
      {"2^68", "100000000000000000\r\n", HttpParseError::kMalformed},
  };
  for (const Case& c : cases) {
    HttpRequestParser parser(limits);
    auto result = parser.Parse(base::AsBytes(head + c.chunks));
    EXPECT_EQ(result.status, Status::kError) << c.name;
    EXPECT_EQ(parser.error(), c.error) << c.name << ": got " << HttpParseErrorName(parser.error());
  }
  // Exactly what is left fits.
  Outcome fits = FeedAll(head + "6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n", limits);
  ASSERT_EQ(fits.error, HttpParseError::kNone);
  ASSERT_EQ(fits.requests.size(), 1u);
  EXPECT_EQ(fits.requests[0].body, "0123456789");
}

TEST(HttpRequestParserTest, MalformedRequests) {
  struct Case {
    const char* name;
    std::string bytes;
    HttpParseError error;
  };
  const Case cases[] = {
      {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HttpParseError::kMalformed},
      // RFC 9110 sections 9.1 and 15.6.2: a method token the server does not
      // know is 501 (methods are case-sensitive, so "get" is one of them); a
      // method that is not a token is not a request line at all (400).
      {"lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kNotImplemented},
      {"unknown method", "FROB / HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kNotImplemented},
      {"unknown method like a known one", "GETS / HTTP/1.1\r\nHost: h\r\n\r\n",
       HttpParseError::kNotImplemented},
      {"unknown method of tchars", "X-~!#$%&'*+.^_`|9 / HTTP/1.1\r\nHost: h\r\n\r\n",
       HttpParseError::kNotImplemented},
      {"unknown method after empty lines", "\r\n\nFROB / HTTP/1.1\r\nHost: h\r\n\r\n",
       HttpParseError::kNotImplemented},
      {"method not a token", "FR(B / HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"method with a separator", "GE/T / HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"method not ended by SP", "FROB\t/ HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"method alone on its line", "FROB\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"space before the method", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"status line", "HTTP/1.1 200 OK\r\n\r\n", HttpParseError::kMalformed},
      {"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"bad version", "GET / HTTP/x.1\r\nHost: h\r\n\r\n", HttpParseError::kMalformed},
      {"HTTP/0.9", "GET /\r\n\r\n", HttpParseError::kMalformed},
      {"HTTP/2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", HttpParseError::kVersionNotSupported},
      {"no host 1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", HttpParseError::kMalformed},
      {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HttpParseError::kMalformed},
      {"two origins",
       "GET / HTTP/1.1\r\nHost: a\r\nOrigin: http://a\r\nOrigin: http://evil\r\n\r\n",
       HttpParseError::kMalformed},
      {"space in field name", "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
       HttpParseError::kMalformed},
      {"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A : x\r\n\r\n",
       HttpParseError::kMalformed},
      {"control char in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n",
       HttpParseError::kMalformed},
      {"CL and chunked",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       HttpParseError::kMalformed},
      {"two CLs", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       HttpParseError::kMalformed},
      {"bad CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
       HttpParseError::kMalformed},
      {"gzip TE", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
       HttpParseError::kMalformed},
      {"bad chunk size",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
       HttpParseError::kMalformed},
      // RFC 9112 section 7.1: chunk-data CRLF.
      {"chunk data without CRLF",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n4helloXX0\r\n\r\n",
       HttpParseError::kMalformed},
      {"chunk data with CR only",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rX0\r\n\r\n",
       HttpParseError::kMalformed},
      {"chunk data with LF only",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n",
       HttpParseError::kMalformed},
      {"second chunk without CRLF",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
       "1\r\na\r\n2\r\nbcXY0\r\n\r\n",
       HttpParseError::kMalformed},
      // RFC 9112 sections 6.1 and 6.3: chunked once and last (400); no other
      // coding is implemented (501).
      {"chunked then gzip",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       HttpParseError::kMalformed},
      {"chunked twice",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
       HttpParseError::kMalformed},
      {"gzip, chunked",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       HttpParseError::kNotImplemented},
      {"gzip and chunked in two fields",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       HttpParseError::kNotImplemented},
      {"identity, chunked",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
       HttpParseError::kNotImplemented},
      // RFC 9112 section 6.1: faulty framing in HTTP/1.0.
      {"chunked in 1.0",
       "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\n{}\r\n0\r\n\r\n",
       HttpParseError::kMalformed},
      {"CONNECT", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n",
       HttpParseError::kNotImplemented},
      {"odd expectation",
       "POST / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n",
       HttpParseError::kExpectationFailed},
  };
  for (const Case& c : cases) {
    for (const Outcome& out : FeedEverySplit(c.bytes)) {
      EXPECT_EQ(out.error, c.error) << c.name << ": got " << HttpParseErrorName(out.error);
      EXPECT_TRUE(out.requests.empty()) << c.name;
    }
  }
  EXPECT_EQ(HttpParseErrorStatus(HttpParseError::kMalformed), 400);
  EXPECT_EQ(HttpParseErrorStatus(HttpParseError::kExpectationFailed), 417);
  EXPECT_EQ(HttpParseErrorStatus(HttpParseError::kNotImplemented), 501);
  EXPECT_EQ(HttpParseErrorStatus(HttpParseError::kVersionNotSupported), 505);
}

TEST(HttpRequestParserTest, HostMustBeAUriHostAndPort) {
  // RFC 9112 section 3.2: a Host with an invalid value is 400. RFC 9110
  // section 7.2: Host = uri-host [ ":" port ], in RFC 3986's grammar.
  const std::string valid[] = {
      "localhost",
      "127.0.0.1:48300",
      "[::1]:48300",
      "[::1]",
      "[2001:db8::7]:",
      "[::ffff:192.0.2.1]",
      "[v1.fe80::a+en1]",
      "example.org",
      "EXAMPLE.org:80",
      "a-b_c~d.e",
      "%41%62",
      "!$&'()*+,;=",
      "999.999.999.999",  // not an IPv4address, but a reg-name
      "",                 // an empty reg-name (section 3.2: no authority)
      ":80",
      // Unbracketed IPv6 literals, with or without a port: Node's
      // xmlhttprequest-ssl (socket.io-client's polling under Node) sends them.
      "::1",
      "::1:48300",
      "2001:db8::7:443",
  };
  for (const std::string& host : valid) {
    Outcome out = FeedAll("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    EXPECT_EQ(out.error, HttpParseError::kNone)
        << ::testing::PrintToString(host) << ": got " << HttpParseErrorName(out.error);
    EXPECT_EQ(out.requests.size(), 1u) << ::testing::PrintToString(host);
  }
  const std::string invalid[] = {
      "a b",
      "a\tb",
      "user@example.org",
      "example.org/path",
      "example.org?q",
      "example.org#f",
      "a:b",
      "a:80:80",
      "a:-1",
      "a: 80",
      "%4",
      "%zz",
      "a\"b",
      "a<b>",
      "\xe9.example",
      "::g",
      "1:2:3",
      "[::1",
      "[::1]80",
      "[::1]:x",
      "[::1]]",
      "[]",
      "[1.2.3.4]",
      "[::g]",
      "[fe80::1%25en0]",
      "[v1]",
      "[v.a]",
      "[vx.a]",
      "[v1.]",
      "[v1.a/b]",
  };
  for (const std::string& host : invalid) {
    Outcome out = FeedAll("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    EXPECT_EQ(out.error, HttpParseError::kMalformed)
        << ::testing::PrintToString(host) << ": got " << HttpParseErrorName(out.error);
    EXPECT_TRUE(out.requests.empty()) << ::testing::PrintToString(host);
  }
  // An HTTP/1.0 request may leave Host out, but not send a bad one.
  EXPECT_EQ(FeedAll("GET / HTTP/1.0\r\n\r\n").requests.size(), 1u);
  EXPECT_EQ(FeedAll("GET / HTTP/1.0\r\nHost: a b\r\n\r\n").error, HttpParseError::kMalformed);
}

TEST(HttpRequestParserTest, UnknownMethodIsJudgedOnItsWholeToken) {
  // libhttp-parser stops at the first byte that no method it knows has
  // there; the rest of the token decides between 501 and 400, even when it
  // arrives later.
  HttpRequestParser parser;
  auto first = parser.Parse(base::AsBytes("FR"));
  EXPECT_EQ(first.status, Status::kNeedMore);
  EXPECT_EQ(first.consumed, 2u);
  EXPECT_EQ(parser.error(), HttpParseError::kNone);
  EXPECT_TRUE(parser.in_progress());
  EXPECT_EQ(parser.Parse(base::AsBytes("OB")).status, Status::kNeedMore);
  EXPECT_EQ(parser.Parse(base::AsBytes(" / HTTP/1.1\r\n")).status, Status::kError);
  EXPECT_EQ(parser.error(), HttpParseError::kNotImplemented);

  // A token that never ends is bounded by the head limit.
  HttpParserLimits limits;
  limits.max_header_bytes = 64;
  for (const Outcome& out : FeedEverySplit("FROB" + std::string(80, 'x'), limits)) {
    EXPECT_EQ(out.error, HttpParseError::kHeaderTooLarge) << HttpParseErrorName(out.error);
  }
  // Exactly at the limit the token still counts.
  Outcome fits = FeedAll("FROB" + std::string(59, 'x') + " / HTTP/1.1\r\n\r\n", limits);
  EXPECT_EQ(fits.error, HttpParseError::kNotImplemented) << HttpParseErrorName(fits.error);
}

TEST(HttpRequestParserTest, BareCrInTheHeadIs400) {
  // RFC 9112 section 2.2: a CR not followed by LF invalidates the element it
  // is in; anywhere in the head, the request is refused.
  const std::string cases[] = {
      "GET / HTTP/1.1\rHost: h\r\n\r\n",
      "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\rc\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A\r: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n\rX",
      "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
      "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
      "\r\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\rX",
  };
  for (const std::string& bytes : cases) {
    for (const Outcome& out : FeedEverySplit(bytes)) {
      EXPECT_EQ(out.error, HttpParseError::kMalformed)
          << ::testing::PrintToString(bytes) << ": got " << HttpParseErrorName(out.error);
      EXPECT_TRUE(out.requests.empty()) << ::testing::PrintToString(bytes);
    }
  }
  // The second request of a connection is checked as well.
  Outcome second = FeedAll(
      "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /2 HTTP/1.1\r\nHost: h\r\n\rX");
  EXPECT_EQ(second.requests.size(), 1u);
  EXPECT_EQ(second.error, HttpParseError::kMalformed);
}

TEST(HttpRequestParserTest, LineEndsThatAreNotBareCrPass) {
  // Section 2.2: an empty line before the request line is ignored, a bare
  // LF may end a line, and a CR in the content is not a line end at all.
  const std::string bytes =
      "\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /b HTTP/1.1\nHost: h\nX-A: b\n\n"
      "POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\na\rb\r"
      "POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\n\r\r\r\n0\r\n\r\n";
  for (const Outcome& out : FeedEverySplit(bytes)) {
    ASSERT_EQ(out.error, HttpParseError::kNone) << HttpParseErrorName(out.error);
    ASSERT_EQ(out.requests.size(), 4u);
    EXPECT_EQ(out.requests[1].Header("X-A"), "b");
    EXPECT_EQ(out.requests[2].body, "a\rb\r");
    EXPECT_EQ(out.requests[3].body, "\r\r");
  }
}

TEST(HttpRequestParserTest, ErrorIsFinal) {
  HttpRequestParser parser;
  auto bad = parser.Parse(base::AsBytes(std::string_view("BAD\x01 / HTTP/1.1\r\n")));
  EXPECT_EQ(bad.status, Status::kError);
  EXPECT_FALSE(parser.error_detail().empty());
  auto again = parser.Parse(base::AsBytes(std::string_view("GET / HTTP/1.1\r\nHost: h\r\n\r\n")));
  EXPECT_EQ(again.status, Status::kError);
  EXPECT_EQ(again.consumed, 0u);
}

TEST(HttpRequestParserTest, NoInputAfterAConnectionCloseRequest) {
  Outcome out = FeedAll(
      "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
      "GET /more HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(out.requests.size(), 1u);
  EXPECT_EQ(out.error, HttpParseError::kMalformed);
}

TEST(HttpRequestParserTest, UpgradeStopsAtTheHeadAndLeavesTheRest) {
  const std::string head =
      "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: h\r\n"
      "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const std::string frames =
      std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11) + "GET / HTTP/1.1\r\n\r\n";
  for (const Outcome& out : FeedEverySplit(head + frames)) {
    ASSERT_EQ(out.error, HttpParseError::kNone);
    ASSERT_EQ(out.requests.size(), 1u);
    EXPECT_TRUE(out.requests[0].upgrade);
    EXPECT_EQ(out.requests[0].QueryParam("transport"), "websocket");
    EXPECT_EQ(out.unconsumed, frames);
  }
  HttpRequestParser parser;
  auto result = parser.Parse(base::AsBytes(head + frames));
  ASSERT_EQ(result.status, Status::kRequest);
  EXPECT_EQ(result.consumed, head.size());
  parser.TakeRequest();
  EXPECT_TRUE(parser.upgraded());
  EXPECT_EQ(parser.Parse(base::AsBytes(frames)).status, Status::kError);
}

TEST(HttpRequestParserTest, ChunkedCodingNamesAreCaseInsensitive) {
  Outcome out = FeedAll(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  ASSERT_EQ(out.error, HttpParseError::kNone);
  ASSERT_EQ(out.requests.size(), 1u);
  EXPECT_EQ(out.requests[0].body, "abc");
}

TEST(HttpRequestParserTest, UpgradeFromHttp10IsIgnored) {
  // RFC 9110 section 7.8: Upgrade in an HTTP/1.0 request is ignored, so it
  // is a plain request (and never becomes a WebSocket, RFC 6455 s4.2.1).
  const std::string request =
      "GET /socket.io/?EIO=4&transport=websocket HTTP/1.0\r\nHost: h\r\n"
      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  HttpRequestParser parser;
  auto result = parser.Parse(base::AsBytes(request));
  ASSERT_EQ(result.status, Status::kRequest);
  EXPECT_EQ(result.consumed, request.size());
  HttpRequest taken = parser.TakeRequest();
  EXPECT_FALSE(taken.upgrade);
  EXPECT_FALSE(taken.keep_alive);
  EXPECT_FALSE(parser.upgraded());
}

TEST(HttpRequestParserTest, UpgradeHeaderWithoutConnectionTokenIsPlainHttp) {
  Outcome out = FeedAll(
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(out.requests.size(), 2u);
  EXPECT_FALSE(out.requests[0].upgrade);
}

TEST(HttpRequestParserTest, ExpectContinueIsReportedOnceWhileTheBodyIsMissing) {
  HttpRequestParser parser;
  const std::string head =
      "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
  auto first = parser.Parse(base::AsBytes(head));
  EXPECT_EQ(first.status, Status::kNeedMore);
  EXPECT_TRUE(parser.in_progress());
  EXPECT_TRUE(parser.head_complete());
  EXPECT_TRUE(parser.TakeContinueRequest());
  EXPECT_FALSE(parser.TakeContinueRequest());
  auto body = parser.Parse(base::AsBytes(std::string_view("data")));
  ASSERT_EQ(body.status, Status::kRequest);
  EXPECT_EQ(parser.TakeRequest().body, "data");
  EXPECT_FALSE(parser.in_progress());

  // Body already there, or HTTP/1.0, or no body: nothing to ask for.
  HttpRequestParser whole;
  whole.Parse(base::AsBytes(head + "data"));
  EXPECT_FALSE(whole.TakeContinueRequest());
  HttpRequestParser old;
  old.Parse(base::AsBytes(
      std::string_view("PUT /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")));
  EXPECT_FALSE(old.TakeContinueRequest());
  HttpRequestParser empty;
  empty.Parse(base::AsBytes(
      std::string_view("GET /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")));
  EXPECT_FALSE(empty.TakeContinueRequest());
}

TEST(HttpRequestParserTest, InProgressTracksPartialRequests) {
  HttpRequestParser parser;
  EXPECT_FALSE(parser.in_progress());
  parser.Parse(base::AsBytes(std::string_view("GE")));
  EXPECT_TRUE(parser.in_progress());
  EXPECT_FALSE(parser.head_complete());
  parser.Parse(base::AsBytes(std::string_view("T / HTTP/1.1\r\nHost: h\r\n\r\n")));
  parser.TakeRequest();
  EXPECT_FALSE(parser.in_progress());
}

}  // namespace
}  // namespace turnkey::net
