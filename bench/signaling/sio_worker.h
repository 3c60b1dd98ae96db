// SioWorker: one load-generator thread. It opens its share of the Socket.IO
// connections (a bounded number in the handshake at once), keeps them alive
// (the clients answer pings), and in the call modes runs a CallDriver over
// them. Raw sockets and epoll; no event library on the measuring side.
//
// Control: the main thread sets `control.target_connections` and
// `control.phase` (any time, atomically); the worker polls them at least
// every 5 ms and publishes its progress in the other `control` fields. After
// the phase is kStop, Run() closes every connection and returns; then (and
// only then) the main thread may read driver() and first_error().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/status.h"
#include "bench/signaling/call_driver.h"
#include "bench/signaling/sio_client.h"
#include "bench/udp_util.h"

namespace turnkey::bench {

// A user the load generator connects as.
struct BenchUser {
  std::string id;
  std::string token;  // access token for the CONNECT auth payload
};

struct WorkerOptions {
  base::SocketAddress server;
  std::string host;  // Host header
  std::string path = "/socket.io/";
  // IPv4 servers: connections come from 127.0.0.1 .. 127.0.0.<bind_ips>, so
  // many connections (and their TIME_WAITs) do not exhaust one address's ports.
  size_t bind_ips = 16;
  // Connections in the handshake at once.
  size_t pipeline = 256;
};

// Shared between the main thread and one worker.
struct WorkerControl {
  std::atomic<size_t> target_connections{0};
  std::atomic<int> phase{static_cast<int>(RunPhase::kConnect)};
  // Published by the worker.
  std::atomic<size_t> ready{0};   // connections that joined the namespace
  std::atomic<size_t> failed{0};  // connections that never did
  std::atomic<size_t> lost{0};    // ready connections that closed before kStop
  std::atomic<int64_t> last_ready_ns{0};
  std::atomic<size_t> in_flight{0};    // calls
  std::atomic<uint64_t> completed{0};  // calls done while measuring
};

class SioWorker final : public SioClientHandler {
 public:
  // `users` is shared by all workers; `local_users[i]` is the index in it of
  // this worker's user i, and `connections[j]` the local user of connection
  // j (opened in this order). `driver` (null in the idle mode) works on
  // local user indexes. `control` must outlive the worker.
  static base::Result<std::unique_ptr<SioWorker>> Create(
      WorkerOptions options, std::shared_ptr<const std::vector<BenchUser>> users,
      std::vector<size_t> local_users, std::vector<size_t> connections,
      std::unique_ptr<CallDriver> driver, WorkerControl& control);
  ~SioWorker() override;
  SioWorker(const SioWorker&) = delete;
  SioWorker& operator=(const SioWorker&) = delete;

  // The thread body: runs until control.phase is kStop.
  void Run();

  const CallDriver* driver() const { return driver_.get(); }
  const std::string& first_error() const { return first_error_; }
  const std::string& first_loss() const { return first_loss_; }

  // SioClientHandler
  void OnReady(SioClient& client) override;
  void OnEvent(SioClient& client, std::string_view event, std::string_view packet) override;
  void OnAck(SioClient& client, uint64_t ack_id, std::string_view packet) override;
  void OnClosed(SioClient& client, std::string_view why) override;

 private:
  SioWorker(WorkerOptions options, std::shared_ptr<const std::vector<BenchUser>> users,
            std::vector<size_t> local_users, std::vector<size_t> connections,
            std::unique_ptr<CallDriver> driver, WorkerControl& control, UniqueFd epoll);
  void OpenConnections();
  bool OpenOne(size_t index);
  void UpdateInterest(SioClient& client);
  void FlushDirty();

  WorkerOptions options_;
  std::shared_ptr<const std::vector<BenchUser>> users_;
  std::vector<size_t> local_users_;
  std::vector<size_t> connections_;
  std::unique_ptr<CallDriver> driver_;
  WorkerControl& control_;
  UniqueFd epoll_;
  std::vector<std::unique_ptr<SioClient>> clients_;
  std::vector<SioClient*> dirty_;
  size_t handshaking_ = 0;
  size_t failed_open_ = 0;  // connections that failed before they had a client
  size_t ready_ = 0;
  size_t failed_ = 0;
  size_t lost_ = 0;
  RunPhase phase_ = RunPhase::kConnect;
  bool stopping_ = false;
  std::string first_error_;
  std::string first_loss_;
};

}  // namespace turnkey::bench
