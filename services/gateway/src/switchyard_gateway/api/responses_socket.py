"""``/v1/responses`` as a WebSocket (``client.responses.connect()``): the key is checked at
the upgrade; each ``response.create`` message is answered by the same events as the SSE
stream, one turn at a time per connection. A ``response.create`` sent while a turn runs gets
an ``error`` event (turns never interleave); ``response.steer`` is unsupported. Closing the
socket mid-turn stops the generation on the worker and frees its slot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from switchyard_common.errors import SwitchyardError
from switchyard_gateway.handling import Gateway
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.responses.request import parse_turn
from switchyard_gateway.responses.turns import Turns, release

log = logging.getLogger(__name__)

router = APIRouter()

# Close code for a refused upgrade: policy violation (a missing or wrong key).
POLICY_VIOLATION = 1008


class Socket:
    """One connection: sends are serialized (the turn and the receive loop both send)."""

    def __init__(self, websocket: WebSocket, gateway: Gateway, turns: Turns, key: ApiKey) -> None:
        self.websocket = websocket
        self.gateway = gateway
        self.turns = turns
        self.key = key
        self._lock = asyncio.Lock()
        self.running: asyncio.Task[None] | None = None

    async def send(self, event: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_text(orjson.dumps(event).decode())

    async def error(self, message: str, code: str, param: str | None = None) -> None:
        await self.send({"type": "error", "sequence_number": 0, "code": code,
                         "message": message, "param": param})  # fmt: skip

    async def turn(self, message: dict[str, Any]) -> None:
        # stream is implicit; stream_id and generate are WebSocket-only envelope fields.
        body = {
            k: v for k, v in message.items() if k not in ("type", "stream", "stream_id", "generate")
        }
        try:
            await self.gateway.admit(self.key)
            turn = parse_turn(body)
            turn.stream = True
            # A turn holds a slot of the gateway's in-flight bound, as over HTTP.
            with self.gateway.slot(self.gateway.model_label(turn.model), "responses"):
                started = await self.turns.start(turn, self.key, None)
                events = self.turns.events(started)
                try:
                    async for event in events:
                        await self.send(event)
                finally:
                    await events.aclose()
                    release(started)  # also when cancelled before the events began
        except SwitchyardError as exc:
            await self.error(exc.message, exc.code or "invalid_request", exc.param)

    async def handle(self, raw: str) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("Messages must be JSON objects.", "invalid_json")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "response.create":
            if self.running is not None and not self.running.done():
                await self.error(
                    "A response is already in progress on this connection; wait for its "
                    "response.completed before sending another response.create.",
                    "response_in_progress",
                )
                return
            self.running = asyncio.create_task(self.turn(message))
        elif kind == "response.steer":
            await self.error("response.steer is not supported by this server.",
                             "unsupported_event", "type")  # fmt: skip
        else:
            await self.error(f"Unknown event type {kind!r}.", "unknown_event", "type")

    async def close(self) -> None:
        if self.running is not None and not self.running.done():
            self.running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.running


@router.websocket("/v1/responses")
async def responses_socket(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.gateway
    try:
        key = await gateway.keys.authenticate(websocket.headers.get("authorization"))
    except SwitchyardError as exc:
        await websocket.close(code=POLICY_VIOLATION, reason=exc.message[:120])
        return
    await websocket.accept()
    socket = Socket(websocket, gateway, websocket.app.state.turns, key)
    try:
        while True:
            await socket.handle(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        await socket.close()
