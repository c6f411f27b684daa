"""Model-worker benchmark: engine overhead and admission under concurrency (`make bench-worker`).

1. Engine overhead, same model (SmolLM2-135M GGUF), same machine, rounds interleaved:
   - llama.cpp in-process: ``llama_cpp.Llama`` called directly vs the worker (llamacpp backend)
   - engine server: ``python -m llama_cpp.server`` hit directly vs the worker in front of it
     (openai-compatible backend)
   Measured per streamed request: time to first token (TTFT) and decode tokens/s.
   Goal: worker overhead under 3% on tokens/s and under 5 ms on p50 TTFT.
2. Concurrency 1, 4 and 16 against the llamacpp worker (capacity 1, queue 4): aggregate
   throughput, no errors while requests fit in capacity + queue, fast 429s beyond it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worker_procs import (
    Proc,
    StreamResult,
    start_engine,
    start_worker,
    stream_chat,
)

from switchyard_model_worker.model_files import default_gguf_path

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
NO_EOS = {"0": -100, "1": -100, "2": -100}
DIRECT, WORKER = "llama_cpp.Llama (direct)", "worker, llamacpp backend"
ENGINE, RELAY = "llama_cpp.server (direct)", "worker, openai-compatible"


def raw_llama_run(llm: Any, max_tokens: int) -> StreamResult:
    """``llama_cpp.Llama`` streaming the same chat request, timed the same way."""
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    for chunk in llm.create_chat_completion(
        messages=MESSAGES,
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
        logit_bias={int(k): v for k, v in NO_EOS.items()},
    ):
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            first = first or now
            last = now
            tokens += 1
    total = time.perf_counter() - started
    tps = (tokens - 1) / (last - first) if tokens > 1 else 0.0
    return StreamResult(200, first - started, tokens, tps, total)


def summarize(results: list[StreamResult]) -> tuple[float, float]:
    ok = [r for r in results if r.status == 200]
    ttft = statistics.median(r.ttft for r in ok) * 1000
    tps = statistics.median(r.decode_tps for r in ok)
    return ttft, tps


Results = dict[str, dict[str, list[StreamResult]]]


def run_overhead(
    args: argparse.Namespace, llm: Any, worker: Proc, engine: Proc, relay: Proc
) -> Results:
    """Two phases, each interleaving the four paths round by round (alternating order, so
    drift from other load on the machine hits every path alike):

    - ttft: many short requests (2 tokens), for a stable p50 time to first token;
    - decode: fewer long requests (``--max-tokens``), for decode tokens/s.
    """

    def body(max_tokens: int, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "messages": MESSAGES,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "logit_bias": NO_EOS,
        }

    def targets(n: int) -> list[tuple[str, Callable[[httpx.Client], StreamResult]]]:
        name = "smollm2-135m-instruct"
        return [
            (DIRECT, lambda c: raw_llama_run(llm, n)),
            (WORKER, lambda c: stream_chat(c, worker.url, body(n, name))),
            (ENGINE, lambda c: stream_chat(c, engine.url, body(n, "engine"))),
            (RELAY, lambda c: stream_chat(c, relay.url, body(n, name))),
        ]

    phases = {"ttft": (args.ttft_rounds, 2), "decode": (args.rounds, args.max_tokens)}
    out: Results = {}
    with httpx.Client(timeout=300) as client:
        for phase, (rounds, max_tokens) in phases.items():
            paths = targets(max_tokens)
            results: dict[str, list[StreamResult]] = {name: [] for name, _ in paths}
            for _, run in paths:  # warm-up: the same request primes each prefix cache
                run(client)
            for i in range(rounds):
                for name, run in paths if i % 2 == 0 else paths[::-1]:
                    results[name].append(run(client))
            print(f"  {phase} phase: {rounds} rounds done", file=sys.stderr, flush=True)
            out[phase] = results
        # The floor under any HTTP path on this machine: one loopback round trip.
        rtts = []
        for _ in range(100):
            t = time.perf_counter()
            client.get(f"{worker.url}/healthz")
            rtts.append(StreamResult(200, time.perf_counter() - t, 0, 0.0, 0.0))
        out["rtt"] = {"GET /healthz": rtts}
    return out


def print_overhead(
    results: dict[str, dict[str, list[StreamResult]]], args: argparse.Namespace
) -> bool:
    print()
    print(
        f"Engine overhead: SmolLM2-135M Q4_1, streamed chat, greedy, EOS banned, prompt prefix "
        f"cache on, {args.threads} llama.cpp thread(s).\nTTFT: p50 of {args.ttft_rounds} "
        f"2-token requests; decode: p50 of {args.rounds} {args.max_tokens}-token requests.\n"
        "Ratio and delta: medians of the per-round pairs (each round runs both paths back to "
        "back, so load from elsewhere on the machine mostly cancels out)."
    )
    header = f"{'path':<28}{'TTFT p50 ms':>13}{'decode tok/s':>14}"
    header += f"{'tok/s ratio':>13}{'TTFT delta ms':>15}"
    print(header)
    print("-" * len(header))
    ok = True
    for base, via in ((DIRECT, WORKER), (ENGINE, RELAY)):
        b_ttft, v_ttft = (summarize(results["ttft"][p])[0] for p in (base, via))
        b_tps, v_tps = (summarize(results["decode"][p])[1] for p in (base, via))
        pairs = zip(results["ttft"][base], results["ttft"][via], strict=True)
        delta = statistics.median((v.ttft - b.ttft) * 1000 for b, v in pairs)
        pairs = zip(results["decode"][base], results["decode"][via], strict=True)
        ratio = statistics.median(v.decode_tps / b.decode_tps for b, v in pairs)
        print(f"{base:<28}{b_ttft:>13.1f}{b_tps:>14.1f}{'1.000':>13}{'':>15}")
        print(f"{via:<28}{v_ttft:>13.1f}{v_tps:>14.1f}{ratio:>13.3f}{delta:>+15.1f}")
        good = ratio >= 0.97 and delta < 5.0
        ok &= good
        verdict = "meets" if good else "MISSES"
        print(f"  -> {verdict} the goal (tok/s ratio >= 0.97, TTFT delta < 5 ms)")
    rtt = statistics.median(r.ttft for r in results["rtt"]["GET /healthz"]) * 1000
    print(f"(one loopback HTTP round trip to the worker, GET /healthz: p50 {rtt:.2f} ms)")
    return ok


def run_concurrency(args: argparse.Namespace, worker: Proc) -> None:
    body = {
        "model": "smollm2-135m-instruct",
        "messages": MESSAGES,
        "max_tokens": args.concurrency_tokens,
        "temperature": 0,
        "stream": True,
        "logit_bias": NO_EOS,
    }
    load = httpx.get(f"{worker.url}/load").json()
    print()
    print(
        f"Concurrency (llamacpp worker: capacity {load['capacity']}, queue {load['max_queue']}; "
        f"{args.concurrency_tokens} tokens per request; all clients start together)"
    )
    header = f"{'clients':>8}{'ok':>5}{'429':>5}{'other':>7}{'agg tok/s':>11}"
    header += f"{'ok p50 s':>10}{'ok max s':>10}{'429 p50 ms':>12}{'429 max ms':>12}"
    print(header)
    print("-" * len(header))
    for clients in (1, 4, 16):
        per_client = {1: 4, 4: 2, 16: 1}[clients]

        def client_loop(_: int, n: int = per_client) -> list[StreamResult]:
            with httpx.Client(timeout=300) as c:
                return [stream_chat(c, worker.url, body) for _ in range(n)]

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            results = [r for batch in pool.map(client_loop, range(clients)) for r in batch]
        wall = time.perf_counter() - started
        ok = [r for r in results if r.status == 200]
        rejected = [r for r in results if r.status == 429]
        other = len(results) - len(ok) - len(rejected)
        agg = sum(r.tokens for r in ok) / wall
        ok_p50 = statistics.median(r.total for r in ok) if ok else 0.0
        ok_max = max((r.total for r in ok), default=0.0)
        rej_ms = [r.total * 1000 for r in rejected]
        rej_p50 = f"{statistics.median(rej_ms):.1f}" if rej_ms else "-"
        rej_max = f"{max(rej_ms):.1f}" if rej_ms else "-"
        print(
            f"{clients:>8}{len(ok):>5}{len(rejected):>5}{other:>7}{agg:>11.1f}"
            f"{ok_p50:>10.2f}{ok_max:>10.2f}{rej_p50:>12}{rej_max:>12}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="decode-phase rounds")
    parser.add_argument("--ttft-rounds", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--concurrency-tokens", type=int, default=32)
    # One llama.cpp thread by default: with every core busy in llama.cpp, any other work on
    # the machine stalls its threads and the figures turn to noise.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when an overhead goal is missed"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (about a minute): fewer, shorter rounds"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.ttft_rounds, args.max_tokens = 3, 15, 48

    from llama_cpp import Llama

    started = time.perf_counter()
    gguf = default_gguf_path()
    log_dir = Path(tempfile.mkdtemp(prefix="worker-bench-"))
    print(f"model {gguf.name}, {args.threads} threads, logs in {log_dir}", file=sys.stderr)
    engine = start_engine(gguf, args.threads, log_dir)
    worker = start_worker(
        "worker-llamacpp",
        log_dir,
        n_threads=str(args.threads),
        # Like llama_cpp.Llama and llama_cpp.server: keep the KV cache of a shared prefix.
        reuse_prompt_prefix="true",
        max_queue="4",
        queue_timeout_seconds="300",
    )
    relay = start_worker(
        "worker-relay",
        log_dir,
        backend="openai-compatible",
        engine_url=engine.url,
        engine_metrics_path="",
        max_queue="4",
    )
    procs = [engine, worker, relay]
    try:
        engine.wait_ready("/v1/models")
        worker.wait_ready("/readyz")
        relay.wait_ready("/readyz")
        llm = Llama(
            model_path=str(gguf),
            n_ctx=2048,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            n_batch=512,
            verbose=False,
        )
        results = run_overhead(args, llm, worker, engine, relay)
        llm.close()
        relay.stop()
        engine.stop()
        ok = print_overhead(results, args)
        run_concurrency(args, worker)
    finally:
        for p in procs:
            p.stop()
    print(f"\ntotal bench time {time.perf_counter() - started:.0f} s")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
