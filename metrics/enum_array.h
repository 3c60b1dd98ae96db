// EnumArray: a fixed array indexed by an enum class whose last enumerator is
// kCount, so pre-resolved metric handles read as
// `metrics.relayed_packets[Direction::kClientToPeer]`.
#pragma once

#include <array>
#include <cstddef>

namespace turnkey::metrics {

template <typename E, typename T>
class EnumArray {
 public:
  static constexpr size_t kSize = static_cast<size_t>(E::kCount);

  // `e` must be below E::kCount (an enum value our own code chose).
  T& operator[](E e) { return items_[static_cast<size_t>(e)]; }
  const T& operator[](E e) const { return items_[static_cast<size_t>(e)]; }

  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::array<T, kSize> items_{};
};

}  // namespace turnkey::metrics
