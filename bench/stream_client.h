// StreamClient: the load generator's TCP or TLS connection to a TURN server
// (RFC 8656 s3.1 client transports; framing per RFC 8656 s12.5: STUN
// messages and ChannelData, the latter always padded to 4 bytes).
//
// Connect() is blocking (connect, then the TLS handshake) and leaves the
// socket non-blocking with TCP_NODELAY, so setup is simple and the data path
// never blocks. TLS does not verify the server's certificate: this is a bench
// on loopback against throwaway certificates.
//
// Writing: Write() appends to an output buffer and sends what the kernel
// takes at once; what it does not take stays queued for Flush(). Callers
// batch several frames into one Write() (one send / SSL_write per batch, the
// stream's counterpart of sendmmsg).
// Reading: Read() takes what the kernel holds and hands each whole frame
// (STUN or ChannelData, padding included) to a callback.
//
// One thread; no locking. Owns its socket and SSL object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/status.h"
#include "bench/udp_util.h"

struct ssl_ctx_st;
struct ssl_st;

namespace turnkey::bench {

enum class ClientTransportKind : uint8_t { kUdp, kTcp, kTls };

// "udp", "tcp" or "tls" -> kind; false for anything else.
bool ParseClientTransport(std::string_view text, ClientTransportKind* kind);
const char* ClientTransportText(ClientTransportKind kind);

// An OpenSSL client context with certificate checks off. Shared by every
// StreamClient of a run (read-only after creation).
class TlsClientContext {
 public:
  static base::Result<std::shared_ptr<TlsClientContext>> Create();
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ssl_ctx_st* get() const { return ctx_; }

 private:
  explicit TlsClientContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

class StreamClient {
 public:
  // A whole frame at the head of the input; valid only during the call.
  using FrameCallback = std::function<void(base::ByteView frame)>;

  // Connects from `bind` (port 0) to `server`; with `tls`, also completes
  // the TLS handshake. Gives up after `timeout_ms`.
  static base::Result<std::unique_ptr<StreamClient>> Connect(const base::SocketAddress& server,
                                                             const base::SocketAddress& bind,
                                                             std::shared_ptr<TlsClientContext> tls,
                                                             int timeout_ms);
  ~StreamClient();
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  int fd() const { return fd_.get(); }
  bool is_tls() const { return ssl_ != nullptr; }
  // False once the connection failed or the server closed it; error() says why.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Queues `data` and sends what the kernel takes now. False when the
  // connection has failed (the bytes are dropped).
  bool Write(const uint8_t* data, size_t size);
  // Sends queued output. False when the connection has failed.
  bool Flush();
  size_t pending_output() const { return out_.size() - out_sent_; }

  // Reads what is available (non-blocking) and calls `on_frame` for each
  // whole frame. False on EOF, error or a frame that cannot be framed.
  bool Read(const FrameCallback& on_frame);

 private:
  StreamClient(UniqueFd fd, ssl_st* ssl);
  // Sends from out_ until it is empty or the kernel stops taking bytes.
  bool SendQueued();
  // Hands whole frames in in_[in_start_, in_end_) to `on_frame`.
  bool DeliverFrames(const FrameCallback& on_frame);
  void SetError(std::string why);

  UniqueFd fd_;
  ssl_st* ssl_;  // owned; null for TCP
  std::string error_;
  std::vector<uint8_t> out_;
  size_t out_sent_ = 0;
  std::vector<uint8_t> in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;
};

}  // namespace turnkey::bench
