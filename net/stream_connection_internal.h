// Helpers of StreamConnection's two source files (stream_connection.cc,
// stream_connection_io.cc); not for other users.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/bytes.h"

namespace turnkey::net::stream_internal {

// One read takes at most this much; the buffer is shared by every plain
// connection of the thread (a loop thread runs one callback at a time).
inline constexpr size_t kReadChunk = 64 * 1024;
uint8_t* ReadBuffer();

bool WouldBlock(int err);

// `parts` one after the other in one buffer; `total` is the sum of their sizes.
base::Bytes Joined(std::span<const base::ByteView> parts, size_t total);

}  // namespace turnkey::net::stream_internal
