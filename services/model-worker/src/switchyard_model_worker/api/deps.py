"""Dependencies handing lifespan-owned objects to handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from switchyard_model_worker.config import WorkerSettings
from switchyard_model_worker.engine import Engine


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> WorkerSettings:
    settings: WorkerSettings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[WorkerSettings, Depends(get_settings)]
