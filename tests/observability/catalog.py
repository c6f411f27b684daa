"""What the services expose on ``/metrics``, and what ``docs/metrics.md`` says they expose.

The doc's tables have one row per family: ``| `name` | type | `label`, ... | meaning |``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
# Labels Prometheus adds to histogram and summary samples, not the family's own.
_SAMPLE_LABELS = {"le", "quantile"}
_ROW = re.compile(r"^\|\s*`(?P<name>switchyard_\w+)`\s*\|\s*(?P<type>\w+)\s*\|(?P<labels>[^|]*)\|")


@dataclass
class Family:
    name: str  # as exposed (counters with their _total)
    type: str
    help: str = ""
    labels: set[str] = field(default_factory=set)
    series: int = 0
    section: str = ""


def parse_exposition(text: str) -> dict[str, Family]:
    """Families in a /metrics text, without prometheus_client's ``_created`` companions."""
    raw = list(text_string_to_metric_families(text))
    names = {f.name for f in raw}
    out: dict[str, Family] = {}
    for f in raw:
        if f.name.endswith("_created") and f.name.removesuffix("_created") in names:
            continue
        name = f"{f.name}_total" if f.type == "counter" else f.name
        fam = Family(name, f.type, f.documentation)
        for s in f.samples:
            if s.name.endswith("_created"):
                continue
            fam.labels |= set(s.labels) - _SAMPLE_LABELS
            if not s.name.endswith(("_bucket", "_sum")):
                fam.series += 1
        out[name] = fam
    return out


def parse_doc(text: str) -> dict[str, Family]:
    """Rows of the doc's tables, each with the ``##`` section it is under."""
    out: dict[str, Family] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if m := _ROW.match(line):
            labels = set(re.findall(r"`(\w+)`", m["labels"]))
            out[m["name"]] = Family(m["name"], m["type"], labels=labels, section=section)
    return out
