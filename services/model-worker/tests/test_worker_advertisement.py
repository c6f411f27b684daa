"""The worker's Consul registration: its models as ``model=<name>`` tags, its capacity."""

from __future__ import annotations

from switchyard_common.registration import MODEL_TAG_PREFIX, advertisement, service_definition
from switchyard_model_worker.advertisement import advertise_worker
from switchyard_model_worker.config import WorkerSettings
from switchyard_model_worker.main import create_app


def test_models_backend_and_capacity_reach_the_registration() -> None:
    settings = WorkerSettings(
        registration={"gpu_type": "nvidia-l4", "gpu_count": 2, "advertise_address": "10.0.0.7"}
    )
    app = create_app(settings)
    advertise_worker(app, models=["smol", "", "smol-alias"], backend="llamacpp", max_concurrency=3)
    definition = service_definition(settings, advertisement(app))
    assert f"{MODEL_TAG_PREFIX}smol" in definition["tags"]
    assert f"{MODEL_TAG_PREFIX}smol-alias" in definition["tags"]
    assert f"{MODEL_TAG_PREFIX}" not in definition["tags"]
    meta = definition["meta"]
    assert meta["models"] == "smol,smol-alias"
    assert (meta["backend"], meta["max_concurrency"]) == ("llamacpp", "3")
    assert (meta["gpu_type"], meta["gpu_count"]) == ("nvidia-l4", "2")
