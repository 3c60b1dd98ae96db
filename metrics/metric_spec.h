// MetricSpec: how a metric family is declared to a Registry.
//
// A family has a name, a help line, a fixed list of label names and, for a
// histogram, fixed bucket bounds. Its series are the label-value tuples it
// has been asked for. Cardinality is bounded two ways, so no label can grow
// without limit:
//   - a label may declare its allowed values; a lookup with any other value
//     is counted under the value "other" (never rejected, never a new value);
//   - a family holds at most `max_series` series; once full, a lookup of a
//     new tuple is counted under the overflow series, whose every label is
//     "other". That series does not count against `max_series`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace turnkey::metrics {

// The label value unknown or excess label values are counted under.
inline constexpr std::string_view kOtherLabelValue = "other";

// Most labels one family may have.
inline constexpr size_t kMaxLabels = 8;

struct LabelSpec {
  // [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"; "le" is taken by
  // histograms.
  std::string name;
  // The values this label may take, e.g. {"udp", "tcp", "tls"}. Empty means
  // any value (the family's max_series still bounds the series). Otherwise
  // any value not listed is replaced by "other", which is always allowed.
  std::vector<std::string> values;
};

struct MetricSpec {
  // [a-zA-Z_:][a-zA-Z0-9_:]*, unique in the registry, including the
  // _bucket, _sum and _count names a histogram writes.
  std::string name;
  // One line of text for the # HELP line; may be empty (then no HELP line).
  std::string help;
  // Label names in the order they are written; at most kMaxLabels.
  std::vector<LabelSpec> labels;
  // Histograms only: finite, strictly increasing bucket upper bounds. The
  // +Inf bucket is implied. Must be empty for counters and gauges.
  std::vector<double> buckets;
  // Series the family may hold besides the overflow series. At least 1.
  size_t max_series = 128;
  // Leave out series whose value is zero (histograms: whose count is zero).
  // For families whose handles are resolved up front as a cross product
  // (method x code), so the exposition shows only what happened.
  bool skip_zero = false;
};

}  // namespace turnkey::metrics
