// StreamConnection: one accepted TCP or TLS connection on an EventLoop.
// Plain TCP does its own non-blocking I/O on the socket: a write goes out at
// once (a second buffer only holds what the kernel did not take), input is
// read into a per-thread buffer and only what the handler leaves unconsumed
// is kept, so an idle connection holds no buffers. TLS runs on a libevent
// OpenSSL bufferevent (with tls_record_per_write, its ciphertext is
// queued and sent as plain TCP's bytes are).
//
// Ownership: the StreamListener that accepted it owns it. The connection is
// usable from the accept callback until its close callback has returned;
// after that the listener destroys it with EventLoop::DeleteLater, never
// inside one of its own callbacks. Loop thread only.
//
// Reading: the data callback sees all buffered input as one contiguous view
// and returns how many bytes it consumed (a whole number of frames, or 0 to
// wait for more). While it consumes something and input remains, it is
// called again, so a handler that parses one frame per call is fine.
// Buffered input that stays above max_input_bytes closes the connection.
//
// Closing: Close() stops reading, sends what is queued, then closes;
// CloseLingering() also half-closes and reads and drops what the peer still
// sends for a while before closing; Abort() closes now and drops queued
// output. Either way, and when the peer closes,
// fails or idles out, the close callback runs exactly once, from a later
// loop callback (never from inside Close()/Abort()/Write()), so the caller
// may destroy its own per-connection state there.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "base/address.h"
#include "base/bytes.h"

struct bio_st;
struct bufferevent;
struct event;
struct ssl_st;

namespace turnkey::net {

class EventLoop;
class TlsContext;

// TLS with StreamConnectionOptions::tls_record_per_write: gives `ssl`, made
// for the accepted socket `fd`, the read and write BIOs that mode needs
// (before the bufferevent is made on it). False when out of memory.
bool UseRecordWriteBio(ssl_st* ssl, int fd);

struct StreamConnectionOptions {
  // Largest input the data callback may leave unconsumed; more closes the
  // connection with kReadLimit. Default 64 KiB.
  size_t max_input_bytes = 64 * 1024;
  // Largest output queued to a slow reader; more closes with kWriteLimit.
  // 0 = unlimited. Default 4 MiB.
  size_t max_output_bytes = 4 * 1024 * 1024;
  // No bytes received for this long (or queued output not moving) closes
  // with kIdleTimeout. Also bounds the TLS handshake. 0 = none. Default 0.
  std::chrono::milliseconds idle_timeout{0};
  // How long Close() waits for queued output to drain before giving up.
  // Default 5 s.
  std::chrono::milliseconds close_timeout{5000};
  // CloseLingering(): after the output is sent, the longest time to keep
  // reading and dropping the peer's input, and the most bytes to drop,
  // before closing. Default 2 s and 1 MiB (a body up to the HTTP server's
  // default limit).
  std::chrono::milliseconds linger_timeout{2000};
  size_t linger_bytes = 1024 * 1024;
  // TLS only: sent unencrypted when the handshake fails because the client
  // sent a plain HTTP request (OpenSSL's SSL_R_HTTP_REQUEST), before the
  // close; the request's bytes already received are read and dropped
  // first, so the close is a FIN the client reads the answer before, not a
  // reset. Must outlive the connection (a literal). Empty = just close.
  std::string_view plain_http_answer;
  // TLS only: each Write() goes out in TLS records of its own, never sharing
  // one with another Write()'s bytes. TURN over TLS sets it: some clients
  // (coturn's turnutils_uclient) take what one SSL_read returns, a record,
  // for one message and lose the rest of a record that holds several. The
  // records are made at Write() (once the handshake is done) and their
  // ciphertext is queued as plain TCP queues bytes, so the records of
  // writes made while corked still leave in one send(). Costs a record per
  // Write() where several would share one.
  bool tls_record_per_write = false;
};

enum class CloseReason {
  kPeerClosed,   // the peer closed its side (EOF)
  kError,        // a socket or TLS error (including a failed handshake)
  kIdleTimeout,  // idle_timeout passed without input, or output stalled
  kReadLimit,    // unconsumed input above max_input_bytes
  kWriteLimit,   // queued output above max_output_bytes
  kLocalClose,   // Close() or Abort() by our side, or the listener shutting down
};

// "peer_closed", "error", ... for logs and metrics labels.
const char* CloseReasonName(CloseReason reason);

class StreamConnection {
 public:
  // Returns bytes consumed from the front of `data` (0..data.size()). `data`
  // is valid only during the call.
  using DataCallback = std::function<size_t(StreamConnection& connection, base::ByteView data)>;
  using CloseCallback = std::function<void(StreamConnection& connection, CloseReason reason)>;

  ~StreamConnection();
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  // Installs the handlers; usually called from the accept callback. May be
  // called from inside the data callback (e.g. an HTTP handler handing the
  // connection to a WebSocket handler): the new data callback takes over
  // after the running one returns.
  void SetCallbacks(DataCallback on_data, CloseCallback on_close);

  // Sends bytes (or queues what the socket does not take now, or everything
  // while corked). Returns false if the connection is closing or closed (the
  // bytes are dropped).
  bool Write(base::ByteView data);
  // Write() of `parts` one after the other, as one write: on plain TCP with
  // nothing queued and no cork, one sendmsg of them all (no copy); over TLS,
  // one record run rather than one per part.
  bool Write(std::span<const base::ByteView> parts);
  // While corked, Write() only queues; the outermost Uncork() sends it all
  // with one system call (TLS: one bufferevent write, so one run of records;
  // with tls_record_per_write, a record per Write() in one send).
  // Nests. The data callback always runs corked, so
  // what a handler answers to one read leaves together.
  void Cork();
  void Uncork();
  // Graceful close: stop reading, flush queued output (bounded by
  // close_timeout), then close.
  void Close();
  // Close() for a peer that may still be sending, e.g. after an error
  // answer to a request whose rest was never read: closing a socket with
  // unread input makes the kernel send a reset, which can destroy the answer
  // before the peer reads it, or fail the peer's send before it reads at all
  // (RFC 9112 section 9.6). Once the output is sent this half-closes (the
  // peer sees the end of the answer), then reads and drops input until the
  // peer closes too, linger_bytes arrived or linger_timeout passed, and then
  // closes. The close callback runs after that. TLS sends its close_notify
  // before the half-close and drains decrypted input; should the alert not
  // fit into the socket at once, it closes as Close() does.
  void CloseLingering();
  // Immediate close; queued output is dropped.
  void Abort();

  // Stops / resumes delivering input (backpressure, e.g. while a work queue
  // handles the previous request). The idle timer does not run while paused.
  void PauseReading();
  void ResumeReading();
  // ResumeReading() once the queued output is all sent (at once if nothing
  // is queued): a peer that keeps sending requests but does not read the
  // answers gets no more of them. PauseReading and ResumeReading cancel it.
  void ResumeReadingOnceSent();
  // While paused, still notice the peer going away: the close callback then
  // runs (kPeerClosed, or kError on a reset) though no input is delivered.
  // For a request held open until something happens (long polling). Input
  // that arrives meanwhile is not delivered before ResumeReading; on plain
  // TCP it stays in the kernel and ends the watch (a close behind it cannot
  // be seen without reading it), over TLS it is buffered up to the input
  // limit. TLS watches only without an idle timeout (HttpServer's
  // connections have none): the idle timer does not run while paused.
  // No-op unless open and paused; PauseReading and ResumeReading end it.
  void WatchForPeerClose();

  // Replaces idle_timeout for this connection (e.g. longer once a WebSocket
  // is established). 0 = none.
  void SetIdleTimeout(std::chrono::milliseconds timeout);

  // True until Close()/Abort() or the connection ended.
  bool is_open() const { return state_ == State::kOpen; }
  bool is_tls() const { return tls_ != nullptr; }
  // A listener-unique id, handy as a map key for per-connection state.
  uint64_t id() const { return id_; }
  const base::SocketAddress& peer_address() const { return peer_address_; }
  const base::SocketAddress& local_address() const { return local_address_; }
  size_t input_size() const;
  size_t output_size() const;

 private:
  friend class StreamListener;
  friend struct RecordBio;

  enum class State {
    kOpen,       // reading and writing (TLS: possibly still handshaking)
    kClosing,    // Close() or CloseLingering() called: not reading, flushing output
    kLingering,  // CloseLingering(): all sent (TLS: close_notify too), half-closed; dropping input
    kClosed,     // finished; the close callback is pending or has run
  };
  struct EventDeleter {
    void operator()(event* ev) const;
  };

  // Plain TCP: `bev` is null and the connection owns the non-blocking socket
  // `fd`. TLS: it owns `bev`, made on `fd` with BEV_OPT_CLOSE_ON_FREE (so
  // the bufferevent owns the socket). Returns null only when out of memory;
  // `fd` or `bev` is then still the caller's.
  // `on_finished` runs after the close callback; the owner releases the
  // connection there.
  static std::unique_ptr<StreamConnection> Create(
      EventLoop& loop, int fd, bufferevent* bev, uint64_t id, std::shared_ptr<TlsContext> tls,
      const base::SocketAddress& peer, const StreamConnectionOptions& options,
      std::function<void(StreamConnection&)> on_finished);
  StreamConnection(EventLoop& loop, int fd, bufferevent* bev, uint64_t id);
  void Start();
  void SetState(State next);
  void Finish(CloseReason reason);
  // Offers `data` to the data callback until it stops consuming; returns the
  // bytes consumed.
  size_t Deliver(base::ByteView data);
  void ApplyTimeouts(std::chrono::milliseconds timeout);
  // TLS (bufferevent) side.
  void DeliverBufferedInput();
  static void OnRead(bufferevent* bev, void* arg) noexcept;
  static void OnWrite(bufferevent* bev, void* arg) noexcept;
  static void OnEvent(bufferevent* bev, short what, void* arg) noexcept;
  // Plain TCP side.
  void UpdateReadInterest();
  void ReadSome();
  // Paused and watching on plain TCP: the socket is readable; is it the
  // peer's close, or input to leave for later?
  void CheckPeerClosed();
  // Offers the kept input again (after ResumeReading).
  void DeliverKeptInput();
  // Closes with kReadLimit when more than max_input_bytes are kept unconsumed.
  void EnforceInputLimit();
  // Sends from the front of `data`; returns the bytes the socket took, or -1
  // after a socket error (the connection is finished then).
  ssize_t SendNow(base::ByteView data);
  // SendNow of `parts` one after the other (sendmsg); same answer. `total`
  // is the sum of their sizes.
  ssize_t SendNow(std::span<const base::ByteView> parts, size_t total);
  // Appends `parts` (`total` bytes) to output_, less their first `skip`
  // bytes (sent already), growing it at most once.
  void QueueOutput(std::span<const base::ByteView> parts, size_t total, size_t skip);
  // Finishes with kWriteLimit (and answers false) when more than
  // max_output_bytes are queued.
  bool CheckOutputLimit();
  // TLS with tls_record_per_write: encrypts `data` into records of its own
  // now (SSL_write through record_bio_, whose ciphertext joins output_), or
  // before the handshake is done, AddRecord. False on a TLS error or when
  // out of memory.
  bool WriteRecord(base::ByteView data);
  // Queues a copy of `data` as a chain of the bufferevent's output of its
  // own (libevent makes an SSL_write per chain). False when out of memory.
  bool AddRecord(base::ByteView data);
  // record_bio_'s write: ciphertext OpenSSL made joins output_; sent at
  // Uncork, or from the write event when it was made outside a cork
  // (libevent's handshake and write passes, SSL_read).
  void QueueCiphertext(base::ByteView data);
  // Sends what output_ queues (TLS with record_bio_: ciphertext) as far as
  // the socket takes it; true if it all went (the write event is then
  // stopped). False after a socket error too (the connection is finished).
  bool SendQueuedNow();
  // Bytes of output_ not sent yet.
  size_t queued() const { return output_.size() - output_offset_; }
  // Sends queued output; watches for writability while some remains.
  void FlushOutput();
  // Queued output is all sent: OutputDrained() when closing, or the resume
  // ResumeReadingOnceSent() waits for.
  void OutputSent();
  // Queued output is all sent after Close() or CloseLingering(): finish, or
  // half-close and start lingering.
  void OutputDrained();
  // Lingering: reads and drops what is there; finishes at the peer's end,
  // the byte budget or the deadline.
  void DropLingeringInput(bool timed_out);
  // Enters the lingering state with the whole byte budget and time.
  void BeginLinger();
  // Counts `dropped` bytes against the budget; the time left, or nothing
  // (and the connection finished) once the budget or the time is spent.
  std::optional<std::chrono::milliseconds> LingerLeft(size_t dropped);
  // TLS: sends close_notify and starts lingering (or finishes).
  void LingerTls();
  // TLS lingering: drops the decrypted input; finishes at the byte budget or
  // the deadline (the peer's end arrives through OnEvent).
  void DropLingeringTlsInput();
  void AddEvent(event* ev);
  // The write event, made on first use (aborts when out of memory, like new).
  event* WriteEvent();
  // Runs the close callback from a loop callback (its event made on first use).
  void ActivateFinish();
  static void OnReadable(int fd, short what, void* arg) noexcept;
  static void OnWritable(int fd, short what, void* arg) noexcept;
  static void OnFinished(int fd, short what, void* arg) noexcept;

  EventLoop& loop_;
  int fd_;            // plain TCP: owned; TLS: the bufferevent's socket (not owned)
  bufferevent* bev_;  // TLS: owned; freed in the destructor
  // TLS with tls_record_per_write: the SSL's write BIO (owned by the SSL),
  // which queues ciphertext in output_; null otherwise.
  bio_st* record_bio_ = nullptr;
  uint64_t id_;
  std::shared_ptr<TlsContext> tls_;  // null for plain TCP
  StreamConnectionOptions options_;
  base::SocketAddress peer_address_;
  base::SocketAddress local_address_;
  State state_ = State::kOpen;
  CloseReason close_reason_ = CloseReason::kLocalClose;
  bool reading_paused_ = false;
  bool resume_once_sent_ = false;  // ResumeReadingOnceSent() waits for the output
  bool watching_close_ = false;    // paused, but the read event stays on (WatchForPeerClose)
  bool in_data_callback_ = false;
  bool delivering_ = false;  // inside Deliver (its Uncork may resume reading)
  DataCallback on_data_;
  DataCallback next_on_data_;  // set from inside on_data_; installed after it returns
  bool has_next_on_data_ = false;
  CloseCallback on_close_;
  std::function<void(StreamConnection&)> on_finished_;
  std::unique_ptr<event, EventDeleter> finish_event_;
  // Plain TCP only, but for output_, cork_ (TLS gathers corked writes) and
  // the write event (TLS record_bio_'s ciphertext).
  std::unique_ptr<event, EventDeleter> read_event_;   // persistent; pending while reading
  std::unique_ptr<event, EventDeleter> write_event_;  // persistent; pending while output waits
  std::chrono::milliseconds timeout_{0};              // of both events (idle, or the close bound)
  base::Bytes input_;                                 // what the handler left unconsumed
  // Plain, and TLS with record_bio_: what the socket did not take yet (TLS:
  // ciphertext). Other TLS: corked writes, for one bufferevent write.
  base::Bytes output_;
  size_t output_offset_ = 0;  // sent bytes at the front of output_
  int cork_ = 0;
  bool redeliver_ = false;  // ResumeReading left kept input to offer
  // CloseLingering(): whether to linger once the output is sent; then the
  // bytes still to drop and when to stop.
  bool linger_ = false;
  size_t linger_left_ = 0;
  std::chrono::steady_clock::time_point linger_deadline_{};
};

}  // namespace turnkey::net
