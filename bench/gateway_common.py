"""What the gateway benchmark's modules share: paths, the request body, loopback HTTP."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
MODEL = "bench-model"
BODY = {
    "model": MODEL,
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "What color is the sky?"}],
}


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The harness env without proxy settings (everything here is loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def chat(base: str, api_key: str | None) -> int:
    """One chat request; its status, or 0 for no answer or a 200 without choices."""
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    status, data = http("POST", f"{base}/v1/chat/completions", json.dumps(BODY).encode(), headers)
    return 0 if status == 200 and b'"choices"' not in data else status


def chat_ok(base: str, api_key: str | None) -> Callable[[], bool]:
    return lambda: chat(base, api_key) == 200
