// Durations as operators write them in the config file.
//
// A duration is a whole number followed by exactly one unit: "250ms", "30s",
// "10m", "24h", "30d". A bare number is refused rather than guessed at: "30"
// could mean seconds or minutes depending on who wrote it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/status.h"

namespace turnkey::config {

// The largest duration accepted: 100 years. Anything bigger is a typo, and the
// bound keeps `now + duration` far from overflowing in every caller.
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24) * 365 * 100;

// Parses "<digits><unit>" with unit ms, s, m, h or d. No sign, no fraction, no
// spaces. On failure the message quotes `text` and says what was expected, but
// carries no file or key: the loader adds those.
base::Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Writes `duration` with the largest unit that divides it exactly, so the
// result parses back to the same value: 90000ms -> "90s", 0 -> "0s".
// Precondition: duration >= 0.
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace turnkey::config
