#include "metrics/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <utility>

#include "metrics/exposition.h"

namespace turnkey::metrics {
namespace {

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Every name the family's sample lines use; two families may share none.
std::vector<std::string> SampleNames(MetricType type, const std::string& name) {
  if (type == MetricType::kHistogram) {
    return {name, name + "_bucket", name + "_sum", name + "_count"};
  }
  return {name};
}

base::Status ValidateSpec(MetricType type, const MetricSpec& spec) {
  if (!IsValidMetricName(spec.name)) {
    return base::InvalidArgument(fmt::format("metrics: invalid metric name '{}'", spec.name));
  }
  if (spec.labels.size() > kMaxLabels) {
    return base::InvalidArgument(
        fmt::format("metrics: {} has more than {} labels", spec.name, kMaxLabels));
  }
  for (size_t i = 0; i < spec.labels.size(); ++i) {
    const std::string& label = spec.labels[i].name;
    if (!IsValidLabelName(label) || (type == MetricType::kHistogram && label == "le")) {
      return base::InvalidArgument(
          fmt::format("metrics: {} has an invalid label name '{}'", spec.name, label));
    }
    for (size_t j = 0; j < i; ++j) {
      if (spec.labels[j].name == label) {
        return base::InvalidArgument(
            fmt::format("metrics: {} repeats the label '{}'", spec.name, label));
      }
    }
  }
  if (spec.max_series == 0) {
    return base::InvalidArgument(fmt::format("metrics: {} has max_series 0", spec.name));
  }
  if (type != MetricType::kHistogram && !spec.buckets.empty()) {
    return base::InvalidArgument(fmt::format("metrics: {} is not a histogram", spec.name));
  }
  for (size_t i = 0; i < spec.buckets.size(); ++i) {
    if (!std::isfinite(spec.buckets[i]) || (i > 0 && spec.buckets[i] <= spec.buckets[i - 1])) {
      return base::InvalidArgument(
          fmt::format("metrics: {} buckets must be finite and strictly increasing", spec.name));
    }
  }
  return base::Ok();
}

bool LabelAllows(const LabelSpec& label, std::string_view value) {
  return label.values.empty() || value == kOtherLabelValue ||
         std::find(label.values.begin(), label.values.end(), value) != label.values.end();
}

// {a="x",b="y"} with an optional le="..." last; nothing when there is no
// label at all.
void AppendLabels(std::string& out, const MetricSpec& spec, const std::vector<std::string>& values,
                  const std::string* le) {
  if (values.empty() && le == nullptr) {
    return;
  }
  out += '{';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += spec.labels[i].name;
    out += "=\"";
    AppendEscapedLabelValue(out, values[i]);
    out += '"';
  }
  if (le != nullptr) {
    if (!values.empty()) {
      out += ',';
    }
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

RegistryOptions Sanitize(RegistryOptions options) {
  options.max_cells = std::max<size_t>(options.max_cells, Shard::kFirstSeriesSlot);
  options.max_cells = std::min<size_t>(options.max_cells, std::numeric_limits<uint32_t>::max());
  return options;
}

}  // namespace

Registry::Registry(RegistryOptions options)
    : options_(Sanitize(options)), shards_(new std::atomic<Shard*>[options_.max_shards + 1]()) {
  shared_ = new Shard(options_.max_cells, /*shared=*/true);
  shards_[0].store(shared_, std::memory_order_release);
  shard_count_.store(1, std::memory_order_release);
}

Registry::~Registry() {
  const size_t count = shard_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < count; ++i) {
    delete shards_[i].load(std::memory_order_acquire);
  }
}

base::Result<CounterFamily> Registry::AddCounter(MetricSpec spec) {
  auto family = AddFamily(MetricType::kCounter, std::move(spec));
  if (!family) {
    return std::unexpected(std::move(family.error()));
  }
  return CounterFamily(*family);
}

base::Result<GaugeFamily> Registry::AddGauge(MetricSpec spec) {
  auto family = AddFamily(MetricType::kGauge, std::move(spec));
  if (!family) {
    return std::unexpected(std::move(family.error()));
  }
  return GaugeFamily(*family);
}

base::Result<HistogramFamily> Registry::AddHistogram(MetricSpec spec) {
  auto family = AddFamily(MetricType::kHistogram, std::move(spec));
  if (!family) {
    return std::unexpected(std::move(family.error()));
  }
  return HistogramFamily(*family);
}

base::Result<FamilyState*> Registry::AddFamily(MetricType type, MetricSpec spec) {
  if (auto valid = ValidateSpec(type, spec); !valid) {
    return std::unexpected(std::move(valid.error()));
  }
  const uint32_t cells =
      type == MetricType::kHistogram ? static_cast<uint32_t>(spec.buckets.size()) + 2 : 1;

  std::lock_guard lock(mu_);
  std::vector<std::string> names = SampleNames(type, spec.name);
  for (const std::string& name : names) {
    if (sample_names_.contains(name)) {
      return base::InvalidArgument(
          fmt::format("metrics: {} clashes with the name {} already in use", spec.name, name));
    }
  }
  if (size_t{next_slot_} + cells > options_.max_cells) {
    return base::MakeError(base::ErrorCode::kResourceExhausted,
                           fmt::format("metrics: no cells left for {}", spec.name));
  }

  auto family = std::make_unique<FamilyState>();
  family->registry = this;
  family->type = type;
  family->spec = std::move(spec);
  family->cells_per_series = cells;
  // The overflow series exists from the start so that a lookup never fails;
  // it is written once handed out. Without labels it is the one series.
  family->overflow = CreateSeriesLocked(
      *family, std::vector<std::string>(family->spec.labels.size(), std::string(kOtherLabelValue)));
  family->overflow->visible = family->spec.labels.empty();

  FamilyState* result = family.get();
  for (std::string& name : names) {
    sample_names_.insert(std::move(name));
  }
  families_.emplace(result->spec.name, std::move(family));
  return result;
}

SeriesState* Registry::CreateSeriesLocked(FamilyState& family, std::vector<std::string> values) {
  auto series = std::make_unique<SeriesState>();
  series->family = &family;
  series->slot = next_slot_;
  next_slot_ += family.cells_per_series;
  SeriesState* result = series.get();
  family.series.emplace(std::move(values), std::move(series));
  return result;
}

SeriesState* Registry::Lookup(FamilyState& family, std::span<const std::string_view> values) {
  std::lock_guard lock(mu_);
  SeriesState* series = family.overflow;
  const std::vector<LabelSpec>& labels = family.spec.labels;
  if (values.size() == labels.size()) {
    std::array<std::string_view, kMaxLabels> canonical;
    for (size_t i = 0; i < labels.size(); ++i) {
      canonical[i] = LabelAllows(labels[i], values[i]) ? values[i] : kOtherLabelValue;
    }
    std::span<const std::string_view> key(canonical.data(), labels.size());
    if (auto it = family.series.find(key); it != family.series.end()) {
      series = it->second.get();
    } else if (family.regular_series < family.spec.max_series &&
               size_t{next_slot_} + family.cells_per_series <= options_.max_cells) {
      ++family.regular_series;
      series = CreateSeriesLocked(family, std::vector<std::string>(key.begin(), key.end()));
    }
  }
  series->visible = true;
  return series;
}

void Registry::SetCallback(SeriesState& series, std::function<double()> callback) {
  std::function<double()> previous;
  {
    std::lock_guard lock(mu_);
    previous = std::exchange(series.callback, std::move(callback));
  }
  // `previous` dies here, outside the lock: its captures may do anything.
}

Shard& Registry::AcquireShard() {
  std::lock_guard lock(mu_);
  const size_t count = shard_count_.load(std::memory_order_relaxed);
  for (size_t i = 1; i < count; ++i) {
    Shard* shard = shards_[i].load(std::memory_order_relaxed);
    if (!shard->leased_) {
      shard->leased_ = true;
      return *shard;
    }
  }
  if (count - 1 >= options_.max_shards) {
    return *shared_;
  }
  auto* shard = new Shard(options_.max_cells, /*shared=*/false);
  shard->leased_ = true;
  shards_[count].store(shard, std::memory_order_release);
  shard_count_.store(count + 1, std::memory_order_release);
  return *shard;
}

void Registry::ReleaseShard(Shard& shard) {
  std::lock_guard lock(mu_);
  if (!shard.shared()) {
    shard.leased_ = false;
  }
}

uint64_t Registry::SumCell(uint32_t slot) const {
  const size_t count = shard_count_.load(std::memory_order_acquire);
  uint64_t sum = 0;
  for (size_t i = 0; i < count; ++i) {
    sum += shards_[i].load(std::memory_order_acquire)->Load(slot);
  }
  return sum;
}

double Registry::SumDoubleCell(uint32_t slot) const {
  const size_t count = shard_count_.load(std::memory_order_acquire);
  double sum = 0;
  for (size_t i = 0; i < count; ++i) {
    sum += std::bit_cast<double>(shards_[i].load(std::memory_order_acquire)->Load(slot));
  }
  return sum;
}

HistogramSnapshot Registry::SnapshotOf(const SeriesState& series) const {
  const size_t bounds = series.family->spec.buckets.size();
  HistogramSnapshot snapshot;
  snapshot.cumulative.resize(bounds + 1);
  for (size_t i = 0; i <= bounds; ++i) {
    snapshot.count += SumCell(series.slot + static_cast<uint32_t>(i));
    snapshot.cumulative[i] = snapshot.count;
  }
  snapshot.sum = SumDoubleCell(series.slot + static_cast<uint32_t>(bounds) + 1);
  return snapshot;
}

std::string Registry::Render() const {
  std::string out;
  RenderTo(out);
  return out;
}

void Registry::RenderTo(std::string& out) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, family] : families_) {
    RenderFamilyLocked(*family, out);
  }
}

void Registry::RenderFamilyLocked(const FamilyState& family, std::string& out) const {
  const MetricSpec& spec = family.spec;
  if (!spec.help.empty()) {
    out += "# HELP ";
    out += spec.name;
    out += ' ';
    AppendEscapedHelp(out, spec.help);
    out += '\n';
  }
  out += "# TYPE ";
  out += spec.name;
  out += ' ';
  out += TypeName(family.type);
  out += '\n';

  std::vector<std::string> le;
  if (family.type == MetricType::kHistogram) {
    for (double bound : spec.buckets) {
      AppendDouble(le.emplace_back(), bound);
    }
    le.emplace_back("+Inf");
  }

  for (const auto& [values, series] : family.series) {
    if (!series->visible) {
      continue;
    }
    switch (family.type) {
      case MetricType::kCounter: {
        const uint64_t value = SumCell(series->slot);
        if (spec.skip_zero && value == 0) {
          break;
        }
        out += spec.name;
        AppendLabels(out, spec, values, nullptr);
        out += ' ';
        AppendUint(out, value);
        out += '\n';
        break;
      }
      case MetricType::kGauge: {
        // Deltas are summed mod 2^64; read as two's complement the total is
        // right even when single shards went negative.
        const auto delta = static_cast<int64_t>(SumCell(series->slot));
        const uint64_t set_bits = series->set_bits.load(std::memory_order_relaxed);
        std::string text;
        double value = 0;
        if (series->callback) {
          try {
            value = series->callback();
          } catch (...) {
            value = std::numeric_limits<double>::quiet_NaN();
          }
          AppendDouble(text, value);
        } else if (set_bits == 0) {
          value = static_cast<double>(delta);
          AppendInt(text, delta);
        } else {
          value = std::bit_cast<double>(set_bits) + static_cast<double>(delta);
          AppendDouble(text, value);
        }
        if (spec.skip_zero && value == 0) {
          break;
        }
        out += spec.name;
        AppendLabels(out, spec, values, nullptr);
        out += ' ';
        out += text;
        out += '\n';
        break;
      }
      case MetricType::kHistogram: {
        const HistogramSnapshot snapshot = SnapshotOf(*series);
        if (spec.skip_zero && snapshot.count == 0) {
          break;
        }
        for (size_t i = 0; i < le.size(); ++i) {
          out += spec.name;
          out += "_bucket";
          AppendLabels(out, spec, values, &le[i]);
          out += ' ';
          AppendUint(out, snapshot.cumulative[i]);
          out += '\n';
        }
        out += spec.name;
        out += "_sum";
        AppendLabels(out, spec, values, nullptr);
        out += ' ';
        AppendDouble(out, snapshot.sum);
        out += '\n';
        out += spec.name;
        out += "_count";
        AppendLabels(out, spec, values, nullptr);
        out += ' ';
        AppendUint(out, snapshot.count);
        out += '\n';
        break;
      }
    }
  }
}

}  // namespace turnkey::metrics
