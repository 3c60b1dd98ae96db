// Building blocks of the Prometheus text exposition format, version 0.0.4:
// names, escaping and number spelling. Pure functions; Registry::Render()
// assembles the lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace turnkey::metrics {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__" (reserved by Prometheus).
bool IsValidLabelName(std::string_view name);

// Appends a label value for use between double quotes: backslash, double
// quote and line feed become \\, \" and \n.
void AppendEscapedLabelValue(std::string& out, std::string_view value);
// Appends HELP text: backslash and line feed become \\ and \n.
void AppendEscapedHelp(std::string& out, std::string_view text);

// Appends `value` as Prometheus (Go's strconv.ParseFloat) reads it: "+Inf",
// "-Inf", "NaN", otherwise the shortest text that reads back to the same
// double ("1", "0.25", "1e+21").
void AppendDouble(std::string& out, double value);
void AppendUint(std::string& out, uint64_t value);
void AppendInt(std::string& out, int64_t value);

}  // namespace turnkey::metrics
