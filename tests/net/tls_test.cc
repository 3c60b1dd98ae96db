// TLS listener, TlsContext policy and reload, and the TLS side of
// BlockingClient, against certificates generated at test time.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "net/blocking_client.h"
#include "net/stream_listener.h"
#include "net/tls_context.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using base::Bytes;
using base::ByteView;
using base::SocketAddress;
using testing::LoopThread;
using testing::MakeLoop;
using testing::TestCertificate;
using testing::TestCertificateChain;

std::shared_ptr<TlsContext> ServerContext(const TestCertificate& cert) {
  auto context = TlsContext::CreateServer(cert.cert_path(), cert.key_path());
  EXPECT_TRUE(context.has_value()) << context.error().message;
  return context ? *context : nullptr;
}

// A line echo: consumes up to and including '\n' and writes the line back.
size_t EchoLine(StreamConnection& connection, ByteView data) {
  std::string_view text = base::AsString(data);
  size_t end = text.find('\n');
  if (end == std::string_view::npos) {
    return 0;
  }
  connection.Write(data.first(end + 1));
  return end + 1;
}

base::Result<size_t> LineLength(ByteView buffered) {
  std::string_view text = base::AsString(buffered);
  size_t end = text.find('\n');
  return end == std::string_view::npos ? 0 : end + 1;
}

class TlsServer {
 public:
  // `on_accept`, when given, runs on each accepted connection after its
  // callbacks are set (before the TLS handshake).
  explicit TlsServer(std::shared_ptr<TlsContext> context, StreamListenerOptions options = {},
                     StreamConnection::DataCallback on_data = EchoLine,
                     std::function<void(StreamConnection&)> on_accept = nullptr) {
    loop_ = MakeLoop();
    auto listener = StreamListener::Create(
        *loop_, *SocketAddress::ParseIp("127.0.0.1", 0), options, std::move(context),
        [this, on_data, on_accept](StreamConnection& c) {
          EXPECT_TRUE(c.is_tls());
          c.SetCallbacks(on_data, [this](StreamConnection&, CloseReason reason) {
            std::lock_guard lock(mutex_);
            if (!reported_) {
              reported_ = true;
              first_close_.set_value(reason);
            }
          });
          if (on_accept) {
            on_accept(c);
          }
        });
    EXPECT_TRUE(listener.has_value()) << listener.error().message;
    listener_ = std::move(*listener);
    thread_ = std::make_unique<LoopThread>(*loop_);
    thread_->Start();
  }
  ~TlsServer() { thread_->Join(); }

  uint16_t port() const { return listener_->local_address().port(); }

  // Swaps the context on the loop thread and waits until it is done.
  void Swap(std::shared_ptr<TlsContext> context) {
    std::promise<bool> done;
    loop_->Post([&] { done.set_value(listener_->SetTlsContext(std::move(context)).has_value()); });
    auto future = done.get_future();
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(future.get());
  }

  CloseReason WaitFirstClose() {
    EXPECT_EQ(first_close_future_.wait_for(5s), std::future_status::ready);
    return first_close_future_.get();
  }
  bool Closed() const { return first_close_future_.wait_for(0s) == std::future_status::ready; }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<StreamListener> listener_;
  std::unique_ptr<LoopThread> thread_;
  std::mutex mutex_;
  bool reported_ = false;
  std::promise<CloseReason> first_close_;
  std::future<CloseReason> first_close_future_ = first_close_.get_future();
};

BlockingClientOptions TlsOptions(const std::string& ca_file) {
  BlockingClientOptions options;
  options.transport = Transport::kTls;
  options.verify_peer = true;
  options.ca_file = ca_file;
  return options;
}

void ExpectEcho(BlockingClient& client, const std::string& line) {
  ASSERT_TRUE(client.Send(base::AsBytes(line + "\n"), 5s));
  auto echo = client.ReceiveFrame(LineLength, 5s);
  ASSERT_TRUE(echo.has_value()) << echo.error().message;
  EXPECT_EQ(base::AsString(*echo), line + "\n");
}

// A plain OpenSSL client (no verification, 5 s receive timeout) to
// 127.0.0.1:port: `configure` adjusts its context, and once the handshake
// succeeded `connected` runs on the connection. False when it failed.
bool WithRawTlsClient(uint16_t port, const std::function<void(SSL_CTX*)>& configure,
                      const std::function<void(SSL*)>& connected) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  configure(ctx);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_storage address;
  socklen_t length = SocketAddress::ParseIp("127.0.0.1", port)->ToSockaddr(&address);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      ok = true;
      connected(ssl);
    }
    SSL_free(ssl);
  }
  ::close(fd);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

// Handshakes with a plain OpenSSL client limited to [min, max]; returns the
// negotiated "version cipher", or "" when the handshake failed. With
// `alpn` (wire format) the client offers it, and `selected` gets the
// protocol the server chose ("" for none).
std::string RawHandshake(uint16_t port, int min_version, int max_version,
                         const char* ciphers = nullptr, const std::string* alpn = nullptr,
                         std::string* selected = nullptr) {
  std::string result;
  WithRawTlsClient(
      port,
      [&](SSL_CTX* ctx) {
        SSL_CTX_set_min_proto_version(ctx, min_version);
        SSL_CTX_set_max_proto_version(ctx, max_version);
        if (ciphers != nullptr) {
          SSL_CTX_set_cipher_list(ctx, ciphers);
        }
        if (alpn != nullptr) {
          SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn->data()),
                                  static_cast<unsigned int>(alpn->size()));
        }
      },
      [&](SSL* ssl) {
        result = std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
        if (selected != nullptr) {
          const unsigned char* name = nullptr;
          unsigned int name_length = 0;
          SSL_get0_alpn_selected(ssl, &name, &name_length);
          selected->assign(reinterpret_cast<const char*>(name), name_length);
        }
      });
  return result;
}

TEST(TlsContextTest, ServerContextExposesNotAfter) {
  TestCertificate cert(5 * 86400);
  ASSERT_TRUE(cert.ok());
  auto context = ServerContext(cert);
  ASSERT_TRUE(context);
  const int64_t expected = static_cast<int64_t>(std::time(nullptr)) + 5 * 86400;
  EXPECT_NEAR(static_cast<double>(context->not_after_unix()), static_cast<double>(expected), 120);
  EXPECT_TRUE(context->is_server());
}

TEST(TlsContextTest, CreateServerFailsOnMissingFilesOrMismatchedKey) {
  TestCertificate a;
  TestCertificate b;
  ASSERT_TRUE(a.ok() && b.ok());
  auto missing = TlsContext::CreateServer(a.dir() + "/nope.pem", a.key_path());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(missing.error().message,
            "certificate " + a.dir() + "/nope.pem: cannot open: No such file or directory");
  auto mismatched = TlsContext::CreateServer(a.cert_path(), b.key_path());
  ASSERT_FALSE(mismatched.has_value());
  // Both files named, and OpenSSL's reason.
  EXPECT_EQ(
      mismatched.error().message.rfind(
          "private key " + b.key_path() + " does not match the certificate " + a.cert_path() + ": ",
          0),
      0u)
      << mismatched.error().message;
  EXPECT_NE(mismatched.error().message.find("mismatch"), std::string::npos)
      << mismatched.error().message;
}

TEST(TlsContextTest, AnEncryptedKeyIsRefusedWithoutAPrompt) {
  // OpenSSL would ask for the passphrase on the terminal (check-config
  // waiting at a prompt); the server refuses and says why.
  TestCertificate a;
  ASSERT_TRUE(a.ok());
  FILE* in = std::fopen(a.key_path().c_str(), "r");
  ASSERT_NE(in, nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  ASSERT_NE(key, nullptr);
  const std::string encrypted = a.dir() + "/encrypted.pem";
  FILE* out = std::fopen(encrypted.c_str(), "w");
  ASSERT_NE(out, nullptr);
  static const char kPassphrase[] = "secret";
  EXPECT_EQ(PEM_write_PrivateKey(out, key, EVP_aes_128_cbc(),
                                 reinterpret_cast<const unsigned char*>(kPassphrase),
                                 sizeof kPassphrase - 1, nullptr, nullptr),
            1);
  std::fclose(out);
  EVP_PKEY_free(key);
  auto context = TlsContext::CreateServer(a.cert_path(), encrypted);
  ASSERT_FALSE(context.has_value());
  EXPECT_EQ(context.error().code, base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(context.error().message.rfind("private key " + encrypted + ": the key is encrypted", 0),
            0u)
      << context.error().message;
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContextTest, CreateServerSaysWhatIsWrongWithAFile) {
  TestCertificate a;
  ASSERT_TRUE(a.ok());
  auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = a.dir() + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
  };
  const std::string empty = write("empty.pem", "");
  const std::string text = write("text.pem", "not a certificate\n");
  struct Case {
    std::string cert, key, message;
  };
  for (const Case& c : {
           Case{empty, a.key_path(), "certificate " + empty + ": the file is empty"},
           Case{text, a.key_path(), "certificate " + text + ": no PEM certificate in it"},
           Case{a.dir(), a.key_path(), "certificate " + a.dir() + ": is a directory"},
           Case{a.cert_path(), empty, "private key " + empty + ": the file is empty"},
           Case{a.cert_path(), text, "private key " + text + ": no PEM private key in it"},
           // The key file given as the certificate and the other way round.
           Case{a.key_path(), a.cert_path(),
                "certificate " + a.key_path() + ": no PEM certificate in it"},
       }) {
    auto context = TlsContext::CreateServer(c.cert, c.key);
    ASSERT_FALSE(context.has_value()) << c.message;
    EXPECT_EQ(context.error().code, base::ErrorCode::kInvalidArgument);
    EXPECT_EQ(context.error().message, c.message);
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsContextTest, ListenerRefusesAClientContext) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto client = TlsContext::CreateClient(false);
  ASSERT_TRUE(client.has_value());
  auto listener = StreamListener::Create(*loop, *SocketAddress::ParseIp("127.0.0.1", 0), {},
                                         *client, [](auto&) {});
  EXPECT_FALSE(listener.has_value());
}

// The tests of this suite run in both write modes: records shared by the
// writes libevent finds queued together, and a record per Write() with the
// ciphertext queued and sent as plain TCP's bytes (tls_record_per_write).
class TlsModeTest : public ::testing::TestWithParam<bool> {
 protected:
  StreamListenerOptions Options() const {
    StreamListenerOptions options;
    options.connection.tls_record_per_write = GetParam();
    return options;
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, TlsModeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "RecordPerWrite" : "SharedRecords";
                         });

TEST_P(TlsModeTest, EchoOverTls13WithVerifiedName) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  TlsServer server(ServerContext(cert), Options());
  auto client = BlockingClient::Connect("localhost", server.port(), TlsOptions(cert.cert_path()));
  ASSERT_TRUE(client.has_value()) << client.error().message;
  EXPECT_EQ((*client)->tls_version(), "TLSv1.3");
  ExpectEcho(**client, "hello over tls");
  ExpectEcho(**client, std::string(40000, 'z'));
  client->reset();
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kPeerClosed);
}

TEST_P(TlsModeTest, AnswerWrittenWhileCorkedGoesOutBeforeClose) {
  // The data callback runs corked: its answer waits in the connection until
  // the callback returns, and the Close() it asks for must still send it
  // (and a second, explicitly corked write) first.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  TlsServer server(ServerContext(cert), Options(), [](StreamConnection& c, ByteView data) {
    const size_t used = EchoLine(c, data);
    if (used > 0) {
      c.Cork();
      c.Write(base::AsBytes(std::string("bye\n")));
      c.Close();
      c.Uncork();
    }
    return used;
  });
  auto client = BlockingClient::Connect("localhost", server.port(), TlsOptions(cert.cert_path()));
  ASSERT_TRUE(client.has_value()) << client.error().message;
  ExpectEcho(**client, "last words");
  auto bye = (*client)->ReceiveFrame(LineLength, 5s);
  ASSERT_TRUE(bye.has_value()) << bye.error().message;
  EXPECT_EQ(base::AsString(*bye), "bye\n");
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kLocalClose);
  EXPECT_FALSE((*client)->ReceiveFrame(LineLength, 5s).has_value());
}

// The TLS records one plain OpenSSL client reads (SSL_read returns one
// record's data at most) after it sends "go\n", until `total` bytes came.
// `max_fragment` (a TLSEXT_max_fragment_length_* code, 0 = none) asks the
// server for smaller records.
std::vector<std::string> ReadRecords(uint16_t port, size_t total, uint8_t max_fragment = 0) {
  std::vector<std::string> records;
  WithRawTlsClient(
      port,
      [&](SSL_CTX* ctx) {
        if (max_fragment != 0) {
          SSL_CTX_set_tlsext_max_fragment_length(ctx, max_fragment);
        }
      },
      [&](SSL* ssl) {
        if (SSL_write(ssl, "go\n", 3) != 3) {
          return;
        }
        std::vector<char> buffer(70000);
        size_t received = 0;
        while (received < total) {
          const int n = SSL_read(ssl, buffer.data(), static_cast<int>(buffer.size()));
          if (n <= 0) {
            break;
          }
          records.emplace_back(buffer.data(), static_cast<size_t>(n));
          received += static_cast<size_t>(n);
        }
      });
  return records;
}

std::vector<size_t> Sizes(const std::vector<std::string>& records) {
  std::vector<size_t> sizes;
  for (const std::string& record : records) {
    sizes.push_back(record.size());
  }
  return sizes;
}

// A data callback that, on the client's first line, writes `writes` (the
// i-th all of letter 'a' + i), corked, so all are queued before the first
// SSL_write.
StreamConnection::DataCallback WriteAll(std::vector<size_t> writes) {
  return [writes](StreamConnection& c, ByteView data) {
    if (base::AsString(data).find('\n') == std::string_view::npos) {
      return size_t{0};
    }
    c.Cork();
    for (size_t i = 0; i < writes.size(); ++i) {
      c.Write(Bytes(writes[i], static_cast<uint8_t>('a' + i)));
    }
    c.Uncork();
    return data.size();
  };
}

std::string Expected(const std::vector<size_t>& writes) {
  std::string text;
  for (size_t i = 0; i < writes.size(); ++i) {
    text.append(writes[i], static_cast<char>('a' + i));
  }
  return text;
}

std::string Joined(const std::vector<std::string>& records) {
  std::string text;
  for (const std::string& record : records) {
    text += record;
  }
  return text;
}

TEST(TlsListenerTest, RecordPerWriteGivesEachWriteItsOwnRecords) {
  // 9000 + 12000 passes the bufferevent's default 16 KiB per write pass;
  // 20000 needs two records (16 KiB is a record's most).
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  const std::vector<size_t> writes = {5, 1200, 9000, 12000, 7, 20000, 3};
  const std::string expected = Expected(writes);
  StreamListenerOptions options;
  options.connection.tls_record_per_write = true;
  {
    TlsServer server(ServerContext(cert), options, WriteAll(writes));
    auto records = ReadRecords(server.port(), expected.size());
    EXPECT_EQ(Sizes(records),
              (std::vector<size_t>{5, 1200, 9000, 12000, 7, 16384, 20000 - 16384, 3}));
    EXPECT_EQ(Joined(records), expected);
  }
  // Without the option the writes share records.
  TlsServer server(ServerContext(cert), {}, WriteAll(writes));
  auto records = ReadRecords(server.port(), expected.size());
  EXPECT_EQ(Sizes(records).front(), 16384u);
  EXPECT_EQ(Joined(records), expected);
}

// Gathered writes: each inner list is the part sizes of one Write() of
// several parts; part k counted over all of them is all of letter
// 'a' + k % 26 (starting from part `first_part`), as WriteAll's writes.
class GatheredWrites {
 public:
  explicit GatheredWrites(std::vector<std::vector<size_t>> writes, size_t first_part = 0) {
    size_t k = first_part;
    for (const std::vector<size_t>& sizes : writes) {
      std::vector<Bytes>& parts = writes_.emplace_back();
      for (const size_t size : sizes) {
        const char letter = static_cast<char>('a' + k++ % 26);
        parts.emplace_back(size, static_cast<uint8_t>(letter));
        expected_.append(size, letter);
      }
    }
  }
  // Makes the writes, a gathered Write() each; expects each to be taken.
  void WriteTo(StreamConnection& c) const {
    for (const std::vector<Bytes>& parts : writes_) {
      std::vector<ByteView> views(parts.begin(), parts.end());
      EXPECT_TRUE(c.Write(views));
    }
  }
  // What the client must read: the parts one after the other.
  const std::string& expected() const { return expected_; }

 private:
  std::vector<std::vector<Bytes>> writes_;
  std::string expected_;
};

// A data callback that makes `writes` (which must outlive the server) on
// the client's first line: corked, as every data callback runs.
StreamConnection::DataCallback WriteGathered(const GatheredWrites& writes) {
  return [&writes](StreamConnection& c, ByteView data) {
    if (base::AsString(data).find('\n') == std::string_view::npos) {
      return size_t{0};
    }
    writes.WriteTo(c);
    return data.size();
  };
}

TEST_P(TlsModeTest, GatheredWritesArriveWholeAndInOrder) {
  // Made before the handshake (from the accept callback, not corked: the
  // bufferevent or a chain of its own holds them until it is done) and
  // after it (corked, from the data callback), with empty parts and parts
  // longer than a record.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  const GatheredWrites early({{5, 0, 1200}, {20000, 7}});
  const GatheredWrites late({{9000, 12000, 3}, {0, 0}, {1, 70000, 2, 0, 3}}, 5);
  TlsServer server(ServerContext(cert), Options(), WriteGathered(late),
                   [&](StreamConnection& c) { early.WriteTo(c); });
  const std::string expected = early.expected() + late.expected();
  auto records = ReadRecords(server.port(), expected.size());
  EXPECT_EQ(Joined(records), expected);
}

TEST(TlsListenerTest, RecordPerWriteGivesAGatheredWriteOneRunOfRecords) {
  // A Write() of several parts is one write: its bytes share records (as
  // many as it needs, 16 KiB at most each), never a record per part;
  // before the handshake and after it.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  const GatheredWrites early({{5, 1200}, {300}});
  const GatheredWrites late({{5, 1200, 9000}, {7}, {12000, 0, 20000, 3}}, 3);
  StreamListenerOptions options;
  options.connection.tls_record_per_write = true;
  TlsServer server(ServerContext(cert), options, WriteGathered(late),
                   [&](StreamConnection& c) { early.WriteTo(c); });
  const std::string expected = early.expected() + late.expected();
  auto records = ReadRecords(server.port(), expected.size());
  EXPECT_EQ(Sizes(records), (std::vector<size_t>{1205, 300, 10205, 7, 16384, 32003 - 16384}));
  EXPECT_EQ(Joined(records), expected);
}

TEST(TlsListenerTest, RecordPerWriteKeepsWritesMadeBeforeTheHandshakeApart) {
  // Written from the accept callback, before the handshake: they wait in
  // the bufferevent, a chain each, and libevent makes their records once
  // the handshake is done. Then a write made after it, on the client's line.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  const std::vector<size_t> early = {5, 1200, 9000, 20000};
  StreamListenerOptions options;
  options.connection.tls_record_per_write = true;
  TlsServer server(ServerContext(cert), options, WriteAll({7}), [&](StreamConnection& c) {
    for (size_t i = 0; i < early.size(); ++i) {
      c.Write(Bytes(early[i], static_cast<uint8_t>('a' + i)));
    }
  });
  const std::string expected = Expected(early) + std::string(7, 'a');
  auto records = ReadRecords(server.port(), expected.size());
  EXPECT_EQ(Sizes(records), (std::vector<size_t>{5, 1200, 9000, 16384, 20000 - 16384, 7}));
  EXPECT_EQ(Joined(records), expected);
}

TEST(TlsListenerTest, SmallRecordsAClientAsksForKeepTheBytesInOrder) {
  // A client's max_fragment_length (512) makes every write longer than a
  // record: the bytes must still arrive in the order written, with or
  // without a record per write.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  const std::vector<size_t> writes = {1000, 1000, 3000, 10, 700};
  const std::string expected = Expected(writes);
  for (bool record_per_write : {true, false}) {
    SCOPED_TRACE(record_per_write);
    StreamListenerOptions options;
    options.connection.tls_record_per_write = record_per_write;
    TlsServer server(ServerContext(cert), options, WriteAll(writes));
    auto records = ReadRecords(server.port(), expected.size(), TLSEXT_max_fragment_length_512);
    EXPECT_EQ(Joined(records), expected);
    for (size_t size : Sizes(records)) {
      EXPECT_LE(size, 512u);
    }
  }
}

TEST_P(TlsModeTest, ManyWritesBeyondTheSocketBuffersArriveWholeAndInOrder) {
  // 3,000 writes made in one callback: far more than the socket takes at
  // once, so most wait queued (plaintext, or ciphertext in record mode)
  // and leave as the client reads.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  const std::vector<size_t> writes(3000, 1000);
  const std::string expected = Expected(writes);
  TlsServer server(ServerContext(cert), Options(), WriteAll(writes));
  auto records = ReadRecords(server.port(), expected.size());
  EXPECT_EQ(Joined(records), expected);
  if (GetParam()) {
    EXPECT_EQ(Sizes(records), std::vector<size_t>(3000, 1000));
  }
}

TEST_P(TlsModeTest, AClientThatSendsButNeverReadsIsClosedAtTheWriteLimit) {
  // Each line the client sends gets 64 KiB back; it never reads them. What
  // the socket does not take queues up to max_output_bytes, then the
  // connection closes.
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options = Options();
  options.connection.max_output_bytes = 1024 * 1024;
  TlsServer server(ServerContext(cert), options, [](StreamConnection& c, ByteView data) {
    const size_t end = base::AsString(data).find('\n');
    if (end == std::string_view::npos) {
      return size_t{0};
    }
    c.Write(Bytes(64 * 1024, 'w'));
    return end + 1;
  });
  CloseReason reason = CloseReason::kLocalClose;
  EXPECT_TRUE(WithRawTlsClient(
      server.port(), [](SSL_CTX*) {},
      [&](SSL* ssl) {
        // 400 lines ask for 25 MiB, more than loopback's socket buffers hold.
        for (int i = 0; i < 400 && !server.Closed(); ++i) {
          if (SSL_write(ssl, "go\n", 3) != 3) {
            break;
          }
          std::this_thread::sleep_for(1ms);
        }
        reason = server.WaitFirstClose();
      }));
  EXPECT_EQ(reason, CloseReason::kWriteLimit);
}

// Answers "answer\n" to its first input and closes lingering.
size_t AnswerAndLinger(StreamConnection& c, ByteView data) {
  c.Write(base::AsBytes(std::string_view("answer\n")));
  c.CloseLingering();
  return data.size();
}

TEST_P(TlsModeTest, CloseLingeringSendsCloseNotifyAndDrainsUntilThePeerCloses) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options = Options();
  options.connection.linger_timeout = 60s;  // only the client's close ends it within the test
  TlsServer server(ServerContext(cert), options, AnswerAndLinger);
  auto client = BlockingClient::Connect("localhost", server.port(), TlsOptions(cert.cert_path()));
  ASSERT_TRUE(client.has_value()) << client.error().message;
  // Far more than one read: most of it is still unread when the server
  // answers. Closing on it would reset the connection, and this send, or
  // the read of the answer, could fail.
  ASSERT_TRUE((*client)->Send(Bytes(300 * 1024, 'x'), 5s));
  auto answer = (*client)->ReceiveFrame(LineLength, 5s);
  ASSERT_TRUE(answer.has_value()) << answer.error().message;
  EXPECT_EQ(base::AsString(*answer), "answer\n");
  // Then a clean TLS end (close_notify), not a reset.
  auto end = (*client)->ReceiveFrame(LineLength, 5s);
  ASSERT_FALSE(end.has_value());
  EXPECT_NE(end.error().message.find("peer closed"), std::string::npos) << end.error().message;
  EXPECT_FALSE(server.Closed());  // still draining, until the client closes
  client->reset();
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kLocalClose);
}

TEST_P(TlsModeTest, CloseLingeringEndsAfterItsTime) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options = Options();
  options.connection.linger_timeout = 100ms;
  TlsServer server(ServerContext(cert), options, AnswerAndLinger);
  auto client = BlockingClient::Connect("localhost", server.port(), TlsOptions(cert.cert_path()));
  ASSERT_TRUE(client.has_value()) << client.error().message;
  ASSERT_TRUE((*client)->Send(base::AsBytes(std::string_view("hi\n")), 5s));
  auto answer = (*client)->ReceiveFrame(LineLength, 5s);
  ASSERT_TRUE(answer.has_value()) << answer.error().message;
  // The client stays connected and silent.
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kLocalClose);
}

TEST(TlsListenerTest, VerifiesAnIpAddressAgainstTheSan) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  TlsServer server(ServerContext(cert));
  auto client = BlockingClient::Connect("127.0.0.1", server.port(), TlsOptions(cert.cert_path()));
  ASSERT_TRUE(client.has_value()) << client.error().message;
  ExpectEcho(**client, "by ip");
  // As the echo test: the server sees the close before it is torn down.
  // (EventLoopTest covers a connection still open at teardown.)
  client->reset();
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kPeerClosed);
}

TEST(TlsListenerTest, WrongNameOrUnknownCaFailsVerification) {
  TestCertificate cert;
  TestCertificate other;
  ASSERT_TRUE(cert.ok() && other.ok());
  TlsServer server(ServerContext(cert));
  auto options = TlsOptions(cert.cert_path());
  options.server_name = "wrong.example.org";
  auto wrong_name = BlockingClient::Connect("127.0.0.1", server.port(), options);
  ASSERT_FALSE(wrong_name.has_value());
  EXPECT_NE(wrong_name.error().message.find("certificate"), std::string::npos)
      << wrong_name.error().message;
  auto wrong_ca =
      BlockingClient::Connect("localhost", server.port(), TlsOptions(other.cert_path()));
  EXPECT_FALSE(wrong_ca.has_value());
  // Without verification the same server is reachable.
  BlockingClientOptions unverified;
  unverified.transport = Transport::kTls;
  unverified.verify_peer = false;
  auto client = BlockingClient::Connect("127.0.0.1", server.port(), unverified);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  ExpectEcho(**client, "unverified");
}

TEST(TlsListenerTest, AFullChainFileSendsTheIntermediateToTheClient) {
  // A client that trusts only the root verifies a server loaded from
  // fullchain.pem (the intermediate travels in the handshake), and fails
  // when the server was given the leaf alone.
  TestCertificateChain chain;
  ASSERT_TRUE(chain.ok());
  auto full = TlsContext::CreateServer(chain.fullchain_path(), chain.key_path());
  ASSERT_TRUE(full.has_value()) << full.error().message;
  TlsServer server(*full);
  auto client = BlockingClient::Connect("localhost", server.port(), TlsOptions(chain.root_path()));
  ASSERT_TRUE(client.has_value()) << client.error().message;
  ExpectEcho(**client, "through the intermediate");

  auto leaf = TlsContext::CreateServer(chain.leaf_path(), chain.key_path());
  ASSERT_TRUE(leaf.has_value()) << leaf.error().message;
  TlsServer leaf_server(*leaf);
  auto refused =
      BlockingClient::Connect("localhost", leaf_server.port(), TlsOptions(chain.root_path()));
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("certificate"), std::string::npos)
      << refused.error().message;
}

TEST_P(TlsModeTest, Tls12OnlyWithForwardSecretAead) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  TlsServer server(ServerContext(cert), Options());
  std::string negotiated = RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION);
  ASSERT_FALSE(negotiated.empty());
  EXPECT_EQ(negotiated.rfind("TLSv1.2 ECDHE-", 0), 0u) << negotiated;
  EXPECT_TRUE(negotiated.find("GCM") != std::string::npos ||
              negotiated.find("CHACHA20") != std::string::npos)
      << negotiated;
  // A TLS 1.2 client offering only CBC or non-forward-secret suites is refused.
  EXPECT_EQ(RawHandshake(server.port(), TLS1_2_VERSION, TLS1_2_VERSION,
                         "AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256"),
            "");
}

TEST(TlsListenerTest, Tls11ClientIsRefused) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  TlsServer server(ServerContext(cert));
  // SECLEVEL=0 so that our own client is willing to speak TLS 1.1: the
  // refusal must come from the server.
  EXPECT_EQ(RawHandshake(server.port(), TLS1_VERSION, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0"), "");
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kError);
}

// Handshakes offering `names` by ALPN ({} = no ALPN extension): the
// protocol the server selected ("" for none), or nullopt when the handshake
// failed.
std::optional<std::string> AlpnSelected(uint16_t port, std::initializer_list<std::string> names) {
  std::string wire;  // a length byte before each name
  for (const std::string& name : names) {
    wire += static_cast<char>(name.size());
    wire += name;
  }
  std::string selected;
  if (RawHandshake(port, TLS1_2_VERSION, TLS1_3_VERSION, nullptr,
                   names.size() == 0 ? nullptr : &wire, &selected)
          .empty()) {
    return std::nullopt;
  }
  return selected;
}

TEST(TlsListenerTest, AlpnSelectsHttp11AndRefusesClientsWithoutIt) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options;
  options.alpn = AlpnPolicy::kHttp11;
  TlsServer server(ServerContext(cert), options);
  EXPECT_EQ(AlpnSelected(server.port(), {"h2", "http/1.1"}), "http/1.1");  // a browser
  // No ALPN at all (curl --no-alpn, most HTTP/1 clients): none selected.
  EXPECT_EQ(AlpnSelected(server.port(), {}), "");
  // An h2-only client gets no_application_protocol (RFC 7301 section 3.2),
  // not a handshake and then bytes it cannot read.
  EXPECT_EQ(AlpnSelected(server.port(), {"h2"}), std::nullopt);
}

TEST(TlsListenerTest, AlpnSelectsStunTurnWhenOfferedAndOtherwiseLetsTheClientIn) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options;
  options.alpn = AlpnPolicy::kStunTurn;
  TlsServer server(ServerContext(cert), options);
  EXPECT_EQ(AlpnSelected(server.port(), {"stun.turn"}), "stun.turn");
  EXPECT_EQ(AlpnSelected(server.port(), {"http/1.1"}), "");
}

TEST(TlsListenerTest, APlainHttpRequestGetsThePlainAnswerThenAClose) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options;
  options.connection.plain_http_answer = "HTTP/1.1 400 Bad Request\r\n\r\n";
  TlsServer server(ServerContext(cert), options);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_storage address;
  socklen_t length = SocketAddress::ParseIp("127.0.0.1", server.port())->ToSockaddr(&address);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  // The answer, then an orderly close (EOF, not a reset that could lose it).
  std::string received;
  char buffer[256];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    received.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(n, 0) << std::strerror(errno);
  ::close(fd);
  EXPECT_EQ(received, "HTTP/1.1 400 Bad Request\r\n\r\n");
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kError);
}

TEST_P(TlsModeTest, HandshakeIsBoundedByTheIdleTimeout) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  StreamListenerOptions options = Options();
  options.connection.idle_timeout = 100ms;
  TlsServer server(ServerContext(cert), options);
  // Plain TCP that never starts the handshake.
  auto client = BlockingClient::Connect("127.0.0.1", server.port(),
                                        BlockingClientOptions{.transport = Transport::kTcp});
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(server.WaitFirstClose(), CloseReason::kIdleTimeout);
}

TEST(TlsListenerTest, SwappedContextServesNewConnectionsOldOnesKeepTheirs) {
  TestCertificate old_cert;
  TestCertificate new_cert;
  ASSERT_TRUE(old_cert.ok() && new_cert.ok());
  TlsServer server(ServerContext(old_cert));
  auto before =
      BlockingClient::Connect("localhost", server.port(), TlsOptions(old_cert.cert_path()));
  ASSERT_TRUE(before.has_value()) << before.error().message;
  ExpectEcho(**before, "before reload");

  server.Swap(ServerContext(new_cert));

  auto trusting_old =
      BlockingClient::Connect("localhost", server.port(), TlsOptions(old_cert.cert_path()));
  EXPECT_FALSE(trusting_old.has_value());
  auto trusting_new =
      BlockingClient::Connect("localhost", server.port(), TlsOptions(new_cert.cert_path()));
  ASSERT_TRUE(trusting_new.has_value()) << trusting_new.error().message;
  ExpectEcho(**trusting_new, "after reload");
  ExpectEcho(**before, "established connection still works");
}

}  // namespace
}  // namespace turnkey::net
