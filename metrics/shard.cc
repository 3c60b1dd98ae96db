#include "metrics/shard.h"

#include <memory>
#include <new>

namespace turnkey::metrics {
namespace {

constexpr std::align_val_t kCacheLine{64};
constexpr size_t kCellsPerLine = 64 / sizeof(std::atomic<uint64_t>);

// Whole cache lines, so no other allocation shares a line with a shard's
// cells (false sharing would put the scraper or another worker on the hot
// path).
size_t RoundToLines(size_t cells) {
  return (cells + kCellsPerLine - 1) / kCellsPerLine * kCellsPerLine;
}

std::atomic<uint64_t>* AllocateCells(size_t count) {
  void* memory = ::operator new(count * sizeof(std::atomic<uint64_t>), kCacheLine);
  auto* cells = static_cast<std::atomic<uint64_t>*>(memory);
  for (size_t i = 0; i < count; ++i) {
    new (&cells[i]) std::atomic<uint64_t>(0);
  }
  return cells;
}

}  // namespace

Shard::Shard(size_t cells, bool shared)
    : cells_(AllocateCells(RoundToLines(cells))), size_(RoundToLines(cells)), shared_(shared) {}

Shard::~Shard() {
  std::destroy_n(cells_, size_);
  ::operator delete(cells_, kCacheLine);
}

}  // namespace turnkey::metrics
