#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds turnkey
# three ways and runs every test.
#   1. build-asan/  ASan + UBSan (clang): everything but bench/; the unit
#                   tests run here
#   2. build-fuzz/  clang libFuzzer targets, each run for a bounded time
#   3. build/       Release: turnkey, the protocol test server and bench/'s
#                   tools (no unit tests: they ran under the sanitizers); the
#                   integration tests (the real binary on loopback, driven by
#                   clients nobody here wrote) run here
# Exits non-zero on the first failure. FUZZ_SECONDS (default 30) bounds each
# fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test

jobs=$(nproc)
# Each phase prints the seconds since the start, so a slow CI run shows where
# the time went.
phase() { echo "== $* (${SECONDS}s) =="; }
fuzz_seconds="${FUZZ_SECONDS:-30}"

phase "JavaScript test tools (npm ci from the lockfiles)"
tests/js/install.sh
(cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund; })

phase "build (sanitizers, clang-19)"
# Line tables only (-g1): sanitizer reports keep file:line, and the tree is a
# fraction of full debug info's size (which filled a CI machine's disk).
# clang: the same ASan and UBSan, and a third less compile time than GCC's
# instrumented build (10 min instead of 16 here, on two cores); it also
# checks the code with a second compiler's warnings. GCC builds the Release
# tree below.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
  -DTURNKEY_SANITIZE=ON -DTURNKEY_BENCH=OFF \
  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 >/dev/null
cmake --build build-asan -j"$jobs"

phase "build (fuzz, clang-19)"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTURNKEY_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_targets

phase "build (Release: turnkey and what the integration tests run)"
# Release: the integration tests need optimised code, not debug info (a third
# less compile time on CI's two cores). Only the targets the integration tests
# and bench/ need: the unit tests' own code (about 40% of the tree's compile
# time) is built and run under the sanitizers above.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" --target turnkey signal_protocol_test_server bench_tools

phase "fuzz (${fuzz_seconds}s per target)"
for target in build-fuzz/tests/fuzz/*_fuzz; do
  [[ -x "$target" ]] || continue
  corpus="build-fuzz/corpus/$(basename "$target")"
  mkdir -p "$corpus"
  seeds="tests/fuzz/corpus/$(basename "$target")"
  [[ -d "$seeds" ]] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  "$target" -max_total_time="$fuzz_seconds" -print_final_stats=0 "$corpus" 2>&1 | tail -n 2
done

phase "unit tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs"

phase "integration tests (Release)"
ctest --test-dir build -L integration --output-on-failure -j"$jobs"
phase "all tests passed"
