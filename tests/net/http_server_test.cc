// HttpServer on 127.0.0.1 (port chosen at run time), driven by blocking
// clients on the test thread while the server's loop runs on its own thread.
#include "net/http_server.h"

#include <gtest/gtest.h>

#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/cidr.h"
#include "net/blocking_client.h"
#include "net/http_job.h"
#include "net/router.h"
#include "net/tls_context.h"
#include "net/work_queue.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using base::ByteView;
using base::SocketAddress;
using testing::LoopThread;
using testing::MakeLoop;
using testing::TestCertificate;

struct Response {
  int status = 0;
  HttpHeaders headers;
  std::string body;
};

std::optional<size_t> ContentLength(std::string_view head) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    std::string_view line = head.substr(pos, head.find("\r\n", pos) - pos);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos &&
        EqualsIgnoreCase(line.substr(0, colon), "content-length")) {
      return std::stoul(std::string(line.substr(colon + 1)));
    }
  }
  return std::nullopt;
}

// Frames one response: the head, then Content-Length body bytes (none for
// HEAD, 1xx, 204, 304).
BlockingClient::Framer ResponseFramer(bool head_only) {
  return [head_only](ByteView buffered) -> base::Result<size_t> {
    std::string_view text = base::AsString(buffered);
    size_t end = text.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      return 0;
    }
    size_t head = end + 4;
    int status = std::stoi(std::string(text.substr(9, 3)));
    if (head_only || status < 200 || status == 204 || status == 304) {
      return head;
    }
    auto length = ContentLength(text.substr(0, head));
    if (!length) {
      return base::InvalidArgument("response without Content-Length");
    }
    return buffered.size() >= head + *length ? head + *length : 0;
  };
}

Response ParseResponse(std::string_view bytes, bool head_only) {
  Response response;
  response.status = std::stoi(std::string(bytes.substr(9, 3)));
  size_t end = bytes.find("\r\n\r\n");
  size_t pos = bytes.find("\r\n") + 2;
  while (pos < end) {
    size_t eol = bytes.find("\r\n", pos);
    std::string_view line = bytes.substr(pos, eol - pos);
    size_t colon = line.find(':');
    response.headers.Add(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
    pos = eol + 2;
  }
  if (!head_only) {
    response.body = std::string(bytes.substr(end + 4));
  }
  return response;
}

// A blocking HTTP/1.1 client over BlockingClient (TCP or TLS).
class Client {
 public:
  static std::unique_ptr<Client> Connect(uint16_t port, const std::string& ca_file = "",
                                         const std::string& host = "127.0.0.1") {
    BlockingClientOptions options;
    options.transport = ca_file.empty() ? Transport::kTcp : Transport::kTls;
    options.verify_peer = !ca_file.empty();
    if (!ca_file.empty()) {
      options.ca_file = ca_file;
    }
    auto client = BlockingClient::Connect(host, port, options);
    EXPECT_TRUE(client.has_value()) << client.error().message;
    if (!client) {
      return nullptr;
    }
    auto out = std::make_unique<Client>();
    out->client_ = std::move(*client);
    return out;
  }

  bool Send(std::string_view bytes) {
    auto sent = client_->Send(base::AsBytes(bytes), 5s);
    EXPECT_TRUE(sent.has_value()) << sent.error().message;
    return sent.has_value();
  }

  std::optional<Response> Read(bool head_only = false) {
    auto frame = client_->ReceiveFrame(ResponseFramer(head_only), 5s);
    EXPECT_TRUE(frame.has_value()) << frame.error().message;
    if (!frame) {
      return std::nullopt;
    }
    return ParseResponse(base::AsString(*frame), head_only);
  }

  std::string ReadExact(size_t n) {
    auto frame = client_->ReceiveFrame(
        [n](ByteView buffered) -> base::Result<size_t> { return buffered.size() >= n ? n : 0; },
        5s);
    EXPECT_TRUE(frame.has_value()) << frame.error().message;
    return frame ? std::string(base::AsString(*frame)) : std::string();
  }

  // How the stream ended after what was read: "peer closed ..." for a FIN,
  // "recv: ..." for a reset; "bytes" if more came.
  std::string End() {
    auto frame = client_->ReceiveFrame([](ByteView) -> base::Result<size_t> { return 0; }, 5s);
    return frame ? "bytes" : frame.error().message;
  }

  // True if the server closed the connection with no further bytes.
  bool WaitClosed() {
    auto frame = client_->ReceiveFrame(
        [](ByteView buffered) -> base::Result<size_t> {
          if (!buffered.empty()) {
            return base::InvalidArgument("unexpected bytes: " +
                                         std::string(base::AsString(buffered)));
          }
          return 0;
        },
        5s);
    if (frame) {
      return false;
    }
    const std::string& message = frame.error().message;
    EXPECT_EQ(message.find("timed out"), std::string::npos) << message;
    return message.find("closed") != std::string::npos ||
           message.find("reset") != std::string::npos;
  }

 private:
  std::unique_ptr<BlockingClient> client_;
};

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

// A stand-in for WebSocketSession: echoes input upper-cased and reports
// its close. Callbacks run on the loop thread.
struct EchoProtocol {
  std::string received;  // loop thread only
  std::promise<void> closed;
  std::future<void> closed_future = closed.get_future();

  void Install(StreamConnection& connection) {
    connection.SetCallbacks(
        [this](StreamConnection& c, ByteView data) {
          std::string text(base::AsString(data));
          received += text;
          for (char& ch : text) {
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          }
          c.Write(base::AsBytes(text));
          return data.size();
        },
        [this](StreamConnection&, CloseReason) { closed.set_value(); });
  }
  bool WaitClosed() { return closed_future.wait_for(5s) == std::future_status::ready; }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}, std::shared_ptr<TlsContext> tls = nullptr,
                   const char* address = "127.0.0.1") {
    loop_ = MakeLoop();
    ASSERT_TRUE(loop_);
    auto server = HttpServer::Create(*loop_, *SocketAddress::ParseIp(address, 0), std::move(tls),
                                     options, [this](HttpRequest request, Responder responder) {
                                       handler_(std::move(request), std::move(responder));
                                     });
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
    port_ = server_->local_address().port();
    thread_ = std::make_unique<LoopThread>(*loop_);
    thread_->Start();
  }

  // StartServer over TLS with a fresh self-signed certificate, which
  // ConnectTls() clients trust.
  void StartTlsServer(const HttpServerOptions& options = {}) {
    cert_ = std::make_unique<TestCertificate>();
    ASSERT_TRUE(cert_->ok());
    auto tls = TlsContext::CreateServer(cert_->cert_path(), cert_->key_path());
    ASSERT_TRUE(tls.has_value()) << tls.error().message;
    StartServer(options, *tls);
  }
  std::unique_ptr<Client> ConnectTls() { return Client::Connect(port_, cert_->cert_path()); }

  void TearDown() override {
    if (thread_) {
      thread_->Join();
    }
    if (work_queue_) {
      work_queue_->Shutdown();
    }
    server_.reset();
    parked_.clear();
    work_queue_.reset();
    loop_.reset();
  }

  // Sends `request` on a new connection and reads the answer, which must
  // close the connection (a refused request).
  std::optional<Response> RefusedAndClosed(const std::string& request) {
    auto client = Client::Connect(port_);
    if (!client || !client->Send(request)) {
      return std::nullopt;
    }
    auto response = client->Read();
    if (response) {
      EXPECT_EQ(response->headers.Get("Connection"), "close") << request;
      EXPECT_TRUE(client->WaitClosed()) << request;
    }
    return response;
  }

  // Runs `f` on the loop thread and returns its result.
  template <typename F>
  auto OnLoop(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto future = task.get_future();
    loop_->Post([&task] { task(); });
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
  }

  // A handler that parks the responder (answered later by the test) for
  // `path` and answers every other request at once with its path.
  void ParkOn(const std::string& path) {
    handler_ = [this, path](HttpRequest request, Responder responder) {
      log_.push_back(request.path);
      if (request.path == path) {
        parked_.push_back(std::move(responder));
        parked_signal_.set_value();
      } else {
        responder.Respond(HttpResponse::Text(200, request.path));
      }
    };
  }
  bool WaitParked() { return parked_future_.wait_for(5s) == std::future_status::ready; }

  // Outlives the server: connections taken over in a test point at it.
  EchoProtocol echo_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<LoopThread> thread_;
  std::unique_ptr<WorkQueue> work_queue_;
  uint16_t port_ = 0;
  std::unique_ptr<TestCertificate> cert_;  // StartTlsServer
  HttpHandler handler_ = [](HttpRequest request, Responder responder) {
    HttpResponse response = HttpResponse::Text(200, request.method + " " + request.target);
    response.headers.Add("X-Body-Size", std::to_string(request.body.size()));
    responder.Respond(std::move(response));
  };
  // Loop thread only.
  std::vector<std::string> log_;
  std::vector<Responder> parked_;
  std::promise<void> parked_signal_;
  std::future<void> parked_future_ = parked_signal_.get_future();
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  for (const std::string path : {"/a", "/b?x=1", "/c"}) {
    ASSERT_TRUE(client->Send(Get(path)));
    auto response = client->Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "GET " + path);
    EXPECT_FALSE(response->headers.Has("Connection"));
    auto date = response->headers.Get("Date");
    ASSERT_TRUE(date);
    EXPECT_EQ(date->size(), 29u);
    EXPECT_TRUE(date->ends_with(" GMT"));
  }
  ASSERT_TRUE(client->Send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"));
  auto post = client->Read();
  ASSERT_TRUE(post);
  EXPECT_EQ(post->headers.Get("X-Body-Size"), "4");
  ASSERT_TRUE(
      client->Send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"));
  auto chunked = client->Read();
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->headers.Get("X-Body-Size"), "7");
  auto stats = OnLoop([this] { return server_->stats(); });
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.requests, 5u);
}

TEST_F(HttpServerTest, AWildcardIpv6ListenerTakesIpv4ClientsByTheirIpv4Address) {
  // signal.listen and metrics.listen take one address: "::" must not drop
  // every IPv4 client, and those must not all look like one ::ffff: block.
  handler_ = [](HttpRequest request, Responder responder) {
    responder.Respond(HttpResponse::Text(200, request.peer.IpString()));
  };
  StartServer({}, nullptr, "::");
  for (const char* host : {"127.0.0.1", "::1"}) {
    auto client = Client::Connect(port_, "", host);
    ASSERT_TRUE(client);
    ASSERT_TRUE(client->Send(Get("/")));
    auto response = client->Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->body, host);
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrderBehindASlowHandler) {
  ParkOn("/slow");
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/slow") + Get("/fast") + Get("/fast2")));
  ASSERT_TRUE(WaitParked());
  // The next requests are not even read until /slow is answered.
  EXPECT_EQ(OnLoop([this] { return log_; }), std::vector<std::string>{"/slow"});
  OnLoop([this] {
    parked_[0].Respond(HttpResponse::Text(200, "slow answer"));
    return 0;
  });
  auto first = client->Read();
  auto second = client->Read();
  auto third = client->Read();
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(first->body, "slow answer");
  EXPECT_EQ(second->body, "/fast");
  EXPECT_EQ(third->body, "/fast2");
  EXPECT_EQ(OnLoop([this] { return log_; }),
            (std::vector<std::string>{"/slow", "/fast", "/fast2"}));
}

// A client that pipelines requests but does not read the answers gets no
// more of them read than the kernel's socket buffers hold answers for: each
// would otherwise queue its whole answer for a few bytes of request, up to
// the output limit (4 MiB), which then closed the connection.
TEST_F(HttpServerTest, PipelinedRequestsWaitUntilTheAnswerBeforeIsSent) {
  const std::string big(1024 * 1024, 'x');
  handler_ = [this, big](HttpRequest request, Responder responder) {
    log_.push_back(request.path);
    responder.Respond(HttpResponse::Text(200, big));
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  constexpr int kRequests = 24;
  std::string requests;
  for (int i = 0; i < kRequests; ++i) {
    requests += Get("/" + std::to_string(i));
  }
  ASSERT_TRUE(client->Send(requests));
  std::this_thread::sleep_for(200ms);
  const size_t read_early = OnLoop([this] { return log_.size(); });
  EXPECT_LT(read_early, static_cast<size_t>(kRequests));
  // Reading lets each one through in turn, in order, on the same connection.
  for (int i = 0; i < kRequests; ++i) {
    auto answer = client->Read();
    ASSERT_TRUE(answer) << i;
    EXPECT_EQ(answer->body.size(), big.size());
  }
  EXPECT_EQ(OnLoop([this] { return log_.size(); }), static_cast<size_t>(kRequests));
}

TEST_F(HttpServerTest, HeadGetsHeadersButNoBody) {
  handler_ = [](HttpRequest, Responder responder) {
    responder.Respond(HttpResponse::Text(200, "hello"));
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head = client->Read(/*head_only=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.Get("Content-Length"), "5");
  // Had body bytes been sent, they would corrupt the next response.
  ASSERT_TRUE(client->Send(Get("/x")));
  auto get = client->Read();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "hello");
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10) {
  StartServer();
  auto closing = Client::Connect(port_);
  ASSERT_TRUE(closing);
  ASSERT_TRUE(closing->Send(Get("/bye", "Connection: close\r\n")));
  auto bye = closing->Read();
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->headers.Get("Connection"), "close");
  EXPECT_TRUE(closing->WaitClosed());

  auto old = Client::Connect(port_);
  ASSERT_TRUE(old);
  ASSERT_TRUE(old->Send("GET /old HTTP/1.0\r\n\r\n"));
  auto old_response = old->Read();
  ASSERT_TRUE(old_response);
  EXPECT_EQ(old_response->headers.Get("Connection"), "close");
  EXPECT_TRUE(old->WaitClosed());

  auto kept = Client::Connect(port_);
  ASSERT_TRUE(kept);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(kept->Send("GET /kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto response = kept->Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->headers.Get("Connection"), "keep-alive");
  }
}

TEST_F(HttpServerTest, HandlerCanAskToClose) {
  handler_ = [](HttpRequest, Responder responder) {
    HttpResponse response = HttpResponse::Text(200, "done");
    response.headers.Set("Connection", "close");
    responder.Respond(std::move(response));
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/")));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->headers.Get("Connection"), "close");
  EXPECT_TRUE(client->WaitClosed());
}

TEST_F(HttpServerTest, IdlePartialRequestGets408ThenClose) {
  HttpServerOptions options;
  options.idle_timeout = 200ms;
  options.header_timeout = 0ms;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("GET /partial HTTP/1.1\r\nHost: t\r\n"));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_EQ(response->headers.Get("Connection"), "close");
  EXPECT_TRUE(client->WaitClosed());
  EXPECT_EQ(OnLoop([this] { return server_->stats().timeouts; }), 1u);
}

TEST_F(HttpServerTest, PartialBodyIsAlsoAnIdlePartialRequest) {
  HttpServerOptions options;
  options.idle_timeout = 200ms;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345"));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_TRUE(client->WaitClosed());
}

TEST_F(HttpServerTest, SlowHeadGets408FromTheHeaderTimeout) {
  HttpServerOptions options;
  options.idle_timeout = 60s;  // cannot fire within the test's deadline
  options.header_timeout = 200ms;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("GET / HTTP/1.1\r\nHost"));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_TRUE(client->WaitClosed());
}

TEST_F(HttpServerTest, TrickledBodyGets408FromTheBodyTimeout) {
  HttpServerOptions options;
  options.idle_timeout = 60s;  // each byte would restart it
  options.header_timeout = 60s;
  options.body_timeout = 300ms;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n1"));
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(100ms);
    if (!client->Send("2")) {
      break;  // already answered and closed
    }
  }
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_TRUE(client->WaitClosed());
  EXPECT_EQ(OnLoop([this] { return server_->stats().timeouts; }), 1u);
}

// RFC 9112 section 2.2 has empty lines before a request skipped; they do not
// keep a connection past the header timeout (each byte restarts the idle
// one).
TEST_F(HttpServerTest, EmptyLinesAloneAreCutByTheHeaderTimeoutWithoutAnAnswer) {
  HttpServerOptions options;
  options.idle_timeout = 60s;
  options.header_timeout = 300ms;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  for (int i = 0; i < 3; ++i) {
    if (!client->Send("\r\n")) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(client->End().find("peer closed"), std::string::npos);
  // Skipped, as they should be, when a request follows.
  auto other = Client::Connect(port_);
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->Send("\r\n\r\n" + Get("/one")));
  auto response = other->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpServerTest, IdleConnectionWithoutARequestIsClosedSilently) {
  HttpServerOptions options;
  options.idle_timeout = 200ms;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/one")));
  ASSERT_TRUE(client->Read());
  EXPECT_TRUE(client->WaitClosed());
  EXPECT_EQ(OnLoop([this] { return server_->stats().timeouts; }), 0u);
}

TEST_F(HttpServerTest, PastTheFreshLimitTheOldestConnectionWithoutARequestIsClosed) {
  HttpServerOptions options;
  options.max_fresh_connections = 2;
  StartServer(options);
  // A has asked something: it no longer counts, however long it stays.
  auto a = Client::Connect(port_);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Send(Get("/a")));
  ASSERT_TRUE(a->Read());
  // B and C have not; D is one too many and closes B, the oldest of them.
  auto b = Client::Connect(port_);
  auto c = Client::Connect(port_);
  auto d = Client::Connect(port_);
  ASSERT_TRUE(b && c && d);
  EXPECT_TRUE(b->WaitClosed());
  for (Client* client : {a.get(), c.get(), d.get()}) {
    ASSERT_TRUE(client->Send(Get("/again")));
    EXPECT_TRUE(client->Read().has_value());
  }
}

TEST_F(HttpServerTest, ParseErrorsAreAnsweredThenClosed) {
  HttpServerOptions options;
  options.max_header_bytes = 512;
  options.max_body_bytes = 100;
  StartServer(options);
  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {"GET /a b c\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},               // no Host
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},  // an invalid Host (RFC 9112 section 3.2)
      {"GET / HTTP/1.1\r\nHost: t\r\n\rX", 400},     // a bare CR (RFC 9112 section 2.2)
      // A bare LF in a chunk extension (RFC 9112 section 7.1.1).
      {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nb\r\n{}\r\n0\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", 413},
      {"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(600, 'b') + "\r\n\r\n", 431},
      {"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
      {"POST / HTTP/1.1\r\nHost: t\r\nExpect: coffee\r\nContent-Length: 1\r\n\r\n", 417},
  };
  for (const Case& c : cases) {
    auto response = RefusedAndClosed(c.request);
    ASSERT_TRUE(response) << c.request;
    EXPECT_EQ(response->status, c.status) << c.request;
  }
  EXPECT_EQ(OnLoop([this] { return server_->stats().bad_requests; }), std::size(cases));
}

TEST_F(HttpServerTest, LongRequestTargetIs414) {
  // RFC 9112 section 3 / RFC 9110 section 15.5.15, with the default limits:
  // a 16,000-byte target fits the head limit but not the target limit.
  StartServer();
  auto response =
      RefusedAndClosed("GET /" + std::string(16000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 414);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("GET /" + std::string(8000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto fits = client->Read();
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200);
}

TEST_F(HttpServerTest, ChunkOverTheBodyLimitIsRefusedBeforeItsData) {
  HttpServerOptions options;
  options.max_body_bytes = 100;
  StartServer(options);
  // A 2^60-byte chunk announced and none of it sent: the 413 must not wait
  // for data that would never fit.
  auto response = RefusedAndClosed(
      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
}

TEST_F(HttpServerTest, ABodyOverItsRequestsLimitIs413BeforeItIsAllIn) {
  // body_limit (per request, below max_body_bytes): a Content-Length over
  // it at once, a chunked body as soon as what arrived passes it.
  HttpServerOptions options;
  options.max_body_bytes = 1 << 20;
  options.body_limit = [](const HttpRequest&) -> uint64_t { return 100; };
  StartServer(options);
  auto declared = RefusedAndClosed("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n");
  ASSERT_TRUE(declared);
  EXPECT_EQ(declared->status, 413);
  // Chunks of 64 bytes, the second one over: refused without the rest.
  const std::string chunk = "40\r\n" + std::string(64, 'c') + "\r\n";
  auto chunked = RefusedAndClosed(
      "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk);
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 413);
}

TEST_F(HttpServerTest, ZeroLimitsAreRefused) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  const auto handler = [](HttpRequest, Responder) {};
  HttpServerOptions no_target;
  no_target.max_target_bytes = 0;
  EXPECT_FALSE(HttpServer::Create(*loop, *SocketAddress::ParseIp("127.0.0.1", 0), nullptr,
                                  no_target, handler));
  HttpServerOptions no_head;
  no_head.max_header_bytes = 0;
  EXPECT_FALSE(HttpServer::Create(*loop, *SocketAddress::ParseIp("127.0.0.1", 0), nullptr, no_head,
                                  handler));
}

// Sends a head far over a 512-byte limit: most of it is still unread when
// the 431 goes out. Closing on it would reset the connection, and the client
// might never see the answer (its send could fail first); the server must
// answer, then end the connection without a reset.
void ExpectBigHeadRefusedThenClosedCleanly(Client& client) {
  ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(300 * 1024, 'b')));
  auto response = client.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(response->headers.Get("Connection"), "close");
  EXPECT_NE(client.End().find("peer closed"), std::string::npos);
}

TEST_F(HttpServerTest, RefusedRequestWithUnreadInputEndsWithAFinNotAReset) {
  HttpServerOptions options;
  options.max_header_bytes = 512;
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ExpectBigHeadRefusedThenClosedCleanly(*client);
}

TEST_F(HttpServerTest, RefusedRequestOverTlsEndsWithCloseNotifyNotAReset) {
  HttpServerOptions options;
  options.max_header_bytes = 512;
  StartTlsServer(options);
  auto client = ConnectTls();
  ASSERT_TRUE(client);
  // Over TLS the server sends its close_notify, then drains the rest.
  ExpectBigHeadRefusedThenClosedCleanly(*client);
}

TEST_F(HttpServerTest, ErrorResponseShapesAnswersToRequestsWhoseHeadParsed) {
  HttpServerOptions options;
  options.max_body_bytes = 100;
  std::vector<std::string> asked;  // loop thread only, read after the exchanges
  options.error_response = [&asked](const HttpRequest& head,
                                    int status) -> std::optional<HttpResponse> {
    asked.push_back(head.method + " " + head.path + " " + std::to_string(status));
    if (head.path != "/api/x") {
      return std::nullopt;
    }
    HttpResponse response = HttpResponse::Text(413, "{\"code\":\"TOO_BIG\"}", "application/json");
    return response;
  };
  StartServer(options);
  struct Case {
    std::string request;
    int status;
    std::string body;
  };
  const Case cases[] = {
      {"POST /api/x?q=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", 413,
       "{\"code\":\"TOO_BIG\"}"},
      {"POST /other HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", 413, ""},
      {"GET /a b c\r\n\r\n", 400, ""},  // no head: the hook is not asked
  };
  for (const Case& c : cases) {
    auto response = RefusedAndClosed(c.request);
    ASSERT_TRUE(response) << c.request;
    EXPECT_EQ(response->status, c.status) << c.request;
    if (!c.body.empty()) {
      EXPECT_EQ(response->body, c.body);
    } else {
      EXPECT_NE(response->body.find_first_not_of(" \r\n"), std::string::npos);  // the plain page
    }
  }
  EXPECT_EQ(OnLoop([&asked] { return asked; }),
            (std::vector<std::string>{"POST /api/x 413", "POST /other 413"}));
}

TEST_F(HttpServerTest, BodyPendingHookTokenLivesWhileTheBodyArrives) {
  // The hook announces each call through a promise; each token, when
  // released, fulfils another. Shared: a token may outlive this scope if an
  // assertion ends the test early.
  struct Seen {
    std::promise<std::string> asked[2];
    std::promise<void> released[2];
    size_t calls = 0;  // loop thread only
  };
  auto seen = std::make_shared<Seen>();
  std::shared_future<std::string> asked[2] = {seen->asked[0].get_future().share(),
                                              seen->asked[1].get_future().share()};
  std::shared_future<void> released[2] = {seen->released[0].get_future().share(),
                                          seen->released[1].get_future().share()};
  HttpServerOptions options;
  options.on_body_pending = [seen](const HttpRequest& head) -> std::shared_ptr<void> {
    const size_t n = seen->calls++;
    if (n >= 2) {
      ADD_FAILURE() << "asked about " << head.path;
      return nullptr;
    }
    seen->asked[n].set_value(head.method + " " + head.path);
    return std::shared_ptr<int>(new int(0), [seen, n](int* p) {
      delete p;
      seen->released[n].set_value();
    });
  };
  handler_ = [first = released[0]](HttpRequest request, Responder responder) {
    // The token goes before the handler sees the whole request.
    const bool gone = first.wait_for(0s) == std::future_status::ready;
    responder.Respond(HttpResponse::Text(200, request.path + (gone ? " released" : " held")));
  };
  StartServer(options);
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  // A request that arrives whole is not announced.
  ASSERT_TRUE(client->Send("POST /whole HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto whole = client->Read();
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->body, "/whole held");
  // The head and part of the body, then the rest.
  ASSERT_TRUE(client->Send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\na"));
  ASSERT_EQ(asked[0].wait_for(5s), std::future_status::ready);
  EXPECT_EQ(asked[0].get(), "POST /slow");
  EXPECT_EQ(released[0].wait_for(0s), std::future_status::timeout);
  ASSERT_TRUE(client->Send("bc"));
  auto slow = client->Read();
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->body, "/slow released");
  // A connection that goes away in the middle of a body releases its token.
  auto dropped = Client::Connect(port_);
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(
      dropped->Send("POST /dropped HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_EQ(asked[1].wait_for(5s), std::future_status::ready);
  EXPECT_EQ(asked[1].get(), "POST /dropped");
  EXPECT_EQ(released[1].wait_for(0s), std::future_status::timeout);
  dropped.reset();
  EXPECT_EQ(released[1].wait_for(5s), std::future_status::ready);
}

TEST_F(HttpServerTest, ExpectContinueGetsA100BeforeTheBody) {
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(
      "PUT /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n"));
  auto interim = client->Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client->Send("abcdef"));
  auto final_response = client->Read();
  ASSERT_TRUE(final_response);
  EXPECT_EQ(final_response->status, 200);
  EXPECT_EQ(final_response->headers.Get("X-Body-Size"), "6");
}

TEST_F(HttpServerTest, LostResponderAndThrowingHandlerAnswer500) {
  handler_ = [](HttpRequest request, Responder responder) {
    if (request.path == "/throw") {
      throw std::runtime_error("handler bug");
    }
    if (request.path == "/1xx") {
      responder.Respond(HttpResponse::Empty(101));
    }
    // "/drop": the responder goes out of scope unanswered.
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  for (const char* path : {"/drop", "/throw", "/1xx"}) {
    ASSERT_TRUE(client->Send(Get(path)));
    auto response = client->Read();
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, 500) << path;
  }
}

TEST_F(HttpServerTest, ResponderDroppedOnAnotherThreadAnswers500) {
  auto queue = WorkQueue::Create({});
  ASSERT_TRUE(queue.has_value());
  work_queue_ = std::move(*queue);
  handler_ = [this](HttpRequest, Responder responder) {
    // The job owns the responder and is destroyed on the worker unanswered.
    EXPECT_TRUE(work_queue_->TryPost([held = std::move(responder)]() mutable {}));
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/lost")));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  // The connection keeps working.
  ASSERT_TRUE(client->Send(Get("/again")));
  auto again = client->Read();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 500);
}

TEST_F(HttpServerTest, RespondingAfterTheConnectionIsGoneDoesNothing) {
  ParkOn("/park");
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/park")));
  ASSERT_TRUE(WaitParked());
  EXPECT_TRUE(OnLoop([this] { return parked_[0].is_pending(); }));
  OnLoop([this] {
    server_->CloseAll();
    return 0;
  });
  EXPECT_TRUE(client->WaitClosed());
  EXPECT_FALSE(OnLoop([this] { return parked_[0].is_pending(); }));
  EXPECT_EQ(OnLoop([this] {
              parked_[0].Respond(HttpResponse::Text(200, "late"));
              return server_->connection_count();
            }),
            0u);
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndFinishesRequestsInFlight) {
  ParkOn("/slow");
  StartServer();
  auto idle = Client::Connect(port_);
  auto busy = Client::Connect(port_);
  ASSERT_TRUE(idle && busy);
  ASSERT_TRUE(idle->Send(Get("/fast")));
  ASSERT_TRUE(idle->Read());
  ASSERT_TRUE(busy->Send(Get("/slow")));
  ASSERT_TRUE(WaitParked());
  OnLoop([this] {
    server_->Stop();
    return 0;
  });
  EXPECT_TRUE(idle->WaitClosed());
  OnLoop([this] {
    parked_[0].Respond(HttpResponse::Text(200, "finished"));
    return 0;
  });
  auto response = busy->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "finished");
  EXPECT_EQ(response->headers.Get("Connection"), "close");
  EXPECT_TRUE(busy->WaitClosed());
  // The answer's close lingers until the client closes too.
  busy.reset();
  size_t left = 1;
  for (int i = 0; i < 100 && left > 0; ++i) {
    left = OnLoop([this] { return server_->connection_count(); });
    if (left > 0) {
      std::this_thread::sleep_for(20ms);
    }
  }
  EXPECT_EQ(left, 0u);
  // The listening socket is gone: a new client is refused, not left waiting
  // in the backlog.
  BlockingClientOptions options;
  options.transport = Transport::kTcp;
  EXPECT_FALSE(BlockingClient::Connect("127.0.0.1", port_, options).has_value());
}

HttpResponse SwitchingProtocols() {
  HttpResponse response = HttpResponse::Empty(101);
  response.headers.Add("Upgrade", "echo");
  response.headers.Add("Connection", "Upgrade");
  return response;
}

std::string UpgradeRequest(const std::string& path = "/ws") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n";
}

TEST_F(HttpServerTest, TakeOverInsideTheHandlerGetsTheBytesAfterTheHead) {
  handler_ = [this](HttpRequest request, Responder responder) {
    ASSERT_TRUE(request.upgrade);
    StreamConnection* connection = responder.TakeOver(SwitchingProtocols());
    ASSERT_NE(connection, nullptr);
    echo_.Install(*connection);
    // Answered: the responder has nothing left to do.
    EXPECT_FALSE(responder.is_pending());
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  // The first protocol bytes travel with the request head.
  ASSERT_TRUE(client->Send(UpgradeRequest() + "hello"));
  auto switching = client->Read();
  ASSERT_TRUE(switching);
  EXPECT_EQ(switching->status, 101);
  EXPECT_EQ(switching->headers.Get("Upgrade"), "echo");
  EXPECT_FALSE(switching->headers.Has("Content-Length"));
  EXPECT_EQ(client->ReadExact(5), "HELLO");
  ASSERT_TRUE(client->Send("more"));
  EXPECT_EQ(client->ReadExact(4), "MORE");
  EXPECT_EQ(OnLoop([this] { return server_->http_connection_count(); }), 0u);
  EXPECT_EQ(OnLoop([this] { return server_->connection_count(); }), 1u);
  EXPECT_EQ(OnLoop([this] { return server_->stats().upgrades; }), 1u);
  // Stop() leaves taken-over connections to their owners; CloseAll ends them.
  OnLoop([this] {
    server_->Stop();
    return 0;
  });
  ASSERT_TRUE(client->Send("still"));
  EXPECT_EQ(client->ReadExact(5), "STILL");
  OnLoop([this] {
    server_->CloseAll();
    return 0;
  });
  EXPECT_TRUE(client->WaitClosed());
  EXPECT_TRUE(echo_.WaitClosed());
  EXPECT_EQ(OnLoop([this] { return echo_.received; }), "hellomorestill");
  EXPECT_EQ(OnLoop([this] { return server_->connection_count(); }), 0u);
}

TEST_F(HttpServerTest, TakeOverLaterStillGetsBytesSentMeanwhile) {
  ParkOn("/ws");
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(UpgradeRequest() + "early"));
  ASSERT_TRUE(WaitParked());
  OnLoop([this] {
    StreamConnection* connection = parked_[0].TakeOver();
    EXPECT_NE(connection, nullptr);
    if (connection != nullptr) {
      // The caller may write its own 101.
      std::string head = SerializeHttpResponse(SwitchingProtocols(), {});
      connection->Write(base::AsBytes(head));
      echo_.Install(*connection);
    }
    return 0;
  });
  auto switching = client->Read();
  ASSERT_TRUE(switching);
  EXPECT_EQ(switching->status, 101);
  EXPECT_EQ(client->ReadExact(5), "EARLY");
  // The new owner hears the peer's close through its own callback.
  client.reset();
  EXPECT_TRUE(echo_.WaitClosed());
  EXPECT_EQ(OnLoop([this] { return server_->connection_count(); }), 0u);
}

TEST_F(HttpServerTest, TakeOverIsRefusedForPlainRequests) {
  handler_ = [](HttpRequest, Responder responder) {
    EXPECT_EQ(responder.TakeOver(SwitchingProtocols()), nullptr);
    EXPECT_TRUE(responder.is_pending());
    responder.Respond(HttpResponse::Text(200, "plain"));
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/")));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "plain");
}

TEST_F(HttpServerTest, UpgradeAnsweredWithoutTakeOverClosesTheConnection) {
  handler_ = [](HttpRequest, Responder responder) { responder.Respond(HttpResponse::Error(400)); };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(UpgradeRequest()));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->headers.Get("Connection"), "close");
  EXPECT_TRUE(client->WaitClosed());
}

TEST_F(HttpServerTest, RefusedUpgradeWithBytesBehindItEndsWithAFinNotAReset) {
  handler_ = [](HttpRequest, Responder responder) { responder.Respond(HttpResponse::Error(403)); };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  // The new protocol's first bytes, sent with the request, far more than one
  // read: most are still unread when the refusal goes out. Closing on them
  // would reset the connection (RFC 9112 section 9.6).
  ASSERT_TRUE(client->Send(UpgradeRequest() + std::string(300 * 1024, 'x')));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 403);
  EXPECT_EQ(response->headers.Get("Connection"), "close");
  EXPECT_NE(client->End().find("peer closed"), std::string::npos);
}

// A close the answer asks for lingers too (RFC 9112 section 9.6): bytes the
// client sent behind the request, never to be read, must not turn the close
// into a reset that costs it the answer.
TEST_F(HttpServerTest, AConnectionCloseAnswerWithBytesBehindItEndsWithAFinNotAReset) {
  const std::string big(2 * 1024 * 1024, 'b');
  handler_ = [&big](HttpRequest, Responder responder) {
    responder.Respond(HttpResponse::Text(200, big));
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/big", "Connection: close\r\n") + Get("/next") +
                           std::string(300 * 1024, 'x')));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), big.size());
  EXPECT_NE(client->End().find("peer closed"), std::string::npos);
}

TEST_F(HttpServerTest, ServesOverTls) {
  handler_ = [](HttpRequest request, Responder responder) {
    responder.Respond(HttpResponse::Text(200, request.tls ? "tls" : "plain"));
  };
  StartTlsServer();
  auto client = ConnectTls();
  ASSERT_TRUE(client);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client->Send(Get("/secure")));
    auto response = client->Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "tls");
  }
}

// RFC 6797: the header over TLS (unless the handler set its own), never
// over plain HTTP (section 7.2).
TEST_F(HttpServerTest, StrictTransportSecurityGoesOutOverTlsOnly) {
  handler_ = [](HttpRequest request, Responder responder) {
    HttpResponse response = HttpResponse::Text(200, "ok");
    if (request.target == "/own") {
      response.headers.Set("Strict-Transport-Security", "max-age=60");
    }
    responder.Respond(std::move(response));
  };
  HttpServerOptions options;
  options.strict_transport_security = "max-age=31536000";
  StartTlsServer(options);
  auto client = ConnectTls();
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/")));
  auto response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->headers.Get("Strict-Transport-Security"), "max-age=31536000");
  ASSERT_TRUE(client->Send(Get("/own")));
  response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->headers.Count("Strict-Transport-Security"), 1u);
  EXPECT_EQ(response->headers.Get("Strict-Transport-Security"), "max-age=60");
  // The server's own refusals carry it too.
  ASSERT_TRUE(client->Send("GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"));
  response = client->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->headers.Get("Strict-Transport-Security"), "max-age=31536000");
}

TEST_F(HttpServerTest, StrictTransportSecurityNeverGoesOutOverPlainHttp) {
  handler_ = [](HttpRequest, Responder responder) {
    responder.Respond(HttpResponse::Text(200, "ok"));
  };
  HttpServerOptions options;
  options.strict_transport_security = "max-age=31536000";
  StartServer(options);
  auto plain = Client::Connect(port_);
  ASSERT_TRUE(plain);
  ASSERT_TRUE(plain->Send(Get("/")));
  auto response = plain->Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_FALSE(response->headers.Has("Strict-Transport-Security"));
}

// A GET with `forwarded_for` as its X-Forwarded-For, answered with the
// request's peer as the handler saw it.
std::string PeerSeen(uint16_t port, const std::string& forwarded_for) {
  auto client = Client::Connect(port);
  if (!client || !client->Send("GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: " + forwarded_for +
                               "\r\n\r\n")) {
    return "(no connection)";
  }
  auto response = client->Read();
  return response ? response->body : "(no answer)";
}

TEST_F(HttpServerTest, ATrustedProxyNamesTheRequestsPeer) {
  handler_ = [](HttpRequest request, Responder responder) {
    responder.Respond(HttpResponse::Text(200, request.peer.IpString()));
  };
  HttpServerOptions options;
  options.trusted_proxies = {*base::ParseCidr("127.0.0.1/32")};
  StartServer(options);
  EXPECT_EQ(PeerSeen(port_, "192.0.2.66, 203.0.113.7"), "203.0.113.7");
}

TEST_F(HttpServerTest, WithoutTrustedProxiesXForwardedForIsIgnored) {
  handler_ = [](HttpRequest request, Responder responder) {
    responder.Respond(HttpResponse::Text(200, request.peer.IpString()));
  };
  StartServer();
  EXPECT_EQ(PeerSeen(port_, "203.0.113.7"), "127.0.0.1");
}

TEST_F(HttpServerTest, RouterAnswers404And405AndPassesParams) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/api/contacts/:userId", [](HttpRequest r, Responder s) {
    s.Respond(HttpResponse::Text(200, std::string(*r.Param("userId"))));
  }));
  ASSERT_TRUE(router.Add("DELETE", "/api/contacts/:userId",
                         [](HttpRequest, Responder s) { s.Respond(HttpResponse::Empty(204)); }));
  router.set_error_response([](const HttpRequest&, int status) {
    return HttpResponse::Text(status, "{\"success\":false}", "application/json");
  });
  handler_ = router.AsHandler();
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/api/contacts/a%40b")));
  auto found = client->Read();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->body, "a@b");
  ASSERT_TRUE(client->Send(Get("/api/nothing")));
  auto missing = client->Read();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "{\"success\":false}");
  ASSERT_TRUE(client->Send("PUT /api/contacts/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  auto not_allowed = client->Read();
  ASSERT_TRUE(not_allowed);
  EXPECT_EQ(not_allowed->status, 405);
  EXPECT_EQ(not_allowed->headers.Get("Allow"), "GET, DELETE, HEAD, OPTIONS");
  ASSERT_TRUE(client->Send("OPTIONS /api/contacts/x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto options = client->Read();
  ASSERT_TRUE(options);
  EXPECT_EQ(options->status, 204);
  EXPECT_EQ(options->headers.Get("Allow"), "GET, DELETE, HEAD, OPTIONS");
}

TEST_F(HttpServerTest, WorkQueueJobsAnswerFromTheLoopAndAFullQueueAnswers503) {
  WorkQueueOptions queue_options;
  queue_options.threads = 1;
  queue_options.max_queued = 1;
  auto queue = WorkQueue::Create(queue_options);
  ASSERT_TRUE(queue.has_value());
  work_queue_ = std::move(*queue);
  // Opens the gate on every exit path, so TearDown's Shutdown never hangs.
  struct Gate {
    std::promise<void> open;
    std::shared_future<void> opened = open.get_future().share();
    bool is_open = false;
    void Open() {
      if (!is_open) {
        is_open = true;
        open.set_value();
      }
    }
    ~Gate() { Open(); }
  } gate;
  // Shared with the jobs, which may outlive this scope on a failed ASSERT.
  auto blocked = std::make_shared<std::promise<void>>();
  auto blocked_future = blocked->get_future();
  auto filler_ran = std::make_shared<std::promise<void>>();
  auto filler_future = filler_ran->get_future();
  // Occupy the only worker, then fill the only queue slot.
  ASSERT_TRUE(work_queue_->TryPost([opened = gate.opened, blocked] {
    blocked->set_value();
    opened.wait();
  }));
  ASSERT_EQ(blocked_future.wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(work_queue_->TryPost([filler_ran] { filler_ran->set_value(); }));

  handler_ = [this](HttpRequest request, Responder responder) {
    PostHttpJob(
        *work_queue_, *loop_, std::move(responder),
        [path = request.path] { return "worked on " + path; },
        [this](Responder r, std::string result) {
          HttpResponse response = HttpResponse::Text(200, std::move(result));
          response.headers.Add("X-On-Loop", loop_->IsInLoopThread() ? "yes" : "no");
          r.Respond(std::move(response));
        });
  };
  StartServer();
  auto client = Client::Connect(port_);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send(Get("/busy")));
  auto busy = client->Read();
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->headers.Get("Retry-After"), "1");

  // Once the filler runs, the queue is empty again.
  gate.Open();
  ASSERT_EQ(filler_future.wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(client->Send(Get("/job")));
  auto worked = client->Read();
  ASSERT_TRUE(worked);
  EXPECT_EQ(worked->status, 200);
  EXPECT_EQ(worked->body, "worked on /job");
  EXPECT_EQ(worked->headers.Get("X-On-Loop"), "yes");
}

}  // namespace
}  // namespace turnkey::net
