#include "metrics/histogram.h"

#include "metrics/registry.h"

namespace turnkey::metrics {

HistogramSnapshot Histogram::Snapshot() const {
  if (series_ == nullptr) {
    return HistogramSnapshot{.cumulative = {0}, .count = 0, .sum = 0};
  }
  return series_->family->registry->SnapshotOf(*series_);
}

Histogram HistogramFamily::Get(std::span<const std::string_view> values) const {
  if (family_ == nullptr) {
    return Histogram();
  }
  const SeriesState* series = family_->registry->Lookup(*family_, values);
  const std::vector<double>& bounds = family_->spec.buckets;
  return Histogram(series, bounds.data(), static_cast<uint32_t>(bounds.size()), series->slot);
}

}  // namespace turnkey::metrics
