#include "relay/relay_service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "base/bytes.h"
#include "base/cidr.h"
#include "net/socket_util.h"
#include "net/tls_context.h"
#include "stun/attributes.h"
#include "stun/integrity.h"
#include "stun/message.h"
#include "stun/message_builder.h"
#include "tests/net/net_test_util.h"

namespace turnkey::relay {
namespace {

const base::SocketAddress kLoopbackAnyPort = *base::SocketAddress::ParseIp("127.0.0.1", 0);

RelayServiceOptions OptionsFor(ClientTransport transport, const base::SocketAddress& address) {
  RelayServiceOptions options;
  options.threads = 2;
  options.worker.listeners.push_back(ListenerSpec{transport, address});
  return options;
}

// Relays on 127.0.0.1 for one static user, "carol" with password "pw";
// returns the realm.
std::string RelayOnLoopbackForCarol(RelayServiceOptions& options) {
  options.worker.server.relay[0] = RelayAddress{kLoopbackAnyPort, kLoopbackAnyPort};
  const std::string realm = options.worker.server.auth.realm;
  options.worker.server.auth.static_users = {
      StaticUserKey{"carol", stun::LongTermKeyMd5("carol", realm, "pw"), {}}};
  return realm;
}

// Writes into `out` a `method` request from carol (USERNAME, REALM, NONCE and
// MESSAGE-INTEGRITY of her password) with what `add` puts in first.
void RequestFromCarol(base::Bytes& out, stun::Method method, uint8_t id, const std::string& realm,
                      const std::string& nonce,
                      const std::function<void(stun::MessageBuilder&)>& add) {
  out.clear();
  stun::MessageBuilder request(out, method, stun::MessageClass::kRequest, stun::TransactionId{id});
  add(request);
  request.AddUsername("carol");
  request.AddRealm(realm);
  request.AddNonce(nonce);
  request.AddMessageIntegrity(stun::LongTermKeyMd5("carol", realm, "pw"));
}

// Another process's socket on a port, as a second turnkey would hold it:
// bound with SO_REUSEPORT (and listening, for TCP).
net::ScopedFd HoldPort(int type) {
  net::BindOptions options;
  options.reuse_port = true;
  auto fd = net::CreateBoundSocket(kLoopbackAnyPort, type, options);
  EXPECT_TRUE(fd.has_value());
  if (!fd) {
    return net::ScopedFd();
  }
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(fd->get(), 8), 0);
  }
  return std::move(*fd);
}

TEST(RelayServiceTest, RefusesAPortAnotherProcessHoldsWithReusePort) {
  for (auto [transport, type] : {std::pair{ClientTransport::kUdp, SOCK_DGRAM},
                                 std::pair{ClientTransport::kTcp, SOCK_STREAM}}) {
    SCOPED_TRACE(ClientTransportName(transport));
    net::ScopedFd held = HoldPort(type);
    ASSERT_TRUE(held.valid());
    auto address = net::LocalAddressOf(held.get());
    ASSERT_TRUE(address.has_value());
    auto service = RelayService::Create(OptionsFor(transport, *address), nullptr);
    ASSERT_FALSE(service.has_value());
    EXPECT_EQ(service.error().code, base::ErrorCode::kAlreadyExists);
    EXPECT_NE(service.error().message.find("in use by another process"), std::string::npos)
        << service.error().message;
  }
}

TEST(RelayServiceTest, WorkersShareTheirOwnPort) {
  auto service = RelayService::Create(OptionsFor(ClientTransport::kUdp, kLoopbackAnyPort), nullptr);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  ASSERT_EQ((*service)->worker_count(), 2u);
  const auto bound = (*service)->local_addresses();
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_NE(bound[0].port(), 0);
  // The same configuration again (a second process) is refused.
  auto second = RelayService::Create(OptionsFor(ClientTransport::kUdp, bound[0]), nullptr);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, base::ErrorCode::kAlreadyExists);
}

// A blocking IPv4 socket of `type`, connected (or bound) to `address`,
// whose reads give up after 5 s.
int OpenTestSocket(int type, const base::SocketAddress& address, bool connect) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_storage storage{};
  const socklen_t length = address.ToSockaddr(&storage);
  const auto* name = reinterpret_cast<const sockaddr*>(&storage);
  EXPECT_EQ(connect ? ::connect(fd, name, length) : ::bind(fd, name, length), 0);
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// A blocking TCP client with a receive timeout.
class TcpClient {
 public:
  explicit TcpClient(const base::SocketAddress& server)
      : fd_(OpenTestSocket(SOCK_STREAM, server, /*connect=*/true)) {}
  ~TcpClient() { ::close(fd_); }
  void Send(const base::Bytes& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // One STUN message (20-byte header, then its length); nullopt on close.
  std::optional<base::Bytes> ReadMessage() {
    base::Bytes header(20);
    if (!ReadExactly(header.data(), header.size())) {
      return std::nullopt;
    }
    base::Bytes message = header;
    message.resize(20 + base::LoadBe16(header.data() + 2));
    if (!ReadExactly(message.data() + 20, message.size() - 20)) {
      return std::nullopt;
    }
    return message;
  }
  // True when the server closed the connection (EOF, or a reset when it
  // closed with input unread), false on a timeout or when bytes came.
  bool ClosedByServer() {
    uint8_t byte;
    const ssize_t n = ::recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
  // True while the connection is open with nothing to read (no EOF).
  bool OpenNow() {
    uint8_t byte;
    return ::recv(fd_, &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
  }
  // Sends one byte at a time, `gap` apart, ignoring a closed connection.
  void Trickle(const base::Bytes& bytes, std::chrono::milliseconds gap) {
    for (uint8_t byte : bytes) {
      (void)::send(fd_, &byte, 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(gap);
    }
  }

 private:
  bool ReadExactly(uint8_t* out, size_t size) {
    while (size > 0) {
      ssize_t n = ::recv(fd_, out, size, 0);
      if (n <= 0) {
        return false;
      }
      out += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }
  int fd_ = -1;
};

// A blocking UDP client bound to 127.0.0.1 with a receive timeout, which
// tells where each answer came from.
class UdpClient {
 public:
  UdpClient() : fd_(OpenTestSocket(SOCK_DGRAM, kLoopbackAnyPort, /*connect=*/false)) {}
  ~UdpClient() { ::close(fd_); }
  void SendTo(const base::SocketAddress& to, const base::Bytes& bytes) {
    sockaddr_storage storage{};
    socklen_t length = to.ToSockaddr(&storage);
    ASSERT_EQ(
        ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&storage), length),
        static_cast<ssize_t>(bytes.size()));
  }
  base::SocketAddress local_address() const {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length);
    return *base::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
  }
  // The next datagram's bytes, whatever they are; nullopt after the timeout.
  std::optional<base::Bytes> ReceiveBytes() {
    const ssize_t n = ::recv(fd_, buffer_, sizeof(buffer_), 0);
    if (n <= 0) {
      return std::nullopt;
    }
    return base::Bytes(buffer_, buffer_ + n);
  }
  // The next datagram and its source; nullopt after the timeout.
  // The message views the client's buffer: valid until the next Receive.
  std::optional<std::pair<stun::Message, base::SocketAddress>> Receive() {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    const ssize_t n = ::recvfrom(fd_, buffer_, sizeof(buffer_), 0,
                                 reinterpret_cast<sockaddr*>(&storage), &length);
    if (n <= 0) {
      return std::nullopt;
    }
    auto message = stun::Message::Decode(base::ByteView(buffer_, static_cast<size_t>(n)));
    auto from = base::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
    if (!message || !from) {
      return std::nullopt;
    }
    return std::pair{std::move(*message), *from};
  }

 private:
  int fd_ = -1;
  uint8_t buffer_[2048];
};

TEST(RelayServiceTest, AWildcardUdpListenerAnswersFromTheAddressTheClientWroteTo) {
  // On a host with several addresses a client (or its NAT) drops answers
  // from another address than the one it wrote to; the allocation's 5-tuple
  // names that address (RFC 8656 section 2). 127.0.0.2 and 127.0.0.3 stand
  // for a host's second and third address; the kernel's own choice toward
  // this client would be 127.0.0.1.
  RelayServiceOptions options =
      OptionsFor(ClientTransport::kUdp, *base::SocketAddress::ParseIp("0.0.0.0", 0));
  const std::string realm = RelayOnLoopbackForCarol(options);
  auto service = RelayService::Create(options, nullptr);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  (*service)->Start();
  const uint16_t port = (*service)->local_addresses().at(0).port();
  const base::SocketAddress second = *base::SocketAddress::ParseIp("127.0.0.2", port);
  const base::SocketAddress third = *base::SocketAddress::ParseIp("127.0.0.3", port);

  UdpClient client;
  base::Bytes out;
  stun::MessageBuilder challenge(out, stun::Method::kAllocate, stun::MessageClass::kRequest,
                                 stun::TransactionId{1});
  challenge.AddRequestedTransport(stun::kTransportUdp);
  client.SendTo(second, out);
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value()) << "no answer from 127.0.0.2";
  EXPECT_EQ(reply->second, second);
  EXPECT_EQ(reply->first.message_class(), stun::MessageClass::kErrorResponse);
  auto nonce = stun::DecodeNonce(*reply->first.FindValue(stun::AttributeType::kNonce));
  ASSERT_TRUE(nonce.has_value());

  out.clear();
  stun::MessageBuilder allocate(out, stun::Method::kAllocate, stun::MessageClass::kRequest,
                                stun::TransactionId{2});
  allocate.AddRequestedTransport(stun::kTransportUdp);
  allocate.AddUsername("carol");
  allocate.AddRealm(realm);
  allocate.AddNonce(std::string(*nonce));
  allocate.AddMessageIntegrity(stun::LongTermKeyMd5("carol", realm, "pw"));
  client.SendTo(second, out);
  reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->second, second);
  EXPECT_EQ(reply->first.message_class(), stun::MessageClass::kSuccessResponse);

  // The same client through the third address: another 5-tuple, answered
  // from there (a Binding; an Allocate there would be a second allocation).
  out.clear();
  stun::MessageBuilder binding(out, stun::Method::kBinding, stun::MessageClass::kRequest,
                               stun::TransactionId{3});
  client.SendTo(third, out);
  reply = client.Receive();
  ASSERT_TRUE(reply.has_value()) << "no answer from 127.0.0.3";
  EXPECT_EQ(reply->second, third);
  EXPECT_EQ(reply->first.message_class(), stun::MessageClass::kSuccessResponse);
  (*service)->Stop();
}

TEST(RelayServiceTest, StreamsWithoutAnAllocationAreClosedAfterTheSetupTimeout) {
  RelayServiceOptions options = OptionsFor(ClientTransport::kTcp, kLoopbackAnyPort);
  options.threads = 1;
  // Long enough for the third client's 401 and authenticated Allocate under
  // ASan on a loaded machine (300 ms was the only sub-second deadline a
  // flaky-test audit found in the unit tests).
  options.worker.stream_setup_timeout = std::chrono::milliseconds(1000);
  // Shorter than the allocation's lifetime: an allocated connection is not
  // closed for idling before its allocation could end (below).
  options.worker.stream_idle_timeout = std::chrono::seconds(1);
  const std::string realm = RelayOnLoopbackForCarol(options);
  auto service = RelayService::Create(options, nullptr);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  (*service)->Start();
  const base::SocketAddress server = (*service)->local_addresses().at(0);

  // Silent, or a Binding only: closed after the setup timeout.
  TcpClient silent(server);
  EXPECT_TRUE(silent.ClosedByServer());  // false when its 5 s receive timeout runs out

  // Sending a byte more often than the timeout does not keep a connection
  // without an allocation open: the timeout counts from the accept. (A
  // Binding sent one byte per 100 ms takes 2 s; it would be answered.)
  TcpClient trickler(server);
  base::Bytes trickled;
  stun::MessageBuilder slow(trickled, stun::Method::kBinding, stun::MessageClass::kRequest,
                            stun::TransactionId{9});
  trickler.Trickle(trickled, std::chrono::milliseconds(100));
  EXPECT_TRUE(trickler.ClosedByServer()) << "a trickled Binding was answered";

  // Allocated: the setup timeout no longer applies.
  TcpClient client(server);
  base::Bytes out;
  stun::MessageBuilder challenge(out, stun::Method::kAllocate, stun::MessageClass::kRequest,
                                 stun::TransactionId{1});
  challenge.AddRequestedTransport(stun::kTransportUdp);
  client.Send(out);
  auto reply = client.ReadMessage();
  ASSERT_TRUE(reply.has_value());
  auto decoded = stun::Message::Decode(*reply);
  ASSERT_TRUE(decoded.has_value());
  auto nonce = stun::DecodeNonce(*decoded->FindValue(stun::AttributeType::kNonce));
  ASSERT_TRUE(nonce.has_value());
  const std::string nonce_text(*nonce);
  // Sends an authenticated `method` request (with what `add` puts in) and
  // returns the class of its answer.
  const auto authenticated = [&](stun::Method method, uint8_t id,
                                 const std::function<void(stun::MessageBuilder&)>& add)
      -> std::optional<stun::MessageClass> {
    RequestFromCarol(out, method, id, realm, nonce_text, add);
    client.Send(out);
    const auto answer = client.ReadMessage();
    if (!answer) {
      return std::nullopt;
    }
    const auto message = stun::Message::Decode(*answer);
    return message ? std::optional(message->message_class()) : std::nullopt;
  };
  EXPECT_EQ(
      authenticated(stun::Method::kAllocate, 2,
                    [](stun::MessageBuilder& b) { b.AddRequestedTransport(stun::kTransportUdp); }),
      stun::MessageClass::kSuccessResponse);
  // Past the setup timeout and the idle timeout: the allocation (granted
  // 10 min) still holds the connection open.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  out.clear();
  stun::MessageBuilder binding(out, stun::Method::kBinding, stun::MessageClass::kRequest,
                               stun::TransactionId{3});
  client.Send(out);
  EXPECT_TRUE(client.ReadMessage().has_value()) << "closed although it has an allocation";

  // Its allocation deleted (Refresh with LIFETIME 0), the connection is one
  // without an allocation again: closed after the setup timeout.
  EXPECT_EQ(
      authenticated(stun::Method::kRefresh, 4, [](stun::MessageBuilder& b) { b.AddLifetime(0); }),
      stun::MessageClass::kSuccessResponse);
  EXPECT_TRUE(client.ClosedByServer()) << "open after its allocation was deleted";
  (*service)->Stop();
}

TEST(RelayServiceTest, BeyondThePendingLimitTheOldestConnectionWithoutAnAllocationIsClosed) {
  RelayServiceOptions options = OptionsFor(ClientTransport::kTcp, kLoopbackAnyPort);
  options.threads = 1;
  options.worker.max_pending_streams = 2;
  options.worker.stream_setup_timeout = std::chrono::seconds(30);
  auto service = RelayService::Create(options, nullptr);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  (*service)->Start();
  const base::SocketAddress server = (*service)->local_addresses().at(0);
  // The listen queue hands them over in order; each one past the second
  // closes the oldest still open (the close callback runs later: the count
  // must not wait for it, or the fourth would find the first again).
  TcpClient first(server);
  TcpClient second(server);
  TcpClient third(server);
  TcpClient fourth(server);
  EXPECT_TRUE(first.ClosedByServer());
  EXPECT_TRUE(second.ClosedByServer());
  EXPECT_TRUE(third.OpenNow());
  EXPECT_TRUE(fourth.OpenNow());
  (*service)->Stop();
}

TEST(RelayServiceTest, AStreamThatIsNeitherStunNorAChannelOfItsOwnIsClosedAtOnce) {
  RelayServiceOptions options = OptionsFor(ClientTransport::kTcp, kLoopbackAnyPort);
  options.threads = 1;
  options.worker.stream_setup_timeout = std::chrono::seconds(30);
  auto service = RelayService::Create(options, nullptr);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  (*service)->Start();
  const base::SocketAddress server = (*service)->local_addresses().at(0);
  // An HTTP request starts with bits 01, as ChannelData does; a TLS
  // ClientHello with bits 00, as STUN does but without its cookie. Both are
  // closed well before the 30 s setup timeout (the client waits 5 s).
  for (const std::string& text : {std::string("GET / HTTP/1.1\r\nHost: turn\r\n\r\n"),
                                  std::string("\x16\x03\x01\x01\x2b\x01\x00\x01\x27", 9)}) {
    TcpClient client(server);
    client.Send(base::Bytes(text.begin(), text.end()));
    EXPECT_TRUE(client.ClosedByServer()) << text;
  }
  (*service)->Stop();
}

TEST(RelayServiceTest, ATurnClientOverDtlsAllocatesRelaysAndLosesItsAllocationWithTheAssociation) {
  net::testing::TestCertificate cert;
  auto tls = net::TlsContext::CreateServer(cert.cert_path(), cert.key_path());
  ASSERT_TRUE(tls.has_value()) << tls.error().message;
  RelayServiceOptions options = OptionsFor(ClientTransport::kDtls, kLoopbackAnyPort);
  options.threads = 1;
  options.worker.server.peers.allow = {*base::ParseCidr("127.0.0.1/32")};  // the peer below
  const std::string realm = RelayOnLoopbackForCarol(options);
  auto service = RelayService::Create(options, *tls);
  ASSERT_TRUE(service.has_value()) << service.error().message;
  (*service)->Start();
  net::testing::DtlsClient client((*service)->local_addresses().at(0));
  ASSERT_TRUE(client.Connect());

  base::Bytes out;
  // Sends `out` as one record and decodes the answer (kept in `answer`).
  std::optional<base::Bytes> answer;
  const auto exchange = [&]() -> std::optional<stun::Message> {
    if (!client.Write(out) || !(answer = client.Read())) {
      return std::nullopt;
    }
    auto message = stun::Message::Decode(*answer);
    return message ? std::optional(std::move(*message)) : std::nullopt;
  };
  stun::MessageBuilder challenge(out, stun::Method::kAllocate, stun::MessageClass::kRequest,
                                 stun::TransactionId{1});
  challenge.AddRequestedTransport(stun::kTransportUdp);
  auto reply = exchange();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->message_class(), stun::MessageClass::kErrorResponse);
  const std::string nonce(*stun::DecodeNonce(*reply->FindValue(stun::AttributeType::kNonce)));
  const auto authenticated = [&](stun::Method method, uint8_t id,
                                 const std::function<void(stun::MessageBuilder&)>& add) {
    RequestFromCarol(out, method, id, realm, nonce, add);
    return exchange();
  };
  reply = authenticated(stun::Method::kAllocate, 2, [](stun::MessageBuilder& b) {
    b.AddRequestedTransport(stun::kTransportUdp);
  });
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->message_class(), stun::MessageClass::kSuccessResponse);
  const auto relayed = stun::DecodeXorAddress(
      *reply->FindValue(stun::AttributeType::kXorRelayedAddress), reply->transaction_id());
  ASSERT_TRUE(relayed.has_value());

  UdpClient peer;
  const base::SocketAddress peer_address = peer.local_address();
  reply = authenticated(stun::Method::kCreatePermission, 3,
                        [&](stun::MessageBuilder& b) { b.AddXorPeerAddress(peer_address); });
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->message_class(), stun::MessageClass::kSuccessResponse);

  // A Send indication reaches the peer from the relayed address...
  out.clear();
  stun::MessageBuilder send(out, stun::Method::kSend, stun::MessageClass::kIndication,
                            stun::TransactionId{4});
  send.AddXorPeerAddress(peer_address);
  send.AddData(base::AsBytes("to the peer"));
  ASSERT_TRUE(client.Write(out));
  auto at_peer = peer.ReceiveBytes();
  ASSERT_TRUE(at_peer.has_value());
  EXPECT_EQ(std::string(at_peer->begin(), at_peer->end()), "to the peer");
  // ...and the peer's answer comes back over DTLS as a Data indication.
  peer.SendTo(*relayed, base::Bytes{'b', 'a', 'c', 'k'});
  answer = client.Read();
  ASSERT_TRUE(answer.has_value());
  auto data = stun::Message::Decode(*answer);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(data->method(), stun::Method::kData);
  const auto value = data->FindValue(stun::AttributeType::kData);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(std::string(value->begin(), value->end()), "back");

  // close_notify ends the association and with it the allocation.
  const TurnCounters& counters = (*service)->worker(0).counters();
  EXPECT_EQ(counters.allocations_active.Get(), 1u);
  client.Shutdown();
  for (int i = 0; i < 500 && counters.allocations_active.Get() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(counters.allocations_active.Get(), 0u);
  (*service)->Stop();
}

}  // namespace
}  // namespace turnkey::relay
