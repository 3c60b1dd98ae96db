// HttpConnection: HttpServer's state for one accepted connection. Internal
// to HttpServer and Responder; nothing else uses it.
//
// Owned by HttpServer (shared_ptr so that Responders can hold a weak_ptr and
// notice when it is gone); destroyed with EventLoop::DeleteLater after the
// connection's close callback. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "net/http_request_parser.h"
#include "net/http_response.h"
#include "net/stream_connection.h"
#include "net/timer.h"

namespace turnkey::net {

class HttpServer;

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  enum class State {
    kReading,   // waiting for or receiving a request; idle/header timers run
    kHandling,  // a request is with the handler; input paused until it is answered
    kUpgraded,  // handed to another protocol; forgotten, about to be destroyed
    kClosing,   // Close() called on the stream; waiting for its close callback
    kClosed,    // the stream ended; this object is about to be destroyed
  };

  HttpConnection(HttpServer& server, StreamConnection& stream);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Installs the stream callbacks and starts the idle timer.
  void Start();

  // Responder entry points; `sequence` names the request being answered.
  // Sends `response` if `sequence` is pending; returns the status sent (a
  // bad one becomes 500), 0 when nothing was sent.
  int Respond(uint64_t sequence, HttpResponse response);
  bool IsPending(uint64_t sequence) const;
  // `response` may be null (the caller writes its own 101).
  StreamConnection* TakeOver(uint64_t sequence, const HttpResponse* response);
  // A Responder went away unanswered.
  void Abandon(uint64_t sequence);
  // Runs `on_lost` if the connection closes while `sequence` is pending.
  void WatchLost(uint64_t sequence, std::function<void()> on_lost);

  // HttpServer::Stop(): close now if idle, after the response if handling.
  void Shutdown();
  // HttpServer: too many connections have sent no request yet, and this is
  // the oldest of them. Closes it (no answer: it asked nothing).
  void Evict();

  State state() const { return state_; }

 private:
  // What the response to the request being handled must respect.
  struct Pending {
    bool head = false;       // HEAD: no body bytes
    bool keep_alive = true;  // the client wants to keep the connection
    bool upgrade = false;    // an upgrade request (close unless taken over)
    bool http10 = false;     // HTTP/1.0: keep-alive must be announced
  };

  void SetState(State next);
  size_t OnData(base::ByteView data);
  void OnClose(CloseReason reason);
  void OnIdleTimeout();
  void OnHeaderTimeout();
  void Dispatch(HttpRequest request);
  // Answers `status` and closes, lingering (parse errors, timeouts); `head`
  // (when the request's head was parsed) lets HttpServerOptions::error_response
  // shape the answer.
  void FailAndClose(int status, const HttpRequest* head = nullptr);
  void Write(const HttpResponse& response, bool head_only, bool close, bool keep_alive_header);
  // Closes the connection once the output is sent; `lingering` drops the
  // client's unread input first (StreamConnection::CloseLingering).
  void CloseStream(bool lingering = false);
  void ArmIdleTimer();

  HttpServer& server_;
  StreamConnection& stream_;
  HttpRequestParser parser_;
  Timer idle_timer_;
  Timer header_timer_;
  State state_ = State::kReading;
  uint64_t sequence_ = 0;  // requests dispatched so far; names the current one
  Pending pending_;
  bool close_after_response_ = false;  // set by Shutdown() while handling
  std::function<void()> on_lost_;      // WatchLost, for the request being handled
  // HttpServerOptions::on_body_pending was asked about the request being
  // read, and the token it gave (held while the body arrives).
  bool body_announced_ = false;
  std::shared_ptr<void> body_token_;
  // HttpServerOptions::body_limit of the request being read, once its head
  // is in: a body growing past it (chunked: no Content-Length to refuse
  // up front) is answered 413 as it arrives.
  uint64_t body_limit_ = UINT64_MAX;
};

}  // namespace turnkey::net
