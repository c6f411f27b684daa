"""Background responses: queued on the session service, run by this gateway's runner.

``queue`` stores the response as ``queued`` and answers it at once. The runner (a task of
the gateway's lifespan) claims queued responses from the session service, at most
``concurrency`` at a time; a claim holds a lease that the runner renews every third of it
while the turn runs. When the renewal finds the response cancelled (or the lease taken by
another gateway after this one stalled), the generation is stopped: its worker stream is
closed, which frees the worker's slot. A gateway that dies leaves its lease to run out; the
next claim takes the response up again (the session service fails it after its attempts);
one shutting down gives its responses back at once.
Each end is published to the response's tenant: ``response.completed`` / ``failed`` /
``incomplete`` here, ``response.cancelled`` by the cancel route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

from switchyard_common.errors import SwitchyardError
from switchyard_common.webhook_publisher import WebhookPublisher
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.metrics import GatewayMetrics
from switchyard_gateway.responses.objects import TurnResponse
from switchyard_gateway.responses.request import TurnRequest, parse_turn
from switchyard_gateway.responses.turns import Turns
from switchyard_gateway.session_client import SessionClient

log = logging.getLogger(__name__)

INTERNAL = "/internal/v1/responses"
NO_TENANT = "-"  # claims, renewals and finishes are by id, not for a tenant


class BackgroundRunner:
    """Queues background responses and runs claimed ones; the gateway's lifespan owns it."""

    def __init__(
        self,
        turns: Turns,
        sessions: SessionClient,
        events: WebhookPublisher | None,
        metrics: GatewayMetrics,
        *,
        owner: str,
        lease_seconds: float,
        poll_seconds: float,
        concurrency: int,
    ) -> None:
        self.turns = turns
        self.sessions = sessions
        self.events = events
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self.ended = metrics.background  # by outcome
        metrics.background_running.set_function(lambda: len(self._running))

    async def queue(self, turn: TurnRequest, body: dict[str, Any], key: ApiKey) -> dict[str, Any]:
        """Store ``turn`` as a queued response; answers it (status ``queued``)."""
        response = TurnResponse(turn, self.turns.forwarder.resolve(turn.model))
        queued = await self.sessions.call(
            "POST", INTERNAL, key.tenant,
            json={"response": response.body("queued"), "request": {"body": body, "key": key.id}},
        )  # fmt: skip
        self._wake.set()
        return queued

    def cancel(self, response_id: str) -> None:
        """Stop the response's generation now if this gateway runs it."""
        generation = self._running.get(response_id)
        if generation is not None:
            generation.cancel()

    def publish(self, event_type: str, response_id: str, tenant: str) -> None:
        if self.events is not None:
            self.events.publish(event_type, {"id": response_id}, tenant)

    async def run_forever(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._slots.acquire()
                claimed = await self._claim()
                if claimed is None:
                    self._slots.release()
                    await self._idle()
                    continue
                task = asyncio.create_task(self._run(claimed))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        self._wake.clear()

    async def _claim(self) -> dict[str, Any] | None:
        lease = {"owner": self.owner, "lease_seconds": self.lease_seconds}
        try:
            claim = await self.sessions.call("POST", f"{INTERNAL}/claim", NO_TENANT, json=lease)
        except SwitchyardError as exc:
            log.warning("background claim failed: %s", exc)
            return None
        for failed in claim["failed"]:
            self.publish("response.failed", failed["id"], failed["tenant"])
        claimed: dict[str, Any] | None = claim["claimed"]
        return claimed

    async def _run(self, claimed: dict[str, Any]) -> None:
        try:
            self.ended(await self._supervise(claimed)).inc()
        except asyncio.CancelledError:
            self.ended("released").inc()
            raise
        except Exception:  # e.g. the session service down at the end: the lease runs out
            log.exception("background response %s failed to run", claimed["id"])
            self.ended("errored").inc()
        finally:
            self._slots.release()

    async def _supervise(self, claimed: dict[str, Any]) -> str:
        """Run the claimed response, renewing its lease; record and publish its end. How it
        ended: its final status, or ``stopped`` (cancelled, or no longer ours)."""
        response_id, tenant = claimed["id"], claimed["tenant"]
        turn = parse_turn(claimed["request"]["body"])
        key = ApiKey(id=claimed["request"].get("key", ""), tenant=tenant, digest="")
        stored = claimed["response"]
        response = TurnResponse(turn, stored["model"], id=response_id,
                                created_at=stored["created_at"])  # fmt: skip
        generation = asyncio.create_task(self._generate(turn, key, response))
        self._running[response_id] = generation
        try:
            while not (await asyncio.wait({generation}, timeout=self.lease_seconds / 3))[0]:
                if await self._renew(response_id) != "in_progress":
                    generation.cancel()  # cancelled, or no longer ours
            await asyncio.wait({generation})
        except asyncio.CancelledError:  # shutting down: another gateway may take it now
            generation.cancel()
            await self._release(response_id)
            raise
        finally:
            self._running.pop(response_id, None)
            generation.cancel()
        if generation.cancelled():
            return "stopped"
        final = generation.result()
        finished = await self.sessions.call(
            "POST", f"{INTERNAL}/{response_id}/finish", NO_TENANT,
            json={"owner": self.owner, "response": final, "input_items": turn.input_items},
        )  # fmt: skip
        if not finished["finished"]:
            return "stopped"
        self.publish(f"response.{final['status']}", response_id, tenant)
        status: str = final["status"]
        return status

    async def _release(self, response_id: str) -> None:
        lease = {"owner": self.owner, "lease_seconds": self.lease_seconds}
        with contextlib.suppress(SwitchyardError):
            await self.sessions.call(
                "POST", f"{INTERNAL}/{response_id}/release", NO_TENANT, json=lease
            )

    async def _renew(self, response_id: str) -> str | None:
        lease = {"owner": self.owner, "lease_seconds": self.lease_seconds}
        try:
            answer = await self.sessions.call(
                "POST", f"{INTERNAL}/{response_id}/renew", NO_TENANT, json=lease
            )
        except SwitchyardError as exc:  # the session service is down: keep going
            log.warning("lease renewal of %s failed: %s", response_id, exc)
            return "in_progress"
        status: str | None = answer["status"]
        return status

    async def _generate(
        self, turn: TurnRequest, key: ApiKey, response: TurnResponse
    ) -> dict[str, Any]:
        """The turn streamed from the workers (so that it can be stopped); the final body."""
        last: dict[str, Any] | None = None
        try:
            started = await self.turns.start(replace(turn, stream=True, store=False), key,
                                             None, response)  # fmt: skip
            events = self.turns.events(started)
            try:
                async for event in events:
                    last = event
            finally:
                await events.aclose()
        except SwitchyardError as exc:
            log.warning("background response %s failed: %s", response.id, exc)
            failed = response.body("failed")
            failed["error"] = {"code": "server_error", "message": exc.message}
            return failed
        assert last is not None and "response" in last
        final: dict[str, Any] = last["response"]
        return final
