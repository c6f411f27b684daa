"""Routing affinity of turns: every turn of a conversation, and of a ``previous_response_id``
chain, goes to the same worker (the one holding its prompt cache) while it is healthy."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.procs import ServiceProcess, free_port, metric_value
from tests.support.stateful import KEY, MODEL, Stateful, start_stateful_gateway

# Real processes on a shared two-core machine: starting them can take minutes.
pytestmark = pytest.mark.timeout(600)


def served(worker: ServiceProcess) -> float:
    text = httpx.get(f"{worker.url}/metrics").text
    labels = {"endpoint": "chat_completions", "status": "200"}
    return metric_value(text, "switchyard_worker_requests_total", labels)


@pytest.fixture(scope="module")
def two_workers(
    stateful: Stateful, worker: ServiceProcess, tmp_path_factory
) -> Iterator[tuple[openai.OpenAI, list[ServiceProcess]]]:
    tmp = tmp_path_factory.mktemp("two-workers")
    port = free_port()
    second = ServiceProcess("switchyard_model_worker", {"SWITCHYARD_MODEL_WORKER_PORT": str(port)},
                            tmp / "worker-2.log", port).wait_ready()  # fmt: skip
    gateway = start_stateful_gateway(tmp, worker.url, stateful.session.url,
                                     extra_workers=[second.url])  # fmt: skip
    yield openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0), [
        worker, second]  # fmt: skip
    gateway.stop()
    second.stop()


def test_turns_stay_on_one_worker(two_workers: tuple[openai.OpenAI, list[ServiceProcess]]):
    client, workers = two_workers
    for chained in (False, True):
        for _ in range(2):  # two conversations (or chains): each stays on its worker
            before = [served(w) for w in workers]
            conversation = None if chained else client.conversations.create().id
            previous = None
            for n in range(3):
                r = client.responses.create(model=MODEL, input=f"Turn {n}.", max_output_tokens=2,
                                            conversation=conversation,
                                            previous_response_id=previous)  # fmt: skip
                previous = r.id if chained else None
            after = [served(w) for w in workers]
            assert sorted(a - b for a, b in zip(after, before)) == [0, 3]
