#include "config/duration.h"

#include <charconv>
#include <cstdint>
#include <limits>

namespace turnkey::config {
namespace {

constexpr std::string_view kExpected = "expected a number with unit ms, s, m, h or d";

struct Unit {
  std::string_view suffix;
  int64_t millis;
};

// Longest suffix first, so "ms" is not read as "m" followed by junk.
constexpr Unit kUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000},
};

base::Result<std::chrono::milliseconds> Bad(std::string_view text, std::string_view why) {
  std::string message = "bad duration \"";
  message.append(text);
  message.append("\" (");
  if (!why.empty()) {
    message.append(why);
    message.append("; ");
  }
  message.append(kExpected);
  message.append(")");
  return base::InvalidArgument(std::move(message));
}

}  // namespace

base::Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0) {
    if (!text.empty() && text.front() == '-') {
      return Bad(text, "must not be negative");
    }
    return Bad(text, "");
  }
  std::string_view suffix = text.substr(digits);
  if (suffix.empty() && text.find_first_not_of('0') == std::string_view::npos) {
    return std::chrono::milliseconds(0);  // zero needs no unit ("0 = off")
  }
  if (suffix.empty()) {
    return Bad(text, "missing unit");
  }
  const Unit* unit = nullptr;
  for (const Unit& u : kUnits) {
    if (suffix == u.suffix) {
      unit = &u;
      break;
    }
  }
  if (unit == nullptr) {
    return Bad(text, "");
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  const uint64_t limit = static_cast<uint64_t>(kMaxDuration.count() / unit->millis);
  if (ec != std::errc() || end != text.data() + digits || value > limit) {
    return Bad(text, "longer than 100 years");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(value) * unit->millis);
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms == 0) {
    return "0s";
  }
  // Walk from the largest unit down; the first that divides exactly wins.
  for (auto it = std::rbegin(kUnits); it != std::rend(kUnits); ++it) {
    if (ms % it->millis == 0) {
      std::string out = std::to_string(ms / it->millis);
      out.append(it->suffix);
      return out;
    }
  }
  return std::to_string(ms) + "ms";
}

}  // namespace turnkey::config
