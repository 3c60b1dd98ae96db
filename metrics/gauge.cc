#include "metrics/gauge.h"

#include <bit>
#include <utility>

#include "metrics/registry.h"

namespace turnkey::metrics {

void Gauge::Set(double value) const {
  if (series_ != nullptr) {
    series_->set_bits.store(std::bit_cast<uint64_t>(value), std::memory_order_relaxed);
  }
}

void Gauge::SetCallback(std::function<double()> callback) const {
  if (series_ != nullptr) {
    series_->family->registry->SetCallback(*series_, std::move(callback));
  }
}

double Gauge::Value() const {
  if (series_ == nullptr) {
    return 0;
  }
  const auto delta = static_cast<int64_t>(series_->family->registry->SumCell(slot_));
  return std::bit_cast<double>(series_->set_bits.load(std::memory_order_relaxed)) +
         static_cast<double>(delta);
}

Gauge GaugeFamily::Get(std::span<const std::string_view> values) const {
  if (family_ == nullptr) {
    return Gauge();
  }
  SeriesState* series = family_->registry->Lookup(*family_, values);
  return Gauge(series, series->slot);
}

}  // namespace turnkey::metrics
