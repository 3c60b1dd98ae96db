// FuzzReader: the operands of a stateful fuzz target's program, read front
// to back from the fuzz input. Past the end every read gives 0 (and byte
// runs come back empty), so any input is a whole program and libFuzzer's
// mutations only change which operations run, never whether one can.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/bytes.h"

namespace turnkey::fuzz {

class FuzzReader {
 public:
  FuzzReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  uint8_t U8() { return empty() ? 0 : data_[pos_++]; }
  // One of `n` (n > 0).
  size_t Pick(size_t n) { return U8() % n; }
  bool Bit() { return (U8() & 1) != 0; }
  // Multi-byte values are big-endian; each read is its own statement (the
  // operands of one expression are unsequenced).
  uint16_t U16() {
    const uint16_t high = U8();
    return static_cast<uint16_t>(high << 8 | U8());
  }
  uint32_t U32() {
    const uint32_t high = U16();
    return high << 16 | U16();
  }
  uint64_t U64() {
    const uint64_t high = U32();
    return high << 32 | U32();
  }
  // The next `n` bytes, or as many as are left.
  base::ByteView Take(size_t n) {
    const size_t start = std::min(pos_, size_);
    n = std::min(n, size_ - start);
    pos_ = start + n;
    return base::ByteView(data_ + start, n);
  }
  std::string_view TakeText(size_t n) {
    const base::ByteView bytes = Take(n);
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  // Up to `max` bytes, their count first (one byte, or two when `max`
  // exceeds 255).
  base::ByteView Prefixed(size_t max) {
    const size_t n = max > 255 ? U16() : U8();
    return Take(n % (max + 1));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace turnkey::fuzz
