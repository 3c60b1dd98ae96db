#include "net/stream_listener.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "net/blocking_client.h"
#include "net/connection_budget.h"
#include "net/tls_context.h"
#include "tests/net/net_test_util.h"

namespace turnkey::net {
namespace {

using namespace std::chrono_literals;
using base::Bytes;
using base::ByteView;
using base::SocketAddress;
using testing::Eventually;
using testing::LoopThread;
using testing::MakeLoop;
using testing::RunUntil;
using testing::TestCertificate;

// Test framing: a 2-byte big-endian length, then that many bytes.
Bytes Frame(std::string_view payload) {
  // Sized up front: GCC 12 warns wrongly (-Warray-bounds) about an insert
  // after two push_backs once optimized.
  Bytes out(2 + payload.size());
  base::StoreBe16(out.data(), static_cast<uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + 2);
  return out;
}

base::Result<size_t> FrameLength(ByteView buffered) {
  if (buffered.size() < 2) {
    return 0;
  }
  size_t length = 2 + base::LoadBe16(buffered.data());
  return buffered.size() >= length ? length : 0;
}

std::string Payload(const Bytes& frame) {
  return std::string(base::AsString(ByteView(frame).subspan(2)));
}

// Echo server handler: consumes one whole frame per call and writes it back.
size_t EchoOneFrame(StreamConnection& connection, ByteView data) {
  auto length = FrameLength(data);
  if (!length || *length == 0) {
    return 0;
  }
  connection.Write(data.first(*length));
  return *length;
}

SocketAddress Loopback4() { return *SocketAddress::ParseIp("127.0.0.1", 0); }

struct Server {
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<StreamListener> listener;
  std::promise<CloseReason> closed;
  std::atomic<int> data_calls{0};
};

// Starts a listener whose connections echo frames and report how they closed.
void StartEchoServer(Server& server, StreamListenerOptions options = {},
                     std::shared_ptr<TlsContext> tls = nullptr) {
  server.loop = MakeLoop();
  ASSERT_TRUE(server.loop);
  auto listener = StreamListener::Create(
      *server.loop, Loopback4(), options, std::move(tls), [&server](StreamConnection& c) {
        c.SetCallbacks(
            [&server](StreamConnection& conn, ByteView data) {
              ++server.data_calls;
              return EchoOneFrame(conn, data);
            },
            [&server](StreamConnection&, CloseReason reason) { server.closed.set_value(reason); });
      });
  ASSERT_TRUE(listener.has_value()) << listener.error().message;
  server.listener = std::move(*listener);
}

BlockingClientOptions Tcp() {
  BlockingClientOptions options;
  options.transport = Transport::kTcp;
  options.connect_timeout = 5s;
  return options;
}

std::unique_ptr<BlockingClient> ConnectTo(const std::string& host, uint16_t port,
                                          const BlockingClientOptions& options) {
  auto client = BlockingClient::Connect(host, port, options);
  EXPECT_TRUE(client.has_value()) << client.error().message;
  return client ? std::move(*client) : nullptr;
}

// The close reason, or nullopt (a failure) when none came within 5 s:
// never waits for ever on a connection that stays open.
std::optional<CloseReason> WaitClosed(Server& server) {
  auto future = server.closed.get_future();
  if (future.wait_for(5s) != std::future_status::ready) {
    ADD_FAILURE() << "the connection did not close";
    return std::nullopt;
  }
  return future.get();
}

TEST(StreamListenerTest, TcpEchoConsumesWholeFramesOnly) {
  Server server;
  StartEchoServer(server);
  ASSERT_TRUE(server.listener);
  const uint16_t port = server.listener->local_address().port();
  LoopThread thread(*server.loop);
  thread.Start();

  auto client = ConnectTo("127.0.0.1", port, Tcp());
  ASSERT_TRUE(client);
  // Three frames in one write, then one frame split over two writes.
  Bytes three = Frame("alpha");
  base::AppendBytes(three, Frame("beta"));
  base::AppendBytes(three, Frame("gamma"));
  ASSERT_TRUE(client->Send(three, 5s));
  Bytes split = Frame("delta-split");
  ASSERT_TRUE(client->Send(ByteView(split).first(5), 5s));
  for (const char* expected : {"alpha", "beta", "gamma"}) {
    auto frame = client->ReceiveFrame(FrameLength, 5s);
    ASSERT_TRUE(frame.has_value()) << frame.error().message;
    EXPECT_EQ(Payload(*frame), expected);
  }
  ASSERT_TRUE(client->Send(ByteView(split).subspan(5), 5s));
  auto frame = client->ReceiveFrame(FrameLength, 5s);
  ASSERT_TRUE(frame.has_value()) << frame.error().message;
  EXPECT_EQ(Payload(*frame), "delta-split");

  client.reset();  // peer closes
  EXPECT_EQ(WaitClosed(server), CloseReason::kPeerClosed);
  thread.Join();
  EXPECT_EQ(server.listener->connection_count(), 0u);
  EXPECT_EQ(server.listener->accepted_count(), 1u);
}

TEST(StreamListenerTest, IdleTimeoutCloses) {
  Server server;
  StreamListenerOptions options;
  options.connection.idle_timeout = 100ms;
  StartEchoServer(server, options);
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();

  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  EXPECT_EQ(WaitClosed(server), CloseReason::kIdleTimeout);
  auto frame = client->ReceiveFrame(FrameLength, 5s);
  EXPECT_FALSE(frame.has_value());
}

TEST(StreamListenerTest, ActivityResetsTheIdleTimer) {
  Server server;
  StreamListenerOptions options;
  options.connection.idle_timeout = 300ms;
  StartEchoServer(server, options);
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();

  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  // Each round trip waits for the echo, which takes far less than the idle
  // timeout; eight of them last longer than one timeout only if the server is
  // slow, so the point is that the connection stays open throughout.
  const auto start = std::chrono::steady_clock::now();
  int rounds = 0;
  while (std::chrono::steady_clock::now() - start < 600ms) {
    ASSERT_TRUE(client->Send(Frame("ping"), 5s));
    auto frame = client->ReceiveFrame(FrameLength, 5s);
    ASSERT_TRUE(frame.has_value()) << "closed after " << rounds << " rounds";
    ++rounds;
    // Paced by a deadline on the client socket, not a sleep: wait for a reply
    // that never comes, bounded at 100 ms.
    auto none = client->ReceiveFrame(FrameLength, 100ms);
    EXPECT_FALSE(none.has_value());
  }
  EXPECT_GE(rounds, 3);
  client.reset();
  EXPECT_EQ(WaitClosed(server), CloseReason::kPeerClosed);
}

TEST(StreamListenerTest, UnconsumedInputAboveTheLimitCloses) {
  Server server;
  StreamListenerOptions options;
  options.connection.max_input_bytes = 1024;
  StartEchoServer(server, options);
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();

  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  // A frame header announcing 60000 bytes: the handler never consumes it.
  Bytes big = Frame(std::string(60000, 'x'));
  (void)client->Send(big, 5s);  // may fail once the server resets
  EXPECT_EQ(WaitClosed(server), CloseReason::kReadLimit);
  EXPECT_FALSE(client->ReceiveFrame(FrameLength, 5s).has_value());
}

TEST(StreamListenerTest, CloseFlushesQueuedOutputFirst) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  constexpr size_t kSize = 512 * 1024;
  std::promise<CloseReason> closed;
  auto listener = StreamListener::Create(*loop, Loopback4(), {}, nullptr, [&](StreamConnection& c) {
    c.SetCallbacks(nullptr,
                   [&](StreamConnection&, CloseReason reason) { closed.set_value(reason); });
    EXPECT_TRUE(c.Write(Bytes(kSize, 0x5a)));
    c.Close();
    EXPECT_FALSE(c.is_open());
    EXPECT_FALSE(c.Write(Bytes(1, 1)));
  });
  ASSERT_TRUE(listener.has_value());
  LoopThread thread(*loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", (*listener)->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  auto all = client->ReceiveFrame(
      [](ByteView b) -> base::Result<size_t> { return b.size() >= kSize ? kSize : 0; }, 5s);
  ASSERT_TRUE(all.has_value()) << all.error().message;
  EXPECT_EQ(all->size(), kSize);
  auto future = closed.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(future.get(), CloseReason::kLocalClose);
  // And then the server really closed.
  EXPECT_FALSE(client->ReceiveFrame(FrameLength, 5s).has_value());
}

// A listener whose connections answer their first input with "answer" and
// CloseLingering(), and report their close.
// Reads "answer" and then expects the end of the stream; the error text
// says whether it came as a FIN ("peer closed") or a reset.
std::string AnswerThenEnd(BlockingClient& client) {
  auto answer = client.ReceiveFrame(
      [](ByteView b) -> base::Result<size_t> { return b.size() >= 6 ? 6 : 0; }, 5s);
  if (!answer) {
    return "no answer: " + answer.error().message;
  }
  EXPECT_EQ(base::AsString(*answer), "answer");
  auto more = client.ReceiveFrame([](ByteView) -> base::Result<size_t> { return 0; }, 5s);
  return more ? "more bytes" : more.error().message;
}

struct LingeringServer {
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<StreamListener> listener;
  std::promise<CloseReason> closed;
  std::future<CloseReason> closed_future = closed.get_future();

  explicit LingeringServer(StreamConnectionOptions connection) {
    loop = MakeLoop();
    StreamListenerOptions options;
    options.connection = connection;
    auto created =
        StreamListener::Create(*loop, Loopback4(), options, nullptr, [this](StreamConnection& c) {
          c.SetCallbacks(
              [](StreamConnection& conn, ByteView data) {
                conn.Write(base::AsBytes(std::string_view("answer")));
                conn.CloseLingering();
                EXPECT_FALSE(conn.is_open());
                EXPECT_FALSE(conn.Write(Bytes(1, 1)));
                return data.size();
              },
              [this](StreamConnection&, CloseReason reason) { closed.set_value(reason); });
        });
    EXPECT_TRUE(created.has_value());
    if (created) {
      listener = std::move(*created);
    }
  }
  uint16_t port() const { return listener->local_address().port(); }
  bool Closed(std::chrono::milliseconds within) {
    return closed_future.wait_for(within) == std::future_status::ready;
  }
  // Runs the loop, connects and sends `first`; expects the answer, then a FIN.
  std::unique_ptr<BlockingClient> Answered(const Bytes& first) {
    thread = std::make_unique<LoopThread>(*loop);
    thread->Start();
    auto client = ConnectTo("127.0.0.1", port(), Tcp());
    EXPECT_TRUE(client);
    if (client) {
      EXPECT_TRUE(client->Send(first, 5s));
      EXPECT_NE(AnswerThenEnd(*client).find("peer closed"), std::string::npos);
    }
    return client;
  }

  std::unique_ptr<LoopThread> thread;  // last: stops before the rest goes
};

TEST(StreamListenerTest, CloseLingeringSendsAFinAndDropsWhatThePeerStillSends) {
  StreamConnectionOptions options;
  options.linger_timeout = 60s;  // only the peer's close can end it within the test
  LingeringServer server(options);
  ASSERT_TRUE(server.listener);
  // Far more than one read: most of it is still unread when the server
  // answers. A plain close would reset the connection here.
  auto client = server.Answered(Bytes(300 * 1024, 'x'));
  ASSERT_TRUE(client);
  EXPECT_FALSE(server.Closed(0ms));  // still draining, until the client closes
  client.reset();
  ASSERT_TRUE(server.Closed(5s));
  EXPECT_EQ(server.closed_future.get(), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, CloseLingeringEndsAfterItsTime) {
  StreamConnectionOptions options;
  options.linger_timeout = 100ms;
  LingeringServer server(options);
  ASSERT_TRUE(server.listener);
  auto client = server.Answered(Bytes(1, 'x'));
  ASSERT_TRUE(client);
  // The client stays connected and silent.
  ASSERT_TRUE(server.Closed(5s));
  EXPECT_EQ(server.closed_future.get(), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, CloseLingeringEndsAfterItsBytes) {
  StreamConnectionOptions options;
  options.linger_timeout = 60s;
  options.linger_bytes = 1000;
  LingeringServer server(options);
  ASSERT_TRUE(server.listener);
  auto client = server.Answered(Bytes(1, 'x'));
  ASSERT_TRUE(client);
  EXPECT_FALSE(server.Closed(0ms));
  // The client keeps the connection open but sends more than the budget.
  (void)client->Send(Bytes(200 * 1024, 'y'), 5s);  // may fail once the server closes
  ASSERT_TRUE(server.Closed(5s));
  EXPECT_EQ(server.closed_future.get(), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, CorkedWritesGoOutOnUncorkEvenAfterClose) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::promise<CloseReason> closed;
  auto listener = StreamListener::Create(*loop, Loopback4(), {}, nullptr, [&](StreamConnection& c) {
    c.SetCallbacks(nullptr,
                   [&](StreamConnection&, CloseReason reason) { closed.set_value(reason); });
    c.Cork();
    EXPECT_TRUE(c.Write(Frame("first")));
    EXPECT_TRUE(c.Write(Frame("second")));
    EXPECT_EQ(c.output_size(), Frame("first").size() + Frame("second").size());
    c.Close();  // waits for the corked bytes
    c.Uncork();
  });
  ASSERT_TRUE(listener.has_value());
  LoopThread thread(*loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", (*listener)->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  for (const char* expected : {"first", "second"}) {
    auto frame = client->ReceiveFrame(FrameLength, 5s);
    ASSERT_TRUE(frame.has_value()) << frame.error().message;
    EXPECT_EQ(Payload(*frame), expected);
  }
  auto future = closed.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(future.get(), CloseReason::kLocalClose);
  EXPECT_FALSE(client->ReceiveFrame(FrameLength, 5s).has_value());
}

// ---- Gathered writes (Write of several parts)

// Byte `i` of a stream that gathered writes send: no two places a few bytes
// or a few pages apart look alike, so a byte lost, sent twice or moved
// (say, the part of a partial send that was already out, queued again)
// shows at its place.
uint8_t PatternByte(size_t i) {
  uint64_t x = (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15u;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9u;
  return static_cast<uint8_t>(x >> 56);
}

// Parts of the given sizes cut from the pattern stream at `offset` (the
// first part starts there, each next part where the previous one ends).
class PatternParts {
 public:
  PatternParts(std::initializer_list<size_t> sizes, size_t offset = 0) {
    for (const size_t size : sizes) {
      Bytes& part = parts_.emplace_back(size);
      for (size_t i = 0; i < size; ++i) {
        part[i] = PatternByte(offset + i);
      }
      offset += size;
    }
    for (const Bytes& part : parts_) {
      views_.emplace_back(part);
      size_ += part.size();
    }
  }
  std::span<const ByteView> views() const { return views_; }
  // The sum of the parts' sizes.
  size_t size() const { return size_; }
  // The parts one after the other.
  Bytes Joined() const {
    Bytes joined;
    for (const Bytes& part : parts_) {
      base::AppendBytes(joined, part);
    }
    return joined;
  }
  // True if `position` bytes into the whole is where a part starts or ends.
  bool IsBoundary(size_t position) const {
    size_t at = 0;
    for (const Bytes& part : parts_) {
      if (position == at) {
        return true;
      }
      at += part.size();
    }
    return position == at;
  }

 private:
  std::vector<Bytes> parts_;
  std::vector<ByteView> views_;
  size_t size_ = 0;
};

// Starts a listener whose connections report how they closed and then run
// `on_accept` (their writes). Nothing they receive is read.
void StartWritingServer(Server& server, std::function<void(StreamConnection&)> on_accept,
                        StreamListenerOptions options = {}) {
  server.loop = MakeLoop();
  ASSERT_TRUE(server.loop);
  auto listener = StreamListener::Create(
      *server.loop, Loopback4(), options, nullptr, [&server, on_accept](StreamConnection& c) {
        c.SetCallbacks(nullptr, [&server](StreamConnection&, CloseReason reason) {
          server.closed.set_value(reason);
        });
        on_accept(c);
      });
  ASSERT_TRUE(listener.has_value()) << listener.error().message;
  server.listener = std::move(*listener);
}

// Exactly `size` bytes, and then the end of the stream with nothing after
// them (the server closes once it has written); empty on failure.
Bytes ReceiveAllThenEnd(BlockingClient& client, size_t size) {
  base::Result<Bytes> all = Bytes();
  if (size > 0) {
    all = client.ReceiveFrame(
        [size](ByteView b) -> base::Result<size_t> { return b.size() >= size ? size : 0; }, 10s);
    EXPECT_TRUE(all.has_value()) << all.error().message;
  }
  // Any byte more would be a frame here.
  auto more = client.ReceiveFrame([](ByteView b) -> base::Result<size_t> { return b.size(); }, 5s);
  EXPECT_FALSE(more.has_value()) << more->size() << " bytes more than written";
  if (!more.has_value()) {
    EXPECT_NE(more.error().message.find("peer closed"), std::string::npos) << more.error().message;
  }
  return all ? std::move(*all) : Bytes();
}

TEST(StreamListenerTest, AGatheredWriteArrivesWholeAndInOrder) {
  // Three parts (one sendmsg of them), ten (more than the vectors a sendmsg
  // gets here: joined first), then a plain write. Nothing is queued before
  // any of them, so each goes straight into the socket.
  const PatternParts three({5, 1200, 3});
  const PatternParts ten({1, 2, 3, 4, 5, 600, 7, 8, 9, 10}, three.size());
  const PatternParts plain({4000}, three.size() + ten.size());
  Server server;
  StartWritingServer(server, [&](StreamConnection& c) {
    EXPECT_TRUE(c.Write(three.views()));
    EXPECT_TRUE(c.Write(ten.views()));
    EXPECT_TRUE(c.Write(plain.views().front()));
    EXPECT_EQ(c.output_size(), 0u);  // all in the socket
    c.Close();
  });
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  Bytes expected = three.Joined();
  base::AppendBytes(expected, ten.Joined());
  base::AppendBytes(expected, plain.Joined());
  EXPECT_EQ(ReceiveAllThenEnd(*client, expected.size()), expected);
  EXPECT_EQ(WaitClosed(server), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, AGatheredWriteFarBeyondTheSocketBuffersArrivesWholeAndInOrder) {
  // Over 12 MB in parts of odd sizes to a client that reads only once both
  // writes are made: the socket takes a few MB at most, so the sendmsg stops
  // inside a part and the rest of the parts, from that byte on, is queued;
  // the second gathered write queues behind it. The client must get every
  // byte once, in order.
  const PatternParts first({1, 3000001, 7, 4999999, 13, 3333333, 5, 1000003});
  const PatternParts second({17, 0, 70001, 3}, first.size());
  std::promise<size_t> queued;
  Server server;
  StreamListenerOptions options;
  options.connection.max_output_bytes = 0;  // unlimited: all of it waits queued
  StartWritingServer(
      server,
      [&](StreamConnection& c) {
        EXPECT_TRUE(c.Write(first.views()));
        const size_t queued_after_first = c.output_size();
        EXPECT_TRUE(c.Write(second.views()));
        EXPECT_EQ(c.output_size(), queued_after_first + second.size());
        queued.set_value(queued_after_first);
        c.Close();  // after all of it is sent
      },
      options);
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  auto queued_future = queued.get_future();
  ASSERT_EQ(queued_future.wait_for(5s), std::future_status::ready);
  const size_t queued_after_first = queued_future.get();
  // The premise: the first sendmsg was partial and stopped inside a part.
  EXPECT_GT(queued_after_first, 0u);
  EXPECT_LT(queued_after_first, first.size());
  const size_t sent_at_once = first.size() - std::min(queued_after_first, first.size());
  EXPECT_FALSE(first.IsBoundary(sent_at_once)) << sent_at_once;

  Bytes expected = first.Joined();
  base::AppendBytes(expected, second.Joined());
  const Bytes received = ReceiveAllThenEnd(*client, expected.size());
  ASSERT_EQ(received.size(), expected.size());
  // Where they differ first, not 12 MB of bytes.
  const auto mismatch = std::mismatch(received.begin(), received.end(), expected.begin());
  EXPECT_TRUE(mismatch.first == received.end())
      << "first wrong byte at " << (mismatch.first - received.begin())
      << "; the first sendmsg sent " << sent_at_once;
  EXPECT_EQ(WaitClosed(server), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, AGatheredWriteWhileCorkedGoesOutAtUncorkAfterTheEarlierWrites) {
  // The second frame in three parts, cut inside its length and its text.
  const Bytes second = Frame("second, in three parts");
  const ByteView second_parts[] = {ByteView(second).first(1), ByteView(second).subspan(1, 8),
                                   ByteView(second).subspan(9)};
  Server server;
  StartWritingServer(server, [&](StreamConnection& c) {
    c.Cork();
    c.Cork();
    EXPECT_TRUE(c.Write(Frame("first")));
    EXPECT_TRUE(c.Write(second_parts));
    EXPECT_TRUE(c.Write(Frame("third")));
    const size_t total = Frame("first").size() + second.size() + Frame("third").size();
    EXPECT_EQ(c.output_size(), total);  // nothing sent yet
    c.Uncork();
    EXPECT_EQ(c.output_size(), total);  // still corked once
    c.Uncork();
    EXPECT_EQ(c.output_size(), 0u);
    c.Close();
  });
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  for (const char* expected : {"first", "second, in three parts", "third"}) {
    auto frame = client->ReceiveFrame(FrameLength, 5s);
    ASSERT_TRUE(frame.has_value()) << frame.error().message;
    EXPECT_EQ(Payload(*frame), expected);
  }
  EXPECT_EQ(ReceiveAllThenEnd(*client, 0), Bytes());
  EXPECT_EQ(WaitClosed(server), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, EmptyPartsAreSkippedAndAGatheredWriteOfNothingSucceeds) {
  const ByteView none[] = {ByteView(), ByteView()};
  const std::string_view texts[] = {"", "ab", "", "", "cde", ""};
  std::vector<ByteView> parts;
  for (std::string_view text : texts) {
    parts.push_back(base::AsBytes(text));
  }
  // Ten parts, half of them empty.
  const std::string_view more_texts[] = {"f", "", "gh", "", "", "i", "", "jk", "", "l"};
  std::vector<ByteView> more;
  for (std::string_view text : more_texts) {
    more.push_back(base::AsBytes(text));
  }
  Server server;
  StartWritingServer(server, [&](StreamConnection& c) {
    EXPECT_TRUE(c.Write(std::span<const ByteView>()));
    EXPECT_TRUE(c.Write(none));
    EXPECT_TRUE(c.Write(parts));
    EXPECT_TRUE(c.Write(more));
    c.Cork();
    EXPECT_TRUE(c.Write(none));
    EXPECT_EQ(c.output_size(), 0u);
    EXPECT_TRUE(c.Write(parts));
    EXPECT_EQ(c.output_size(), 5u);
    c.Uncork();
    c.Close();
    // Closing: refused, even with nothing in it.
    EXPECT_FALSE(c.Write(none));
    EXPECT_FALSE(c.Write(parts));
  });
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  const std::string expected = "abcdefghijklabcde";
  EXPECT_EQ(base::AsString(ReceiveAllThenEnd(*client, expected.size())), expected);
  EXPECT_EQ(WaitClosed(server), CloseReason::kLocalClose);
}

TEST(StreamListenerTest, GatheredWritesToAClientThatDoesNotReadCloseAtTheWriteLimit) {
  // Each frame the client sends gets about 64 KiB back in one gathered
  // write of three parts (from the data callback: corked); the client never
  // reads. What is not sent (corked for the frames of one read, or not taken
  // by the socket) queues up to max_output_bytes, and the write that passes
  // it is refused and closes the connection.
  const PatternParts answer({4, 60000, 5536});
  std::atomic<int> refused{0};
  Server server;
  server.loop = MakeLoop();
  ASSERT_TRUE(server.loop);
  StreamListenerOptions options;
  options.connection.max_output_bytes = 1024 * 1024;
  auto listener =
      StreamListener::Create(*server.loop, Loopback4(), options, nullptr, [&](StreamConnection& c) {
        c.SetCallbacks(
            [&](StreamConnection& conn, ByteView data) {
              auto length = FrameLength(data);
              if (!length || *length == 0) {
                return size_t{0};
              }
              if (!conn.Write(answer.views())) {
                ++refused;
              }
              return *length;
            },
            [&](StreamConnection&, CloseReason reason) { server.closed.set_value(reason); });
      });
  ASSERT_TRUE(listener.has_value()) << listener.error().message;
  server.listener = std::move(*listener);
  LoopThread thread(*server.loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  auto closed = server.closed.get_future();
  // 1000 frames ask for 64 MB, far more than the socket buffers and the
  // limit hold.
  for (int i = 0; i < 1000 && closed.wait_for(0s) != std::future_status::ready; ++i) {
    if (!client->Send(Frame("more"), 5s)) {
      break;  // the server closed (and reset) meanwhile
    }
  }
  ASSERT_EQ(closed.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(closed.get(), CloseReason::kWriteLimit);
  EXPECT_EQ(refused.load(), 1);
}

TEST(StreamListenerTest, AGatheredWriteTheSocketCannotTakeClosesAtTheWriteLimit) {
  // Not corked, nothing queued: the sendmsg takes what the socket holds (a
  // few MB at most, the client does not read) and the rest, far more than
  // max_output_bytes, closes the connection.
  const PatternParts parts({3, 8 * 1024 * 1024, 1, 8 * 1024 * 1024});
  std::promise<bool> written;
  Server server;
  StreamListenerOptions options;
  options.connection.max_output_bytes = 1024 * 1024;
  StartWritingServer(
      server,
      [&](StreamConnection& c) {
        written.set_value(c.Write(parts.views()));
        EXPECT_FALSE(c.is_open());
      },
      options);
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();
  auto client = ConnectTo("127.0.0.1", server.listener->local_address().port(), Tcp());
  ASSERT_TRUE(client);
  auto future = written.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(future.get());
  EXPECT_EQ(WaitClosed(server), CloseReason::kWriteLimit);
}

TEST(StreamListenerTest, AbortFromTheDataCallbackReportsCloseLater) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  bool in_data = false;
  bool close_inside_data = false;
  int closes = 0;
  CloseReason reason = CloseReason::kError;
  auto listener = StreamListener::Create(*loop, Loopback4(), {}, nullptr, [&](StreamConnection& c) {
    c.SetCallbacks(
        [&](StreamConnection& conn, ByteView data) {
          in_data = true;
          conn.Abort();
          in_data = false;
          return data.size();
        },
        [&](StreamConnection&, CloseReason r) {
          close_inside_data = in_data;
          ++closes;
          reason = r;
        });
  });
  ASSERT_TRUE(listener.has_value());
  // A raw client socket, driven without blocking: connect and write once.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_storage address;
  socklen_t length = (*listener)->local_address().ToSockaddr(&address);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  EXPECT_TRUE(RunUntil(*loop, [&] { return closes == 1 && (*listener)->connection_count() == 0; }));
  EXPECT_FALSE(close_inside_data);
  EXPECT_EQ(reason, CloseReason::kLocalClose);
  ::close(fd);
}

TEST(StreamListenerTest, HandlerCanBeReplacedFromInsideTheDataCallback) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  std::string seen;
  auto listener = StreamListener::Create(*loop, Loopback4(), {}, nullptr, [&](StreamConnection& c) {
    // First handler: takes a line "UPGRADE\n", then hands over.
    c.SetCallbacks(
        [&](StreamConnection& conn, ByteView data) -> size_t {
          std::string_view text = base::AsString(data);
          size_t end = text.find('\n');
          if (end == std::string_view::npos) {
            return 0;
          }
          seen += "[" + std::string(text.substr(0, end)) + "]";
          conn.SetCallbacks(
              [&](StreamConnection&, ByteView rest) {
                seen += "<" + std::string(base::AsString(rest)) + ">";
                return rest.size();
              },
              nullptr);
          return end + 1;
        },
        nullptr);
  });
  ASSERT_TRUE(listener.has_value());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_storage address;
  socklen_t length = (*listener)->local_address().ToSockaddr(&address);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::write(fd, "UPGRADE\nframes", 14), 14);
  EXPECT_TRUE(RunUntil(*loop, [&] { return seen == "[UPGRADE]<frames>"; })) << seen;
  ::close(fd);
}

TEST(StreamListenerTest, AFullBudgetRejectsTheExtraConnection) {
  Server server;
  StreamListenerOptions options;
  options.budget = std::make_shared<ConnectionBudget>(ConnectionBudgetOptions{.max_total = 1});
  StartEchoServer(server, options);
  ASSERT_TRUE(server.listener);
  LoopThread thread(*server.loop);
  thread.Start();
  const uint16_t port = server.listener->local_address().port();
  auto first = ConnectTo("127.0.0.1", port, Tcp());
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Send(Frame("one"), 5s));
  ASSERT_TRUE(first->ReceiveFrame(FrameLength, 5s).has_value());
  auto second = ConnectTo("127.0.0.1", port, Tcp());
  ASSERT_TRUE(second);
  (void)second->Send(Frame("two"), 5s);
  EXPECT_FALSE(second->ReceiveFrame(FrameLength, 5s).has_value());
  thread.Join();
  EXPECT_EQ(server.listener->rejected_count(), 1u);
  EXPECT_EQ(server.listener->connection_count(), 1u);
}

// A TCP connection to `to` from `source` (port chosen by the kernel).
int ConnectFrom(const char* source, const SocketAddress& to) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_storage address;
  socklen_t length = SocketAddress::ParseIp(source, 0)->ToSockaddr(&address);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  length = to.ToSockaddr(&address);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  return fd;
}

TEST(StreamListenerTest, ABudgetLimitsConnectionsPerClientAndInAll) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  auto process = std::make_shared<ConnectionBudget>(ConnectionBudgetOptions{.max_total = 3});
  StreamListenerOptions options;
  options.budget =
      std::make_shared<ConnectionBudget>(ConnectionBudgetOptions{.max_per_client = 2}, process);
  auto listener = StreamListener::Create(*loop, Loopback4(), options, nullptr, [](auto& c) {
    c.SetCallbacks([](StreamConnection&, ByteView data) { return data.size(); }, nullptr);
  });
  ASSERT_TRUE(listener.has_value());
  StreamListener& l = **listener;
  auto settle = [&](size_t held, uint64_t rejected) {
    return RunUntil(*loop,
                    [&] { return l.connection_count() == held && l.rejected_count() == rejected; });
  };
  int a1 = ConnectFrom("127.0.0.1", l.local_address());
  int a2 = ConnectFrom("127.0.0.1", l.local_address());
  EXPECT_TRUE(settle(2, 0));
  int a3 = ConnectFrom("127.0.0.1", l.local_address());  // a third from one client
  EXPECT_TRUE(settle(2, 1));
  char byte;
  EXPECT_EQ(::read(a3, &byte, 1), 0);  // closed at once
  int b1 = ConnectFrom("127.0.0.2", l.local_address());
  EXPECT_TRUE(settle(3, 1));
  int b2 = ConnectFrom("127.0.0.2", l.local_address());  // the process is full
  EXPECT_TRUE(settle(3, 2));
  EXPECT_EQ(process->held(), 3u);

  // A closed connection gives its place back.
  ::close(a1);
  EXPECT_TRUE(settle(2, 2));
  EXPECT_EQ(process->held(), 2u);
  int a4 = ConnectFrom("127.0.0.1", l.local_address());
  EXPECT_TRUE(settle(3, 2));

  // So does every connection the listener still holds when it goes.
  listener->reset();
  EXPECT_EQ(process->held(), 0u);
  EXPECT_EQ(options.budget->held(), 0u);
  EXPECT_EQ(options.budget->clients(), 0u);
  for (int fd : {a2, a3, a4, b1, b2}) {
    ::close(fd);
  }
}

TEST(StreamListenerTest, DestroyingTheListenerFreesOpenConnections) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  int closes = 0;
  auto listener = StreamListener::Create(*loop, Loopback4(), {}, nullptr, [&](StreamConnection& c) {
    c.SetCallbacks(nullptr, [&](StreamConnection&, CloseReason) { ++closes; });
  });
  ASSERT_TRUE(listener.has_value());
  int fds[3];
  sockaddr_storage address;
  socklen_t length = (*listener)->local_address().ToSockaddr(&address);
  for (int& fd : fds) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  }
  EXPECT_TRUE(RunUntil(*loop, [&] { return (*listener)->connection_count() == 3; }));
  listener->reset();
  EXPECT_EQ(closes, 0);  // no callbacks into an owner that is going away
  // libevent closes a freed bufferevent's socket from its finalizer, in the
  // next loop iteration.
  auto all_readable = [&] {
    for (int fd : fds) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) != 1) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(RunUntil(*loop, all_readable));
  for (int fd : fds) {
    char byte;
    EXPECT_EQ(::read(fd, &byte, 1), 0);  // the server side is closed
    ::close(fd);
  }
}

// A server whose connections hold their first frame: the data callback
// pauses reading and watches for the peer's close instead of answering (a
// held long poll); later frames are echoed. Parameter: TLS or plain TCP.
class PausedConnectionTest : public ::testing::TestWithParam<bool> {
 protected:
  // Starts the server, connects, and returns the client once the server
  // holds the frame it sent (null on failure).
  std::unique_ptr<BlockingClient> ConnectAndHold() {
    const bool tls = GetParam();
    std::shared_ptr<TlsContext> context;
    BlockingClientOptions options = Tcp();
    if (tls) {
      auto created = TlsContext::CreateServer(cert_.cert_path(), cert_.key_path());
      EXPECT_TRUE(created.has_value()) << created.error().message;
      if (!created) {
        return nullptr;
      }
      context = *created;
      options.transport = Transport::kTls;
      options.verify_peer = false;
    }
    server_.loop = MakeLoop();
    auto listener = StreamListener::Create(
        *server_.loop, Loopback4(), {}, std::move(context), [this](StreamConnection& c) {
          c.SetCallbacks(
              [this](StreamConnection& conn, ByteView data) { return OnData(conn, data); },
              [this](StreamConnection&, CloseReason reason) { server_.closed.set_value(reason); });
        });
    EXPECT_TRUE(listener.has_value()) << listener.error().message;
    if (!listener) {
      return nullptr;
    }
    server_.listener = std::move(*listener);
    thread_ = std::make_unique<LoopThread>(*server_.loop);
    thread_->Start();
    auto client = ConnectTo("127.0.0.1", server_.listener->local_address().port(), options);
    if (!client || !client->Send(Frame("held"), 5s) ||
        !Eventually([this] { return held_.load() != nullptr; })) {
      ADD_FAILURE() << "the server did not hold the first frame";
      return nullptr;
    }
    return client;
  }

  size_t OnData(StreamConnection& connection, ByteView data) {
    if (held_.load() != nullptr) {
      ++server_.data_calls;
      return EchoOneFrame(connection, data);
    }
    auto length = FrameLength(data);
    if (!length || *length == 0) {
      return 0;
    }
    connection.PauseReading();
    connection.WatchForPeerClose();
    held_.store(&connection);
    return *length;
  }

  TestCertificate cert_;
  Server server_;  // data_calls counts the frames after the held one
  std::atomic<StreamConnection*> held_{nullptr};
  std::unique_ptr<LoopThread> thread_;  // joined before the server goes
};

TEST_P(PausedConnectionTest, WatchingWhilePausedReportsThePeerClosing) {
  auto client = ConnectAndHold();
  ASSERT_TRUE(client);
  client.reset();
  EXPECT_EQ(WaitClosed(server_), CloseReason::kPeerClosed);
}

TEST_P(PausedConnectionTest, InputWhileWatchingWaitsForResume) {
  auto client = ConnectAndHold();
  ASSERT_TRUE(client);
  // A pipelined frame is not delivered while paused...
  ASSERT_TRUE(client->Send(Frame("next"), 5s));
  EXPECT_FALSE(client->ReceiveFrame(FrameLength, 200ms).has_value());
  EXPECT_EQ(server_.data_calls.load(), 0);
  // ...and is once reading resumes.
  server_.loop->Post([this] { held_.load()->ResumeReading(); });
  auto echo = client->ReceiveFrame(FrameLength, 5s);
  ASSERT_TRUE(echo.has_value()) << echo.error().message;
  EXPECT_EQ(Payload(*echo), "next");
  client.reset();
  EXPECT_EQ(WaitClosed(server_), CloseReason::kPeerClosed);
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, PausedConnectionTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tls" : "Tcp"; });

TEST(StreamListenerTest, ReusePortLetsTwoListenersShareAPort) {
  auto loop = MakeLoop();
  ASSERT_TRUE(loop);
  StreamListenerOptions options;
  options.reuse_port = true;
  auto a = StreamListener::Create(*loop, Loopback4(), options, nullptr, [](auto&) {});
  ASSERT_TRUE(a.has_value());
  auto b = StreamListener::Create(*loop, (*a)->local_address(), options, nullptr, [](auto&) {});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  auto c = StreamListener::Create(*loop, (*a)->local_address(), {}, nullptr, [](auto&) {});
  EXPECT_FALSE(c.has_value());
}

}  // namespace
}  // namespace turnkey::net
