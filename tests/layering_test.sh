#!/usr/bin/env bash
# Checks the include rules of DESIGN.md section 1:
#  - a folder includes only the folders below it (the arrows);
#  - only net/ includes libevent, only config/ yaml-cpp, only sql/ sqlite3/mysql;
#  - relay/ and signal/ never include each other.
set -uo pipefail
root="${1:-$(dirname "$0")/..}"
cd "$root" || exit 2

declare -A allowed=(
  [base]=""
  [stun]="base"
  [auth]="base"
  [metrics]="base"
  [sql]="base"
  [net]="base"
  [config]="base"
  [relay]="stun auth metrics net base"
  [signal]="auth sql metrics net base"
  [app]="config relay signal net sql stun auth metrics base"
)
failures=0
fail() { echo "layering: $*"; failures=$((failures + 1)); }

for dir in "${!allowed[@]}"; do
  [[ -d "$dir" ]] || continue
  while IFS= read -r line; do
    file="${line%%:*}"
    inc=$(sed -E 's/.*#include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$line")
    case "$inc" in
      event2/*|event.h|evhttp.h)
        [[ "$dir" == net ]] || fail "$file includes $inc (only net/ may use libevent)";;
      yaml-cpp/*)
        [[ "$dir" == config ]] || fail "$file includes $inc (only config/ may use yaml-cpp)";;
      sqlite3.h|mysql.h|mysql/*|mariadb/*)
        [[ "$dir" == sql ]] || fail "$file includes $inc (only sql/ may use database clients)";;
      */*)
        top="${inc%%/*}"
        if [[ -n "${allowed[$top]+x}" && "$top" != "$dir" ]]; then
          [[ " ${allowed[$dir]} " == *" $top "* ]] || fail "$file includes $inc ($dir/ may include only: ${allowed[$dir]:-nothing})"
        fi;;
    esac
  done < <(grep -rHE '^[[:space:]]*#[[:space:]]*include' "$dir" --include='*.h' --include='*.cc' --include='*.hpp' --include='*.cpp')
done

if [[ $failures -gt 0 ]]; then
  echo "layering: $failures violation(s)"
  exit 1
fi
echo "layering: ok"
