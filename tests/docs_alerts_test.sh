#!/usr/bin/env bash
# docs_alert_rules: the "Suggested alerts" of docs/metrics.md are valid
# Prometheus rules, and fire (or stay silent) in the cases they are written
# for: promtool test rules with tests/docs_alerts_test.yml. The input series
# are what turnkey exports, zeros included (every family with fixed labels
# writes its series from the first scrape; turnkey_turn_requests_total and
# turnkey_http_requests_total only once counted).
set -euo pipefail
root="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
awk '/^# turnkey.rules.yml/{found=1; next} found && /^```/{exit} found' \
  "$root/docs/metrics.md" >"$work/turnkey.rules.yml"
if [[ ! -s "$work/turnkey.rules.yml" ]]; then
  echo "docs_alert_rules: no '# turnkey.rules.yml' block in docs/metrics.md" >&2
  exit 1
fi
cp "$root/tests/docs_alerts_test.yml" "$work/"
cd "$work"
promtool check rules turnkey.rules.yml
promtool test rules docs_alerts_test.yml
