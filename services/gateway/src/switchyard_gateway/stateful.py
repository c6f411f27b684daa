"""The stateful APIs on the gateway (Conversations, Responses), installed on its app.

``install_stateful(app)`` adds their routes and, once the gateway's lifespan has built its
forwarding, the objects they use: the session service client (when ``session_url`` is set),
a forwarder routing each conversation to one instance while it is healthy and not full (so
its prompt cache is reused), and the tokenizer that counts context with the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_gateway.api import conversations, responses, responses_socket
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.forwarding import Forwarder
from switchyard_gateway.handling import Gateway
from switchyard_gateway.policies import SessionAffinity
from switchyard_gateway.responses.background import BackgroundRunner
from switchyard_gateway.responses.turns import Turns
from switchyard_gateway.responses.window import Tokenizer
from switchyard_gateway.session_client import SessionClient


def affinity_forwarder(forwarder: Forwarder) -> Forwarder:
    """The gateway's forwarder with session affinity, whatever its own policy."""
    return Forwarder(
        forwarder.pool,
        SessionAffinity(forwarder.policy.per_instance_limit),
        forwarder.client,
        total_timeout=forwarder.total_timeout,
        max_attempts=forwarder.max_attempts,
        backoff_base=forwarder.backoff_base,
        backoff_max=forwarder.backoff_max,
        retry_deadline=forwarder.retry_deadline,
        aliases=forwarder.aliases,
        fallbacks=forwarder.fallbacks,
    )


def background_runner(
    app: FastAPI, turns: Turns, sessions: SessionClient | None
) -> BackgroundRunner | None:
    """The runner of background responses (None without the session service)."""
    settings: GatewaySettings = app.state.settings
    if sessions is None:
        return None
    return BackgroundRunner(
        turns, sessions, getattr(app.state, "events", None), app.state.gateway.metrics,
        owner=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}",
        lease_seconds=settings.background_lease_seconds,
        poll_seconds=settings.background_poll_seconds,
        concurrency=settings.background_concurrency,
    )  # fmt: skip


def install_stateful(app: FastAPI) -> None:
    """Serve the Conversations and Responses APIs on ``app`` (the gateway's)."""
    settings: GatewaySettings = app.state.settings
    session_url = settings.session_url
    token = settings.session_token
    session_token = token.get_secret_value() if token is not None else None
    app.include_router(conversations.router)
    app.include_router(responses.router)
    app.include_router(responses_socket.router)
    gateway_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with gateway_lifespan(app) as state:
            gateway: Gateway = app.state.gateway
            sessions = SessionClient(session_url, session_token) if session_url else None
            http = create_http_client(HttpClientConfig(read_timeout=30.0))
            app.state.sessions = sessions
            app.state.turns = turns = Turns(
                affinity_forwarder(gateway.forwarder),
                sessions,
                Tokenizer(gateway.forwarder.pool, http),
                gateway.account,
                gateway.truncated,
            )
            app.state.background = runner = background_runner(app, turns, sessions)
            task = asyncio.create_task(runner.run_forever()) if runner else None
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await http.aclose()
                if sessions is not None:
                    await sessions.aclose()

    app.router.lifespan_context = lifespan
