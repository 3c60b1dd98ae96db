// HttpHeaders, HttpRequest helpers, response serialization and the JSON
// helpers.
#include <gtest/gtest.h>

#include <string>

#include "net/http_headers.h"
#include "net/http_json.h"
#include "net/http_request.h"
#include "net/http_response.h"

namespace turnkey::net {
namespace {

TEST(HttpHeadersTest, CaseInsensitiveLookupKeepsOrderAndDuplicates) {
  HttpHeaders headers;
  headers.Add("Content-Type", "text/plain");
  headers.Add("Set-Cookie", "a=1");
  headers.Add("set-cookie", "b=2");
  EXPECT_EQ(headers.Get("content-type"), "text/plain");
  EXPECT_EQ(headers.Get("SET-COOKIE"), "a=1");
  EXPECT_EQ(headers.Count("Set-Cookie"), 2u);
  EXPECT_FALSE(headers.Get("Missing").has_value());
  headers.Set("SET-cookie", "c=3");
  EXPECT_EQ(headers.Count("set-cookie"), 1u);
  EXPECT_EQ(headers.Get("Set-Cookie"), "c=3");
  EXPECT_EQ(headers.Remove("content-TYPE"), 1u);
  EXPECT_EQ(headers.size(), 1u);
}

TEST(HttpHeadersTest, HasTokenSplitsCommaLists) {
  HttpHeaders headers;
  headers.Add("Connection", "keep-alive ,  Upgrade");
  headers.Add("Connection", "TE");
  EXPECT_TRUE(headers.HasToken("connection", "upgrade"));
  EXPECT_TRUE(headers.HasToken("Connection", "Keep-Alive"));
  EXPECT_TRUE(headers.HasToken("Connection", "te"));
  EXPECT_FALSE(headers.HasToken("Connection", "close"));
  EXPECT_FALSE(headers.HasToken("Upgrade", "websocket"));
}

TEST(HttpHeadersTest, Tokens) {
  EXPECT_TRUE(IsHttpToken("X-Custom_Header.1"));
  EXPECT_FALSE(IsHttpToken(""));
  EXPECT_FALSE(IsHttpToken("Bad Name"));
  EXPECT_FALSE(IsHttpToken("X:"));
  EXPECT_TRUE(EqualsIgnoreCase("ABC-def", "abc-DEF"));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "abcd"));
}

TEST(ParseQueryTest, DecodesPairsAndKeepsBrokenEscapesAsWritten) {
  auto fields = ParseQuery("EIO=4&transport=polling&t=N8h&flag&&bad=%zz&name=a+b%21&5%=%4");
  ASSERT_EQ(fields.size(), 7u);
  EXPECT_EQ(fields[0], (std::pair<std::string, std::string>{"EIO", "4"}));
  EXPECT_EQ(fields[1].second, "polling");
  EXPECT_EQ(fields[3], (std::pair<std::string, std::string>{"flag", ""}));
  // Seen by whoever reads it, and refused there as a bad value.
  EXPECT_EQ(fields[4], (std::pair<std::string, std::string>{"bad", "%zz"}));
  EXPECT_EQ(fields[5], (std::pair<std::string, std::string>{"name", "a b!"}));
  EXPECT_EQ(fields[6], (std::pair<std::string, std::string>{"5%", "%4"}));
}

TEST(HttpRequestTest, QueryParamAndParam) {
  HttpRequest request;
  request.query = "a=1&b=x%20y&a=2&c";
  EXPECT_EQ(request.QueryParam("a"), "1");
  EXPECT_EQ(request.QueryParam("b"), "x y");
  EXPECT_EQ(request.QueryParam("c"), "");
  EXPECT_FALSE(request.QueryParam("d").has_value());
  request.params = {{"userId", "u 1"}};
  EXPECT_EQ(request.Param("userId"), "u 1");
  EXPECT_FALSE(request.Param("other").has_value());
}

TEST(HttpRequestTest, SplitRequestTarget) {
  struct Case {
    const char* target;
    const char* path;
    const char* query;
  };
  const Case cases[] = {
      {"/", "/", ""},
      {"/a/b?x=1&y", "/a/b", "x=1&y"},
      {"/a?", "/a", ""},
      {"/a#f?x", "/a", ""},
      {"http://h:1/p?q", "/p", "q"},
      {"http://h", "/", ""},
      {"https://h?q=1", "/", "q=1"},
      {"*", "*", ""},
  };
  for (const Case& c : cases) {
    std::string path;
    std::string query;
    SplitRequestTarget(c.target, path, query);
    EXPECT_EQ(path, c.path) << c.target;
    EXPECT_EQ(query, c.query) << c.target;
  }
}

TEST(HttpResponseTest, FormatHttpDate) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(1709251199), "Thu, 29 Feb 2024 23:59:59 GMT");
}

TEST(HttpResponseTest, ReasonPhrases) {
  EXPECT_STREQ(HttpReasonPhrase(200), "OK");
  EXPECT_STREQ(HttpReasonPhrase(404), "Not Found");
  EXPECT_STREQ(HttpReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_STREQ(HttpReasonPhrase(799), "Unknown");
}

TEST(HttpResponseTest, SerializeSetsLengthDateAndConnection) {
  HttpResponse response = HttpResponse::Text(200, "hello");
  response.headers.Add("Content-Length", "999");  // ignored: the serializer knows better
  response.headers.Add("Connection", "keep-alive");
  HttpResponseFraming framing;
  framing.date = "Sun, 06 Nov 1994 08:49:37 GMT";
  EXPECT_EQ(SerializeHttpResponse(response, framing),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 5\r\n\r\nhello");
  framing.close = true;
  framing.head_only = true;
  framing.date = {};
  EXPECT_EQ(SerializeHttpResponse(response, framing),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 5\r\nConnection: close\r\n\r\n");
  HttpResponseFraming http10;
  http10.keep_alive_header = true;
  EXPECT_NE(SerializeHttpResponse(response, http10).find("\r\nConnection: keep-alive\r\n"),
            std::string::npos);
}

TEST(HttpResponseTest, StrictTransportSecurityUnlessTheResponseHasOne) {
  HttpResponse response = HttpResponse::Empty(204);
  HttpResponseFraming framing;
  framing.strict_transport_security = "max-age=600";
  EXPECT_EQ(SerializeHttpResponse(response, framing),
            "HTTP/1.1 204 No Content\r\nStrict-Transport-Security: max-age=600\r\n\r\n");
  response.headers.Add("Strict-Transport-Security", "max-age=0");
  EXPECT_EQ(SerializeHttpResponse(response, framing),
            "HTTP/1.1 204 No Content\r\nStrict-Transport-Security: max-age=0\r\n\r\n");
  HttpResponse switching = HttpResponse::Empty(101);
  EXPECT_EQ(SerializeHttpResponse(switching, framing), "HTTP/1.1 101 Switching Protocols\r\n\r\n");
}

TEST(HttpResponseTest, NoBodyStatuses) {
  HttpResponse no_content = HttpResponse::Empty(204);
  no_content.body = "dropped";
  EXPECT_EQ(SerializeHttpResponse(no_content, {}), "HTTP/1.1 204 No Content\r\n\r\n");
  HttpResponse not_modified = HttpResponse::Empty(304);
  EXPECT_EQ(SerializeHttpResponse(not_modified, {}), "HTTP/1.1 304 Not Modified\r\n\r\n");
  HttpResponse empty = HttpResponse::Empty(200);
  EXPECT_EQ(SerializeHttpResponse(empty, {}), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpResponseTest, SwitchingProtocolsKeepsItsConnectionHeader) {
  HttpResponse response = HttpResponse::Empty(101);
  response.headers.Add("Upgrade", "websocket");
  response.headers.Add("Connection", "Upgrade");
  HttpResponseFraming framing;
  framing.close = true;  // ignored for 1xx
  EXPECT_EQ(
      SerializeHttpResponse(response, framing),
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
}

TEST(HttpResponseTest, DropsHeadersThatWouldSplitTheResponse) {
  HttpResponse response = HttpResponse::Empty(200);
  response.reason = "Fine\r\nX-Evil: 1";
  response.headers.Add("X-Good", "ok");
  response.headers.Add("X-Bad", "a\r\nSet-Cookie: evil=1");
  response.headers.Add("Bad Name", "x");
  response.headers.Add("X-Nul", std::string("a\0b", 3));
  std::string bytes = SerializeHttpResponse(response, {});
  EXPECT_EQ(bytes, "HTTP/1.1 200 Fine  X-Evil: 1\r\nX-Good: ok\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpJsonTest, ResponseAndParse) {
  HttpResponse response = JsonResponse(201, {{"success", true}, {"data", {{"id", "u1"}}}});
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.headers.Get("Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(response.body, R"({"data":{"id":"u1"},"success":true})");
  // Invalid UTF-8 does not throw.
  HttpResponse replaced = JsonResponse(200, std::string("\xff"));
  EXPECT_EQ(replaced.body, "\"\xef\xbf\xbd\"");

  HttpRequest request;
  request.body = R"({"email":"a@b.c","n":[1,2]})";
  auto parsed = ParseJsonBody(request);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ((*parsed)["email"], "a@b.c");
  request.body = "{not json";
  EXPECT_FALSE(ParseJsonBody(request).has_value());
  request.body = "";
  EXPECT_FALSE(ParseJsonBody(request).has_value());
  request.body = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJsonBody(request).has_value());
  request.body = std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  EXPECT_FALSE(ParseJsonBody(request).has_value());
  request.body = R"({"s":"[[[[[[[[\"]]"})";
  EXPECT_TRUE(ParseJsonBody(request).has_value());
  // A member named twice: which value counts would depend on the parser.
  request.body = R"({"email":"a@b.c","email":"x@y.z"})";
  EXPECT_FALSE(ParseJsonBody(request).has_value());
}

}  // namespace
}  // namespace turnkey::net
