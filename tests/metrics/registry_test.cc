#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace turnkey::metrics {
namespace {

// A registry and one acquired shard, as a worker thread would hold them.
class RegistryTest : public ::testing::Test {
 protected:
  Registry registry_;
  Shard& shard_ = registry_.AcquireShard();
};

TEST_F(RegistryTest, EmptyRegistryRendersNothing) { EXPECT_EQ(registry_.Render(), ""); }

TEST_F(RegistryTest, CounterWithoutLabels) {
  auto family = registry_.AddCounter({.name = "requests_total", .help = "All requests."});
  ASSERT_TRUE(family.has_value()) << family.error().message;
  EXPECT_EQ(registry_.Render(),
            "# HELP requests_total All requests.\n"
            "# TYPE requests_total counter\n"
            "requests_total 0\n");

  Counter counter = family->Get();
  counter.Add(shard_, 41);
  counter.Inc(shard_);
  EXPECT_EQ(counter.Value(), 42u);
  EXPECT_EQ(registry_.Render(),
            "# HELP requests_total All requests.\n"
            "# TYPE requests_total counter\n"
            "requests_total 42\n");
}

TEST_F(RegistryTest, CounterWithLabelsSortedByValues) {
  auto family = registry_.AddCounter({
      .name = "http_total",
      .help = "By route and code.",
      .labels = {{.name = "route"}, {.name = "code"}},
  });
  ASSERT_TRUE(family.has_value());
  EXPECT_EQ(registry_.Render(),
            "# HELP http_total By route and code.\n"
            "# TYPE http_total counter\n");

  family->Get({"/b", "200"}).Add(shard_, 2);
  family->Get({"/a", "404"}).Add(shard_, 1);
  family->Get({"/a", "200"}).Add(shard_, 7);
  family->Get({"/b", "200"}).Inc(shard_);
  EXPECT_EQ(registry_.Render(),
            "# HELP http_total By route and code.\n"
            "# TYPE http_total counter\n"
            "http_total{route=\"/a\",code=\"200\"} 7\n"
            "http_total{route=\"/a\",code=\"404\"} 1\n"
            "http_total{route=\"/b\",code=\"200\"} 3\n");
}

TEST_F(RegistryTest, EscapesLabelValuesAndHelp) {
  auto family = registry_.AddCounter({
      .name = "odd_total",
      .help = "Help with \\ and\nnewline and \"quotes\".",
      .labels = {{.name = "v"}},
  });
  ASSERT_TRUE(family.has_value());
  family->Get({"back\\slash \"quoted\"\nnext"}).Inc(shard_);
  EXPECT_EQ(registry_.Render(),
            "# HELP odd_total Help with \\\\ and\\nnewline and \"quotes\".\n"
            "# TYPE odd_total counter\n"
            "odd_total{v=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 1\n");
}

TEST_F(RegistryTest, NoHelpLineWhenHelpIsEmpty) {
  ASSERT_TRUE(registry_.AddCounter({.name = "bare_total"}).has_value());
  EXPECT_EQ(registry_.Render(),
            "# TYPE bare_total counter\n"
            "bare_total 0\n");
}

TEST_F(RegistryTest, FamiliesSortedByName) {
  ASSERT_TRUE(registry_.AddGauge({.name = "zeta", .help = "z"}).has_value());
  ASSERT_TRUE(registry_.AddCounter({.name = "alpha_total", .help = "a"}).has_value());
  ASSERT_TRUE(registry_.AddGauge({.name = "mid", .help = "m"}).has_value());
  EXPECT_EQ(registry_.Render(),
            "# HELP alpha_total a\n# TYPE alpha_total counter\nalpha_total 0\n"
            "# HELP mid m\n# TYPE mid gauge\nmid 0\n"
            "# HELP zeta z\n# TYPE zeta gauge\nzeta 0\n");
}

TEST_F(RegistryTest, RenderToAppends) {
  ASSERT_TRUE(registry_.AddGauge({.name = "g"}).has_value());
  std::string out = "prefix\n";
  registry_.RenderTo(out);
  EXPECT_EQ(out, "prefix\n# TYPE g gauge\ng 0\n");
}

TEST_F(RegistryTest, GaugeUpDownAcrossShards) {
  auto family = registry_.AddGauge({.name = "active", .help = "Open now."});
  ASSERT_TRUE(family.has_value());
  Gauge gauge = family->Get();
  Shard& other = registry_.AcquireShard();

  // Created on one shard, removed on another: each shard alone goes
  // negative, the sum is right.
  gauge.Add(shard_, 5);
  gauge.Inc(shard_);
  gauge.Sub(other, 2);
  gauge.Dec(other);
  EXPECT_EQ(gauge.Value(), 3);
  EXPECT_EQ(registry_.Render(),
            "# HELP active Open now.\n"
            "# TYPE active gauge\n"
            "active 3\n");

  gauge.Sub(other, 10);
  EXPECT_EQ(registry_.Render(),
            "# HELP active Open now.\n"
            "# TYPE active gauge\n"
            "active -7\n");
}

TEST_F(RegistryTest, GaugeSetIsWrittenAsDouble) {
  auto family = registry_.AddGauge({.name = "temp", .labels = {{.name = "where"}}});
  ASSERT_TRUE(family.has_value());
  family->Get({"in"}).Set(21.5);
  family->Get({"out"}).Set(-std::numeric_limits<double>::infinity());
  family->Get({"void"}).Set(std::numeric_limits<double>::quiet_NaN());
  family->Get({"big"}).Set(1.5e300);
  EXPECT_EQ(family->Get({"in"}).Value(), 21.5);
  EXPECT_EQ(registry_.Render(),
            "# TYPE temp gauge\n"
            "temp{where=\"big\"} 1.5e+300\n"
            "temp{where=\"in\"} 21.5\n"
            "temp{where=\"out\"} -Inf\n"
            "temp{where=\"void\"} NaN\n");
}

TEST_F(RegistryTest, BuildInfoStyleGauge) {
  auto family = registry_.AddGauge(
      {.name = "turnkey_build_info", .help = "Build.", .labels = {{.name = "version"}}});
  ASSERT_TRUE(family.has_value());
  family->Get({"0.1.0"}).Set(1);
  EXPECT_EQ(registry_.Render(),
            "# HELP turnkey_build_info Build.\n"
            "# TYPE turnkey_build_info gauge\n"
            "turnkey_build_info{version=\"0.1.0\"} 1\n");
}

TEST_F(RegistryTest, CallbackGaugeRunsAtEachScrape) {
  auto family = registry_.AddGauge({.name = "ports_free", .help = "Free ports."});
  ASSERT_TRUE(family.has_value());
  Gauge gauge = family->Get();
  int calls = 0;
  double free_ports = 100;
  gauge.SetCallback([&] {
    ++calls;
    return free_ports;
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(registry_.Render(),
            "# HELP ports_free Free ports.\n"
            "# TYPE ports_free gauge\n"
            "ports_free 100\n");
  free_ports = 99.5;
  EXPECT_EQ(registry_.Render(),
            "# HELP ports_free Free ports.\n"
            "# TYPE ports_free gauge\n"
            "ports_free 99.5\n");
  EXPECT_EQ(calls, 2);

  // Removed: never called again; the stored value (0) is written.
  gauge.SetCallback(nullptr);
  EXPECT_EQ(registry_.Render(),
            "# HELP ports_free Free ports.\n"
            "# TYPE ports_free gauge\n"
            "ports_free 0\n");
  EXPECT_EQ(calls, 2);
}

TEST_F(RegistryTest, CallbackMayReadValuesAndSpecialDoubles) {
  auto counters = registry_.AddCounter({.name = "c_total"});
  auto gauges = registry_.AddGauge({.name = "g", .labels = {{.name = "k"}}});
  ASSERT_TRUE(counters.has_value());
  ASSERT_TRUE(gauges.has_value());
  Counter counter = counters->Get();
  counter.Add(shard_, 6);
  // Value() takes no lock, so a callback may use it.
  gauges->Get({"half"}).SetCallback([counter] { return counter.Value() / 2.0; });
  gauges->Get({"inf"}).SetCallback([] { return std::numeric_limits<double>::infinity(); });
  gauges->Get({"throws"}).SetCallback([]() -> double { throw std::runtime_error("no"); });
  EXPECT_EQ(registry_.Render(),
            "# TYPE c_total counter\n"
            "c_total 6\n"
            "# TYPE g gauge\n"
            "g{k=\"half\"} 3\n"
            "g{k=\"inf\"} +Inf\n"
            "g{k=\"throws\"} NaN\n");
}

TEST_F(RegistryTest, HistogramWithLabels) {
  auto family = registry_.AddHistogram({
      .name = "latency_seconds",
      .help = "Latency.",
      .labels = {{.name = "op"}},
      .buckets = {0.25, 0.5, 1},
  });
  ASSERT_TRUE(family.has_value()) << family.error().message;
  Histogram get = family->Get({"get"});
  for (double v : {0.125, 0.25, 0.375, 0.375, 8.0}) {
    get.Observe(shard_, v);
  }
  get.Observe(shard_, std::numeric_limits<double>::quiet_NaN());  // ignored
  family->Get({"put"}).Observe(registry_.shared_shard(), 1);      // on a bound: le="1"

  EXPECT_EQ(registry_.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{op=\"get\",le=\"0.25\"} 2\n"
            "latency_seconds_bucket{op=\"get\",le=\"0.5\"} 4\n"
            "latency_seconds_bucket{op=\"get\",le=\"1\"} 4\n"
            "latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 5\n"
            "latency_seconds_sum{op=\"get\"} 9.125\n"
            "latency_seconds_count{op=\"get\"} 5\n"
            "latency_seconds_bucket{op=\"put\",le=\"0.25\"} 0\n"
            "latency_seconds_bucket{op=\"put\",le=\"0.5\"} 0\n"
            "latency_seconds_bucket{op=\"put\",le=\"1\"} 1\n"
            "latency_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n"
            "latency_seconds_sum{op=\"put\"} 1\n"
            "latency_seconds_count{op=\"put\"} 1\n");

  HistogramSnapshot snapshot = get.Snapshot();
  EXPECT_EQ(snapshot.cumulative, (std::vector<uint64_t>{2, 4, 4, 5}));
  EXPECT_EQ(snapshot.count, 5u);
  EXPECT_EQ(snapshot.sum, 9.125);
}

TEST_F(RegistryTest, HistogramWithoutLabels) {
  auto family =
      registry_.AddHistogram({.name = "setup_seconds", .help = "Setup.", .buckets = {0.005, 2.5}});
  ASSERT_TRUE(family.has_value());
  EXPECT_EQ(registry_.Render(),
            "# HELP setup_seconds Setup.\n"
            "# TYPE setup_seconds histogram\n"
            "setup_seconds_bucket{le=\"0.005\"} 0\n"
            "setup_seconds_bucket{le=\"2.5\"} 0\n"
            "setup_seconds_bucket{le=\"+Inf\"} 0\n"
            "setup_seconds_sum 0\n"
            "setup_seconds_count 0\n");
  family->Get().Observe(shard_, -std::numeric_limits<double>::infinity());
  family->Get().Observe(shard_, std::numeric_limits<double>::infinity());
  EXPECT_EQ(registry_.Render(),
            "# HELP setup_seconds Setup.\n"
            "# TYPE setup_seconds histogram\n"
            "setup_seconds_bucket{le=\"0.005\"} 1\n"
            "setup_seconds_bucket{le=\"2.5\"} 1\n"
            "setup_seconds_bucket{le=\"+Inf\"} 2\n"
            "setup_seconds_sum NaN\n"
            "setup_seconds_count 2\n");
}

TEST_F(RegistryTest, HistogramWithOnlyInfBucket) {
  auto family = registry_.AddHistogram({.name = "h"});
  ASSERT_TRUE(family.has_value());
  family->Get().Observe(shard_, 3);
  EXPECT_EQ(registry_.Render(),
            "# TYPE h histogram\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 3\n"
            "h_count 1\n");
}

TEST_F(RegistryTest, DeclaredLabelValuesMapUnknownToOther) {
  auto family = registry_.AddCounter({
      .name = "req_total",
      .labels = {{.name = "method", .values = {"get", "put"}}},
  });
  ASSERT_TRUE(family.has_value());
  family->Get({"get"}).Inc(shard_);
  family->Get({"DELETE"}).Inc(shard_);
  family->Get({"x\ny"}).Inc(shard_);
  family->Get({"other"}).Inc(shard_);
  EXPECT_EQ(family->Get({"nope"}).Value(), 3u);
  EXPECT_EQ(registry_.Render(),
            "# TYPE req_total counter\n"
            "req_total{method=\"get\"} 1\n"
            "req_total{method=\"other\"} 3\n");
}

TEST_F(RegistryTest, FullFamilyCountsNewTuplesUnderOverflowSeries) {
  auto family = registry_.AddCounter({
      .name = "user_total",
      .labels = {{.name = "user"}, {.name = "kind", .values = {"a", "b"}}},
      .max_series = 2,
  });
  ASSERT_TRUE(family.has_value());
  family->Get({"u1", "a"}).Inc(shard_);
  family->Get({"u2", "b"}).Inc(shard_);
  // Full: every further new tuple, with any values, lands in one series.
  for (int i = 3; i < 1000; ++i) {
    family->Get({"u" + std::to_string(i), "a"}).Inc(shard_);
  }
  // Existing series are still found.
  family->Get({"u1", "a"}).Inc(shard_);
  EXPECT_EQ(registry_.Render(),
            "# TYPE user_total counter\n"
            "user_total{user=\"other\",kind=\"other\"} 997\n"
            "user_total{user=\"u1\",kind=\"a\"} 2\n"
            "user_total{user=\"u2\",kind=\"b\"} 1\n");
}

TEST_F(RegistryTest, WrongNumberOfValuesGivesOverflowSeries) {
  auto family =
      registry_.AddCounter({.name = "two_total", .labels = {{.name = "a"}, {.name = "b"}}});
  ASSERT_TRUE(family.has_value());
  family->Get({"only-one"}).Inc(shard_);
  family->Get({"x", "y", "z"}).Inc(shard_);
  family->Get().Inc(shard_);
  EXPECT_EQ(registry_.Render(),
            "# TYPE two_total counter\n"
            "two_total{a=\"other\",b=\"other\"} 3\n");

  auto plain = registry_.AddCounter({.name = "plain_total"});
  ASSERT_TRUE(plain.has_value());
  plain->Get({"unexpected"}).Inc(shard_);
  EXPECT_EQ(plain->Get().Value(), 1u);
}

TEST_F(RegistryTest, LookupTakesSpanOfViews) {
  auto family = registry_.AddCounter({.name = "s_total", .labels = {{.name = "a"}, {.name = "b"}}});
  ASSERT_TRUE(family.has_value());
  std::vector<std::string> owned = {"x", "y"};
  std::vector<std::string_view> views(owned.begin(), owned.end());
  family->Get(views).Add(shard_, 4);
  EXPECT_EQ(family->Get({"x", "y"}).Value(), 4u);
}

TEST_F(RegistryTest, SkipZeroLeavesOutUntouchedSeries) {
  auto counters = registry_.AddCounter({
      .name = "codes_total",
      .labels = {{.name = "code", .values = {"200", "404", "500"}}},
      .skip_zero = true,
  });
  auto histograms = registry_.AddHistogram({
      .name = "h_seconds",
      .labels = {{.name = "op", .values = {"a", "b"}}},
      .buckets = {1},
      .skip_zero = true,
  });
  ASSERT_TRUE(counters.has_value());
  ASSERT_TRUE(histograms.has_value());
  std::vector<Counter> all;
  for (std::string_view code : {"200", "404", "500"}) {
    all.push_back(counters->Get({code}));
  }
  histograms->Get({"a"});  // handed out, never observed
  Histogram b = histograms->Get({"b"});
  all[1].Inc(shard_);
  b.Observe(shard_, 0.5);
  EXPECT_EQ(registry_.Render(),
            "# TYPE codes_total counter\n"
            "codes_total{code=\"404\"} 1\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{op=\"b\",le=\"1\"} 1\n"
            "h_seconds_bucket{op=\"b\",le=\"+Inf\"} 1\n"
            "h_seconds_sum{op=\"b\"} 0.5\n"
            "h_seconds_count{op=\"b\"} 1\n");
}

TEST_F(RegistryTest, RejectsBadSpecs) {
  using base::ErrorCode;
  auto code = [](const auto& result) {
    return result.has_value() ? std::string("ok") : ErrorCodeName(result.error().code);
  };
  const std::string invalid = ErrorCodeName(ErrorCode::kInvalidArgument);

  EXPECT_EQ(code(registry_.AddCounter({.name = ""})), invalid);
  EXPECT_EQ(code(registry_.AddCounter({.name = "bad-name"})), invalid);
  EXPECT_EQ(code(registry_.AddCounter({.name = "x", .labels = {{.name = "__x"}}})), invalid);
  EXPECT_EQ(code(registry_.AddCounter({.name = "x", .labels = {{.name = "a"}, {.name = "a"}}})),
            invalid);
  EXPECT_EQ(code(registry_.AddCounter({.name = "x", .max_series = 0})), invalid);
  EXPECT_EQ(code(registry_.AddCounter({.name = "x", .buckets = {1}})), invalid);
  EXPECT_EQ(code(registry_.AddGauge({.name = "x", .buckets = {1}})), invalid);
  EXPECT_EQ(code(registry_.AddHistogram({.name = "x", .labels = {{.name = "le"}}})), invalid);
  EXPECT_EQ(code(registry_.AddHistogram({.name = "x", .buckets = {1, 1}})), invalid);
  EXPECT_EQ(code(registry_.AddHistogram({.name = "x", .buckets = {2, 1}})), invalid);
  EXPECT_EQ(code(registry_.AddHistogram(
                {.name = "x", .buckets = {1, std::numeric_limits<double>::infinity()}})),
            invalid);
  EXPECT_EQ(code(registry_.AddHistogram(
                {.name = "x", .buckets = {std::numeric_limits<double>::quiet_NaN()}})),
            invalid);
  std::vector<LabelSpec> nine(9);
  for (size_t i = 0; i < nine.size(); ++i) {
    nine[i].name = "l" + std::to_string(i);
  }
  EXPECT_EQ(code(registry_.AddCounter({.name = "x", .labels = nine})), invalid);
  nine.pop_back();
  EXPECT_EQ(code(registry_.AddCounter({.name = "x", .labels = nine})), "ok");

  // Names clash, including the lines a histogram writes.
  EXPECT_EQ(code(registry_.AddGauge({.name = "x"})), invalid);
  EXPECT_EQ(code(registry_.AddHistogram({.name = "lat"})), "ok");
  EXPECT_EQ(code(registry_.AddCounter({.name = "lat_count"})), invalid);
  EXPECT_EQ(code(registry_.AddGauge({.name = "lat_bucket"})), invalid);
  EXPECT_EQ(code(registry_.AddCounter({.name = "dur_sum"})), "ok");
  EXPECT_EQ(code(registry_.AddHistogram({.name = "dur"})), invalid);
  EXPECT_EQ(code(registry_.AddHistogram({.name = "lat"})), invalid);
}

TEST(RegistryCellsTest, OutOfCellsFailsRegistrationAndOverflowsLookups) {
  // Two scratch cells plus room for five series cells.
  Registry registry({.max_cells = 7});
  Shard& shard = registry.AcquireShard();
  auto family = registry.AddCounter({.name = "c_total", .labels = {{.name = "k"}}});
  ASSERT_TRUE(family.has_value());  // takes one cell (its overflow series)
  for (int i = 0; i < 10; ++i) {
    family->Get({std::to_string(i)}).Inc(shard);
  }
  EXPECT_EQ(registry.Render(),
            "# TYPE c_total counter\n"
            "c_total{k=\"0\"} 1\n"
            "c_total{k=\"1\"} 1\n"
            "c_total{k=\"2\"} 1\n"
            "c_total{k=\"3\"} 1\n"
            "c_total{k=\"other\"} 6\n");
  auto more = registry.AddGauge({.name = "g"});
  ASSERT_FALSE(more.has_value());
  EXPECT_EQ(more.error().code, base::ErrorCode::kResourceExhausted);
}

TEST(RegistryShardsTest, ReleasedShardIsReusedAndKeepsItsCounts) {
  Registry registry({.max_shards = 2});
  auto family = registry.AddCounter({.name = "c_total"});
  ASSERT_TRUE(family.has_value());
  Counter counter = family->Get();

  Shard& a = registry.AcquireShard();
  Shard& b = registry.AcquireShard();
  EXPECT_NE(&a, &b);
  EXPECT_FALSE(a.shared());
  // All leased: the shared shard, safe for anyone.
  Shard& c = registry.AcquireShard();
  EXPECT_TRUE(c.shared());
  EXPECT_EQ(&c, &registry.shared_shard());

  counter.Add(a, 1);
  counter.Add(b, 10);
  counter.Add(c, 100);
  registry.ReleaseShard(a);
  registry.ReleaseShard(c);  // ignored
  Shard& d = registry.AcquireShard();
  EXPECT_EQ(&d, &a);
  counter.Add(d, 1000);
  EXPECT_EQ(counter.Value(), 1111u);
}

TEST(RegistryDetachedTest, DefaultHandlesCountNothing) {
  Registry registry;
  Shard& shard = registry.AcquireShard();
  auto family = registry.AddCounter({.name = "real_total"});
  ASSERT_TRUE(family.has_value());

  Counter counter;
  Gauge gauge;
  Histogram histogram;
  EXPECT_FALSE(counter.attached());
  counter.Add(shard, 5);
  counter.Add(registry.shared_shard(), 5);
  gauge.Inc(shard);
  gauge.Set(3);
  gauge.SetCallback([] { return 1.0; });
  histogram.Observe(shard, 2);
  EXPECT_EQ(counter.Value(), 0u);
  EXPECT_EQ(gauge.Value(), 0);
  EXPECT_EQ(histogram.Snapshot().cumulative, std::vector<uint64_t>{0});
  EXPECT_FALSE(CounterFamily().Get({"x"}).attached());
  EXPECT_FALSE(GaugeFamily().Get().attached());
  EXPECT_FALSE(HistogramFamily().Get().attached());
  EXPECT_TRUE(family->Get().attached());
  EXPECT_EQ(registry.Render(), "# TYPE real_total counter\nreal_total 0\n");
}

}  // namespace
}  // namespace turnkey::metrics
