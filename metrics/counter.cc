#include "metrics/counter.h"

#include "metrics/registry.h"

namespace turnkey::metrics {

uint64_t Counter::Value() const {
  return series_ == nullptr ? 0 : series_->family->registry->SumCell(slot_);
}

Counter CounterFamily::Get(std::span<const std::string_view> values) const {
  if (family_ == nullptr) {
    return Counter();
  }
  const SeriesState* series = family_->registry->Lookup(*family_, values);
  return Counter(series, series->slot);
}

}  // namespace turnkey::metrics
