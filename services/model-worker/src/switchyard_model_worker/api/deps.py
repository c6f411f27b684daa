"""Dependencies handing lifespan-owned objects to handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from switchyard_model_worker.config import WorkerSettings
from switchyard_model_worker.model_runner import ModelRunner


async def get_runner(request: Request) -> ModelRunner:
    runner: ModelRunner = request.app.state.runner
    return runner


async def get_settings(request: Request) -> WorkerSettings:
    settings: WorkerSettings = request.app.state.settings
    return settings


RunnerDep = Annotated[ModelRunner, Depends(get_runner)]
SettingsDep = Annotated[WorkerSettings, Depends(get_settings)]
