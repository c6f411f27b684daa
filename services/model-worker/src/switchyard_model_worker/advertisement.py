"""What the worker adds to its Consul registration, so gateways can route to it."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from switchyard_common.registration import MODEL_TAG_PREFIX, advertisement
from switchyard_common.settings import ServiceSettings


def advertise_worker(
    app: FastAPI, *, models: Sequence[str], backend: str, max_concurrency: int
) -> None:
    """Put the worker's models (as ``model=<name>`` tags and meta), backend and capacity in
    its registration; GPU type and count come from the registration settings."""
    settings: ServiceSettings = app.state.settings
    ad = advertisement(app)
    ad.tags.extend(f"{MODEL_TAG_PREFIX}{m}" for m in models if m)
    ad.meta.update(
        models=",".join(m for m in models if m),
        backend=backend,
        max_concurrency=str(max_concurrency),
        gpu_type=settings.registration.gpu_type or "none",
        gpu_count=str(settings.registration.gpu_count),
    )
