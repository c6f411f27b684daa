"""The chart's dashboards: their files, their queries with variables substituted, and a
picture of each one's layout with the values its queries return."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.observability.catalog import ROOT

DASHBOARDS = ROOT / "charts" / "switchyard" / "dashboards"
PICTURES = ROOT / "docs" / "dashboards"
METRIC = re.compile(r"\b((?:switchyard|DCGM)_\w+)")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


@dataclass
class Query:
    dashboard: str
    panel: dict[str, Any]
    expr: str

    @property
    def conditional(self) -> bool:
        return str(self.panel.get("description", "")).startswith("Conditional:")


def queries(dashboards: dict[str, dict[str, Any]]) -> Iterator[Query]:
    for name, board in dashboards.items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield Query(name, panel, target["expr"])


def substitute(expr: str, values: dict[str, str]) -> str:
    for var, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(f"${{{var}}}", value).replace(f"${var}", value)
    return expr


def metric_names(expr: str) -> set[str]:
    return set(METRIC.findall(expr))


def draw(board: dict[str, Any], values: dict[int, str], path: Path) -> None:
    """The dashboard's grid (24 columns) with each panel's title and current values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    panels = board["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig, ax = plt.subplots(figsize=(16, rows * 0.42 + 0.8), dpi=80)
    ax.set_xlim(0, 24)
    ax.set_ylim(rows, -1.2)
    ax.axis("off")
    ax.text(0, -0.6, board["title"], fontsize=16, weight="bold", va="center")
    variables = " ".join(f"[{v['label']}]" for v in board["templating"]["list"])
    ax.text(24, -0.6, variables, fontsize=10, ha="right", va="center", color="#555")
    for p in panels:
        g = p["gridPos"]
        conditional = str(p.get("description", "")).startswith("Conditional:")
        ax.add_patch(FancyBboxPatch((g["x"] + 0.1, g["y"] + 0.1), g["w"] - 0.2, g["h"] - 0.2,
                                    boxstyle="round,pad=0,rounding_size=0.2",
                                    facecolor="#f4f4f4" if conditional else "#e8f1fb",
                                    edgecolor="#888"))  # fmt: skip
        ax.text(g["x"] + 0.4, g["y"] + 0.8, p["title"], fontsize=9, weight="bold", va="top",
                wrap=True)  # fmt: skip
        ax.text(g["x"] + 0.4, g["y"] + 2.0, values.get(p["id"], ""), fontsize=8, va="top",
                family="monospace", color="#333")  # fmt: skip
        ax.text(g["x"] + g["w"] - 0.4, g["y"] + g["h"] - 0.5, p["type"], fontsize=7,
                ha="right", color="#777")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def summarize(result: list[dict[str, Any]], legend: str, limit: int = 4) -> list[str]:
    """A few ``legend = value`` lines from an instant query's result."""
    lines = []
    for series in result[:limit]:
        labels = series["metric"]
        name = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), legend)
        if legend == "__auto" or not name.strip():
            name = ",".join(f"{v}" for k, v in labels.items() if k != "__name__") or "value"
        value = float(series["value"][1])
        lines.append(f"{name[:28]:<28} {value:.4g}")
    if len(result) > limit:
        lines.append(f"... {len(result) - limit} more")
    return lines
