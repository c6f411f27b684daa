"""Dependencies: the caller's tenant, the internal token, and lifespan-owned objects."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.db import Database
from switchyard_webhook.dispatcher import Dispatcher
from switchyard_webhook.sender import Sender
from switchyard_webhook.ssrf import TargetPolicy


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_policy(request: Request) -> TargetPolicy:
    policy: TargetPolicy = request.app.state.policy
    return policy


def get_sender(request: Request) -> Sender:
    sender: Sender = request.app.state.sender
    return sender


def get_dispatcher(request: Request) -> Dispatcher | None:
    dispatcher: Dispatcher | None = request.app.state.dispatcher
    return dispatcher


def get_clock(request: Request) -> float:
    """Now, from the app's clock (injectable in tests)."""
    clock = getattr(request.app.state, "clock", time.time)
    return float(clock())


def get_settings(request: Request) -> WebhookSettings:
    settings: WebhookSettings = request.app.state.settings
    return settings


DbDep = Annotated[Database, Depends(get_db)]
PolicyDep = Annotated[TargetPolicy, Depends(get_policy)]
SenderDep = Annotated[Sender, Depends(get_sender)]
DispatcherDep = Annotated[Dispatcher | None, Depends(get_dispatcher)]
NowDep = Annotated[float, Depends(get_clock)]
SettingsDep = Annotated[WebhookSettings, Depends(get_settings)]
