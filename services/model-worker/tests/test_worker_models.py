"""GET /v1/models, /load and /startupz on a loaded worker (real SmolLM2-135M)."""

from __future__ import annotations

import httpx

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess


def test_models_and_load(worker: ServiceProcess) -> None:
    models = httpx.get(f"{worker.url}/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [MODEL]
    load = httpx.get(f"{worker.url}/load").json()
    assert load == {"in_flight": 0, "queued": 0, "capacity": 1, "max_queue": 8}


def test_startupz_and_model_card(worker: ServiceProcess) -> None:
    r = httpx.get(f"{worker.url}/startupz")
    assert r.status_code == 200
    assert r.json()["status"] == "loaded" and r.json()["seconds"] > 0
    assert httpx.get(f"{worker.url}/v1/models/{MODEL}").json()["id"] == MODEL
    assert httpx.get(f"{worker.url}/v1/models/nope").status_code == 404
