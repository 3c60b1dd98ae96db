#include "tests/signal/sio_test_client.h"

#include <algorithm>
#include <charconv>

namespace turnkey::signal::testing {

std::unique_ptr<SioTestClient> SioTestClient::Open(uint16_t port) {
  auto raw = RawClient::Connect(port);
  if (raw == nullptr) {
    return nullptr;
  }
  auto reply = raw->Upgrade("/socket.io/?EIO=4&transport=websocket");
  if (!reply || reply->status != 101) {
    return nullptr;
  }
  auto open = raw->ReadMessage();
  if (!open || !open->payload.starts_with("0{")) {
    return nullptr;
  }
  return std::unique_ptr<SioTestClient>(new SioTestClient(std::move(raw)));
}

std::optional<std::string> SioTestClient::Connect(const Json& auth,
                                                  std::chrono::milliseconds timeout) {
  if (!raw_->SendText("40" + auth.dump())) {
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (connect_answers_.empty()) {
    if (!Pump(deadline)) {
      return std::nullopt;
    }
  }
  std::string answer = std::move(connect_answers_.front());
  connect_answers_.pop_front();
  return answer;
}

uint64_t SioTestClient::Emit(std::string_view event, const Json& payload) {
  const uint64_t id = next_ack_++;
  Json packet = Json::array({event, payload});
  raw_->SendText("42" + std::to_string(id) + packet.dump());
  return id;
}

std::optional<Json> SioTestClient::WaitAck(uint64_t id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto it = acks_.find(id); it != acks_.end()) {
      Json answer = std::move(it->second);
      acks_.erase(it);
      return answer;
    }
    if (!Pump(deadline)) {
      return std::nullopt;
    }
  }
}

std::optional<Json> SioTestClient::WaitEvent(std::string_view event,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto it = std::find_if(events_.begin(), events_.end(),
                           [&](const auto& e) { return e.first == event; });
    if (it != events_.end()) {
      Json payload = std::move(it->second);
      events_.erase(it);
      return payload;
    }
    if (!Pump(deadline)) {
      return std::nullopt;
    }
  }
}

bool SioTestClient::HasEvent(std::string_view event) const {
  return std::any_of(events_.begin(), events_.end(),
                     [&](const auto& e) { return e.first == event; });
}

bool SioTestClient::WaitDisconnected(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!disconnected_) {
    if (!Pump(deadline)) {
      return disconnected_;
    }
  }
  return true;
}

bool SioTestClient::Pump(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) {
    return false;
  }
  auto message = raw_->ReadMessage(left);
  if (!message || message->opcode == 8) {
    if (message) {
      // RFC 6455 section 5.5.1: answer the close with the same status code.
      raw_->SendFrame(8, message->payload.substr(0, 2));
    }
    disconnected_ = true;
    return false;
  }
  const std::string& text = message->payload;
  if (text == "2") {
    raw_->SendText("3");
    return true;
  }
  if (text.size() < 2 || text[0] != '4') {
    return true;
  }
  const char type = text[1];
  if (type == '0' || type == '4') {
    connect_answers_.push_back(text);
    return true;
  }
  if (type == '1') {
    disconnected_ = true;
    return true;
  }
  size_t pos = 2;
  uint64_t id = 0;
  const bool has_id = pos < text.size() && text[pos] >= '0' && text[pos] <= '9';
  if (has_id) {
    auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), id);
    pos = static_cast<size_t>(end - text.data());
  }
  Json args = Json::parse(text.substr(pos), nullptr, /*allow_exceptions=*/false);
  if (!args.is_array()) {
    return true;
  }
  if (type == '2' && !args.empty() && args[0].is_string()) {
    events_.emplace_back(args[0].get<std::string>(), args.size() > 1 ? args[1] : Json());
  } else if (type == '3' && has_id) {
    acks_[id] = args.empty() ? Json() : args[0];
  }
  return true;
}

}  // namespace turnkey::signal::testing
