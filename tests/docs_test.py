#!/usr/bin/env python3
"""docs_metrics_names: the docs name only metrics that exist.

Reads the metric families that metrics/turnkey_metrics.cc registers (names
from the constants in metrics/turnkey_metrics.h, label names and allowed
label values from the registration code) and checks:

  1. every `turnkey_*` name in docs/*.md, README.md and
     docs/grafana-dashboard.json is a registered family (or the _bucket,
     _sum or _count series of a histogram);
  2. in PromQL (the fenced code blocks of docs/metrics.md and the dashboard's
     targets), every label matcher names a label of that metric and, where the
     label has a fixed set of values, a value it can take; every label in
     by/without/on/ignoring/group_* clauses and in legend templates belongs to
     a metric of the same expression;
  3. docs/metrics.md mentions every registered family;
  4. docs/grafana-dashboard.json is valid JSON, declares the DS_PROMETHEUS
     data source variable, and every panel and target uses it; its queries
     use every registered family (docs/metrics.md says it graphs them all).

Usage: docs_test.py [SOURCE_DIR]
"""

import json
import pathlib
import re
import sys

# Labels Prometheus adds to every series of a scrape.
TARGET_LABELS = {"job", "instance"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Every label with a fixed value list also takes this (metrics/metric_spec.h).
OTHER_VALUE = "other"

NAME_RE = re.compile(r"(?<![\w/.-])turnkey_[a-z0-9_]*[a-z0-9](?![\w])(?!\.(?:cc|h|py|json|md|yaml)\b)")


class Family:
    def __init__(self, name, kind):
        self.name = name
        self.kind = kind  # counter | gauge | histogram
        self.labels = {}  # label name -> set of values, or None for any value

    def series_labels(self, series):
        labels = dict(self.labels)
        if self.kind == "histogram" and series == self.name + "_bucket":
            labels["le"] = None
        for label in TARGET_LABELS:
            labels[label] = None
        return labels


def string_array(text):
    return re.findall(r'"([^"]*)"', text)


def load_families(root):
    header = (root / "metrics/turnkey_metrics.h").read_text()
    source = (root / "metrics/turnkey_metrics.cc").read_text()

    names = dict(
        re.findall(r'inline constexpr std::string_view (k\w+)\s*=\s*"(turnkey_\w+)"', header))
    arrays = {
        ident: string_array(body) for ident, body in re.findall(
            r"inline constexpr std::array<std::string_view, \d+> (k\w+Values)\s*=\s*\{(.*?)\};",
            header, re.S)
    }
    turn_codes = re.search(r"std::array<uint16_t, \d+> kTurnCodes\s*=\s*\{(.*?)\};", header, re.S)
    if not turn_codes:
        sys.exit("docs_metrics_names: kTurnCodes not found in metrics/turnkey_metrics.h")
    # The `code` label of turnkey_turn_requests_total: TurnCodeValues().
    arrays["code_values"] = re.findall(r"\d+", turn_codes.group(1))

    families = {}
    for kind, body in re.findall(r"registry\.Add(Counter|Gauge|Histogram)\(\{(.*?)\}\);", source,
                                 re.S):
        const = re.search(r"\.name\s*=\s*std::string\((k\w+)\)", body)
        if not const or const.group(1) not in names:
            sys.exit(f"docs_metrics_names: cannot read a family name in: {body.strip()[:120]}")
        family = Family(names[const.group(1)], kind.lower())
        for label, values in re.findall(r'Label\("(\w+)",\s*(k\w+)\)', body):
            if values not in arrays:
                sys.exit(f"docs_metrics_names: unknown value list {values} for {family.name}")
            family.labels[label] = set(arrays[values]) | {OTHER_VALUE}
        for label, values in re.findall(r'\{\s*\.name\s*=\s*"(\w+)"\s*(?:,\s*\.values\s*=\s*(\w+))?\s*\}',
                                        body):
            if values and values not in arrays:
                sys.exit(f"docs_metrics_names: unknown value list {values} for {family.name}")
            family.labels[label] = (set(arrays[values]) | {OTHER_VALUE}) if values else None
        families[family.name] = family

    unregistered = set(names.values()) - set(families)
    if unregistered:
        sys.exit("docs_metrics_names: constants not registered in turnkey_metrics.cc: " +
                 ", ".join(sorted(unregistered)))
    return families


def resolve(series, families):
    """The family a series name belongs to, or None."""
    if series in families:
        return families[series]
    for suffix in HISTOGRAM_SUFFIXES:
        base = series[:-len(suffix)] if series.endswith(suffix) else None
        if base and base in families and families[base].kind == "histogram":
            return families[base]
    return None


def check_names(where, text, families, errors):
    for match in NAME_RE.finditer(text):
        if resolve(match.group(0), families) is None:
            errors.append(f"{where}: {match.group(0)} is not a metric in metrics/turnkey_metrics.cc")


SELECTOR_RE = re.compile(r"(turnkey_[a-z0-9_]*[a-z0-9])\s*\{([^}]*)\}")
MATCHER_RE = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def check_expression(where, expr, families, errors, legend=""):
    """Checks the label matchers and groupings of one PromQL expression."""
    known = {}  # label -> True, for every metric of the expression
    for match in NAME_RE.finditer(expr):
        family = resolve(match.group(0), families)
        if family is not None:
            known.update(dict.fromkeys(family.series_labels(match.group(0))))
    for series, body in SELECTOR_RE.findall(expr):
        family = resolve(series, families)
        if family is None:
            continue  # reported by check_names
        labels = family.series_labels(series)
        for label, op, value in MATCHER_RE.findall(body):
            if label not in labels:
                errors.append(f"{where}: {series} has no label {label!r}")
                continue
            allowed = labels[label]
            if allowed is None or "$" in value:
                continue
            if op in ("=", "!="):
                values = [value]
            elif re.fullmatch(r"[\w|]+", value):
                values = value.split("|")
            else:
                continue  # a real regular expression: not checked
            for v in values:
                if v not in allowed:
                    errors.append(f"{where}: {series}{{{label}}} never has the value {v!r} "
                                  f"(values: {', '.join(sorted(allowed))})")
    for _, names in GROUPING_RE.findall(expr):
        for label in filter(None, (n.strip() for n in names.split(","))):
            if label not in known:
                errors.append(f"{where}: label {label!r} in a grouping belongs to no metric of: "
                              f"{' '.join(expr.split())[:100]}")
    for label in LEGEND_RE.findall(legend):
        if label not in known:
            errors.append(f"{where}: legend {{{{{label}}}}} is not a label of: "
                          f"{' '.join(expr.split())[:100]}")


def code_blocks(markdown):
    return re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.S | re.M)


def check_dashboard(path, families, errors):
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        errors.append(f"{path.name}: not valid JSON: {e}")
        return
    variables = dashboard.get("templating", {}).get("list", [])
    if not any(v.get("name") == "DS_PROMETHEUS" and v.get("type") == "datasource"
               and v.get("query") == "prometheus" for v in variables):
        errors.append(f"{path.name}: no datasource variable DS_PROMETHEUS of type prometheus")

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    targets = 0
    used = set()
    for panel in panels(dashboard.get("panels", [])):
        title = panel.get("title", "?")
        if panel.get("type") == "row":
            continue
        ds = panel.get("datasource", {})
        if ds.get("uid") != "${DS_PROMETHEUS}":
            errors.append(f"{path.name}: panel {title!r} does not use ${{DS_PROMETHEUS}}")
        for target in panel.get("targets", []):
            targets += 1
            if target.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                errors.append(f"{path.name}: a target of {title!r} does not use ${{DS_PROMETHEUS}}")
            expr = target.get("expr", "")
            if not expr:
                errors.append(f"{path.name}: a target of {title!r} has no expr")
            check_expression(f"{path.name} [{title}]", expr, families, errors,
                             target.get("legendFormat", ""))
            used.update(f.name for f in (resolve(n, families) for n in NAME_RE.findall(expr)) if f)
    if targets == 0:
        errors.append(f"{path.name}: no queries found")
    for name in sorted(set(families) - used):
        errors.append(f"{path.name}: no panel graphs {name}")


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
    families = load_families(root)
    if len(families) < 10:
        sys.exit(f"docs_metrics_names: only {len(families)} families parsed; the parser is stale")

    errors = []
    docs = sorted((root / "docs").glob("*.md")) + [root / "README.md"]
    dashboard = root / "docs/grafana-dashboard.json"
    for path in docs + [dashboard]:
        if not path.exists():
            errors.append(f"{path.relative_to(root)} is missing")
            continue
        check_names(str(path.relative_to(root)), path.read_text(), families, errors)

    metrics_md = root / "docs/metrics.md"
    if metrics_md.exists():
        text = metrics_md.read_text()
        for i, block in enumerate(code_blocks(text)):
            check_expression(f"docs/metrics.md code block {i + 1}", block, families, errors)
        for name in sorted(families):
            if f"`{name}`" not in text:
                errors.append(f"docs/metrics.md does not document {name}")
    if dashboard.exists():
        check_dashboard(dashboard, families, errors)

    for e in errors:
        print(f"docs_metrics_names: FAIL: {e}")
    if errors:
        return 1
    print(f"docs_metrics_names: ok ({len(families)} families checked against the docs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
