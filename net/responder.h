// Responder: the handle an HttpServer handler uses to answer its request,
// now or later.
//
// A handler gets one Responder per request. It may answer at once or move
// the Responder into a callback that runs later on the loop thread (e.g. a
// WorkQueue done callback), then call Respond() there. Responses on one
// connection go out strictly in request order: the server reads no further
// request from that connection until this one is answered.
//
// If the connection died meanwhile (peer gone, server stopped or
// destroyed), Respond() and TakeOver() do nothing; is_pending() tells.
// A Responder destroyed without an answer answers 500, so a lost callback
// never leaves a client hanging.
//
// Threads: Respond(), TakeOver() and is_pending() on the server's loop
// thread only. The destructor may run on any thread (a dropped WorkQueue job
// may hold one); off the loop thread it posts its 500 to the loop, so the
// loop must outlive every Responder: shut a WorkQueue down before destroying
// the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "net/http_response.h"
#include "net/stream_connection.h"

namespace turnkey::net {

class EventLoop;
class HttpConnection;

class Responder {
 public:
  // An empty responder: every call is a no-op.
  Responder() = default;
  ~Responder();
  Responder(Responder&& other) noexcept;
  // Answers the request this responder held with 500 if it was pending.
  Responder& operator=(Responder&& other) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // Sends `response`. The server adds Date, Content-Length and Connection,
  // drops the body for HEAD, and closes the connection afterwards when the
  // request or the response said "Connection: close", the client was
  // HTTP/1.0 without keep-alive, the request was an upgrade that was not
  // taken over, or the server is stopping. A 1xx status is replaced by 500
  // (use TakeOver for 101). Later calls are no-ops.
  void Respond(HttpResponse response);

  // True until this request is answered or its connection is gone.
  bool is_pending() const;

  // For a request held open until something happens (long polling): runs
  // `on_lost` from a loop callback if the client's connection closes while
  // this request is still pending. The server watches the idle connection
  // for that. A request the client pipelines behind this one ends the watch
  // on plain TCP (the close can no longer be seen without reading). Answering
  // or handing over the request drops `on_lost` unrun. No-op unless pending.
  void OnConnectionLost(std::function<void()> on_lost);

  // Runs `on_answer` with the status the request is answered with: what
  // Respond() sends (a bad status as the 500 it becomes), or 101 when
  // TakeOver() succeeds; not when the connection is already gone, nor for
  // the 500 of an abandoned responder. A later call replaces the observer.
  // For counting answers. Loop thread.
  void OnAnswer(std::function<void(int status)> on_answer) { on_answer_ = std::move(on_answer); }

  // For a request with `upgrade` set: hands the connection over to another
  // protocol (e.g. WebSocketSession::Create) and returns it. The caller
  // writes the 101 Switching Protocols answer itself, or passes it here as
  // `response` (serialized as is, Date added, no Content-Length).
  //
  // Handover rules:
  //  - The server forgets the connection: it installs no-op callbacks,
  //    stops its timers, never reads, writes or closes it again, and no
  //    longer counts it in http_connection_count().
  //  - The caller must install its own callbacks (SetCallbacks) before
  //    returning to the loop. The server resumes reading; the bytes the
  //    client sent after the request head are still buffered and go to the
  //    new data callback first.
  //  - No idle timeout runs on the connection (HttpServer keeps the
  //    StreamConnection's own idle_timeout at 0); set one with
  //    SetIdleTimeout if the protocol wants it. max_input_bytes still
  //    applies (HttpServerOptions::listener).
  //  - The StreamConnection stays owned by the server's listener. It lives
  //    until its (new) close callback has run; the new owner ends it with
  //    Close()/Abort(). HttpServer::CloseAll() closes it too (the owner's
  //    close callback runs later). Destroying the HttpServer destroys it
  //    without any callback, so owners must close it (or see it closed)
  //    before the server is destroyed.
  //
  // Returns null, leaving the responder pending, when the request was not an
  // upgrade, the connection is gone, the server is stopping, or the request
  // was already answered.
  StreamConnection* TakeOver();
  StreamConnection* TakeOver(const HttpResponse& response);

 private:
  friend class HttpConnection;

  Responder(EventLoop& loop, std::weak_ptr<HttpConnection> connection, uint64_t sequence)
      : loop_(&loop), connection_(std::move(connection)), sequence_(sequence) {}
  // Answers 500 if still pending, then empties this responder.
  void Abandon() noexcept;
  StreamConnection* TakeOverWith(const HttpResponse* response);

  EventLoop* loop_ = nullptr;
  std::weak_ptr<HttpConnection> connection_;
  uint64_t sequence_ = 0;  // which request of the connection this answers
  std::function<void(int status)> on_answer_;
};

}  // namespace turnkey::net
