"""The gateway benchmark's report: tables, our gateway's ratios to each peer (and to a
``--baseline-ref`` gateway), and the bar as PASS/FAIL lines (never fatal)."""

from __future__ import annotations

from typing import Any

from gateway_peers import PEERS

# The bar for our gateway against the peers, checked at every concurrency.
BAR_LITELLM_RPS_RATIO = 10.0  # at least 10x LiteLLM's req/s
BAR_VLLM_ROUTER_RPS_RATIO = 0.2  # at least 20% of vllm-router's req/s
BAR_VLLM_ROUTER_P99_RATIO = 2.0  # p99 at most 2x vllm-router's
BAR_MAX_ERROR_RATE = 0.001  # a run with more errors than this does not count


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_tables(report: dict[str, Any]) -> None:
    runs = report["runs"]
    print()
    print("Throughput and latency (non-streaming; wrk, same body, keep-alive)")
    header = f"{'target':<18} {'conc':>5} {'req/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r['target']:<18} {r['concurrency']:>5} {_fmt(r['rps'], 1):>11}"
            f" {_fmt(r['p50_ms']):>9} {_fmt(r['p99_ms']):>9} {r['errors']:>7}"
        )
    if report["ratios"]:
        print()
        print("Our gateway relative to each peer and baseline (req/s ratio: higher is better;")
        print("p99 ratio: lower is better)")
        header = f"{'peer':<18} {'conc':>5} {'gw/peer req/s':>14} {'gw/peer p99':>12}"
        print(header)
        print("-" * len(header))
        for r in report["ratios"]:
            print(
                f"{r['peer']:<18} {r['concurrency']:>5} {_fmt(r['rps_ratio']):>13}x"
                f" {_fmt(r['p99_ratio']):>11}x"
            )
    if report["stream"]:
        print()
        print("Streaming (full stream and time to first data: chunk)")
        header = (
            f"{'target':<18} {'conc':>5} {'streams/s':>10} {'ttfb p50':>9} {'ttfb p99':>9}"
            f" {'full p50':>9} {'full p99':>9} {'chunks':>7} {'errors':>7}"
        )
        print(header)
        print("-" * len(header))
        for s in report["stream"]:
            print(
                f"{s['target']:<18} {s['concurrency']:>5} {_fmt(s['streams_per_s'], 1):>10}"
                f" {_fmt(s['ttfb_ms']['p50']):>9} {_fmt(s['ttfb_ms']['p99']):>9}"
                f" {_fmt(s['total_ms']['p50']):>9} {_fmt(s['total_ms']['p99']):>9}"
                f" {_fmt(s['chunks_per_stream'], 1):>7} {s['errors']:>7}"
            )
    for name, reason in report["skipped"].items():
        print(f"SKIPPED {name}: {reason}")
    refusals: dict[str, list[dict[str, Any]]] = {}
    for r in [*runs, *report["stream"]]:
        if r.get("refused_before"):
            refusals.setdefault(r["target"], []).append(r)
    for name, hits in refusals.items():
        worst = max(h["settle_s"] for h in hits)
        statuses = sorted({s for h in hits for s in h["refused_before"]})
        print(
            f"NOTE {name}: after {len(hits)} of its runs ended (wrk drops its connections"
            f" with requests in flight) it did not answer 200 ({'; '.join(statuses)})"
            f" for up to {worst:.1f}s"
        )


def compute_ratios(report: dict[str, Any]) -> None:
    by = {(r["target"], r["concurrency"]): r for r in report["runs"]}
    baselines = [t for t in report["config"]["targets"] if t.startswith("gateway@")]
    for peer in [*baselines, *PEERS]:
        for conc in report["config"]["concurrency"]:
            gw, other = by.get(("gateway", conc)), by.get((peer, conc))
            if not gw or not other:
                continue
            report["ratios"].append(
                {
                    "peer": peer,
                    "concurrency": conc,
                    "rps_ratio": gw["rps"] / other["rps"] if other["rps"] else None,
                    "p99_ratio": gw["p99_ms"] / other["p99_ms"] if other["p99_ms"] else None,
                }
            )


# (peer, metric, comparison, threshold): gateway/peer ratio of the metric must hold.
BAR_RULES: list[tuple[str, str, str, float]] = [
    ("litellm", "rps", ">=", BAR_LITELLM_RPS_RATIO),
    ("vllm-router", "rps", ">=", BAR_VLLM_ROUTER_RPS_RATIO),
    ("vllm-router", "p99_ms", "<=", BAR_VLLM_ROUTER_P99_RATIO),
]


def _clean(run: dict[str, Any]) -> bool:
    return bool(run["errors"] <= BAR_MAX_ERROR_RATE * max(run["requests"], 1))


def check_bar(report: dict[str, Any]) -> None:
    """PASS/FAIL/SKIP lines for the bar, one per rule and concurrency (never fatal)."""
    by = {(r["target"], r["concurrency"]): r for r in report["runs"]}
    lines = report["bar"]
    for conc in report["config"]["concurrency"]:
        gw = by.get(("gateway", conc))
        for peer, metric, op, threshold in BAR_RULES:
            label = "req/s" if metric == "rps" else "p99"
            rule = f"gateway {label} {op} {threshold:g}x {peer}"
            other = by.get((peer, conc))
            ratio = None
            if gw is None or other is None:
                verdict, detail = "SKIP", "not measured"
            elif not _clean(gw) or not _clean(other):
                verdict, detail = "FAIL", "a run had errors (see the table)"
            elif not other[metric]:
                verdict, detail = "SKIP", f"{peer} {label} is zero"
            else:
                ratio = gw[metric] / other[metric]
                ok = ratio >= threshold if op == ">=" else ratio <= threshold
                verdict = "PASS" if ok else "FAIL"
                unit = "req/s" if metric == "rps" else "ms"
                detail = f"{gw[metric]:,.1f} vs {other[metric]:,.1f} {unit}: {ratio:.2f}x"
            lines.append(
                {
                    "verdict": verdict,
                    "concurrency": conc,
                    "rule": rule,
                    "ratio": ratio,
                    "detail": detail,
                }
            )
    print()
    print("The bar (informational; never changes the exit status)")
    for line in lines:
        print(f"{line['verdict']} c={line['concurrency']}: {line['rule']} ({line['detail']})")
