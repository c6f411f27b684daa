"""Real embeddings: all-MiniLM-L6-v2 run by the numpy BERT encoder, in-process and over HTTP."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from switchyard_model_worker.backends import embeddings
from switchyard_model_worker.backends.base import ModelLoadError
from switchyard_model_worker.backends.embeddings import LocalEmbeddingBackend, default_embedding_dir
from switchyard_model_worker.config import WorkerSettings
from tests.support.procs import ServiceProcess, metric_value

from .openai_contract import EmbeddingList

MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalEmbeddingBackend]:
    b = LocalEmbeddingBackend(None, batch_size=4)
    asyncio.run(b.load())
    yield b
    asyncio.run(b.close())


async def test_matches_the_reference_model(backend: LocalEmbeddingBackend) -> None:
    # Cosine similarities that sentence-transformers documents for all-MiniLM-L6-v2.
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "A monkey is playing drums.",
        "Someone in a gorilla costume is playing a set of drums.",
    ]
    v = (await backend.embed(texts)).vectors
    assert v.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) == pytest.approx(0.7553, abs=2e-3)
    assert float(v[2] @ v[3]) == pytest.approx(0.6433, abs=2e-3)


async def test_batching_and_padding_do_not_change_vectors(backend: LocalEmbeddingBackend) -> None:
    texts = ["short", "a much longer sentence that needs padding in a batch", "mid length text"]
    together = (await backend.embed(texts)).vectors
    alone = np.stack([(await backend.embed([t])).vectors[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


async def test_long_inputs_are_truncated_to_the_window(backend: LocalEmbeddingBackend) -> None:
    long_text = "word " * 1000
    result = await backend.embed([long_text])
    assert result.vectors.shape == (1, 384)
    assert result.prompt_tokens == backend.context_length() == 256
    assert (await backend.count_tokens(text=long_text)).count == 1002  # untruncated, + CLS/SEP


def test_default_files_ship_in_the_wheel() -> None:
    folder = default_embedding_dir()
    assert (folder / "model.safetensors").stat().st_size > 80_000_000
    assert (folder / "tokenizer.json").is_file()


async def test_missing_folder_is_a_clear_load_error(tmp_path: Path) -> None:
    b = LocalEmbeddingBackend(str(tmp_path))
    with pytest.raises(ModelLoadError, match="sentence-transformers folder"):
        await b.load()
    await b.close()


def test_missing_default_package_names_the_real_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(embeddings, "DEFAULT_EMBEDDING_PACKAGE", "no_such_embedding_package")
    with pytest.raises(ModelLoadError) as info:
        default_embedding_dir()
    named = re.findall(r"SWITCHYARD_MODEL_WORKER_[A-Z_]+", str(info.value))
    assert named == ["SWITCHYARD_MODEL_WORKER_MODEL_PATH"]
    # ... and that setting is the one the embeddings backend reads.
    monkeypatch.setenv(named[0], str(tmp_path))
    settings = WorkerSettings(backend="embeddings")
    assert settings.model_path == str(tmp_path)


def embed(worker: ServiceProcess, body: dict) -> httpx.Response:
    return httpx.post(f"{worker.url}/v1/embeddings", json=body, timeout=120)


def test_similar_sentences_score_higher_than_unrelated(embedding_worker: ServiceProcess) -> None:
    texts = [
        "How do I reset my password?",
        "I forgot my password and need to change it.",
        "The recipe needs two cups of flour.",
    ]
    r = embed(embedding_worker, {"model": MODEL, "input": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    EmbeddingList.model_validate(body)  # the OpenAI shape, exactly
    assert body["model"] == MODEL
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    v = np.array([d["embedding"] for d in body["data"]])
    assert v.shape == (3, 384)
    similar, unrelated = v[0] @ v[1], v[0] @ v[2]
    assert similar > 0.5 > unrelated + 0.3
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 10


def test_base64_encoding_is_little_endian_float32(embedding_worker: ServiceProcess) -> None:
    text = "The quick brown fox."
    floats = embed(embedding_worker, {"model": MODEL, "input": text}).json()["data"][0]["embedding"]
    b64 = embed(embedding_worker, {"model": MODEL, "input": text, "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(b64.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, np.array(floats, dtype=np.float32), atol=1e-7)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": [[1, 2, 3]]}, "input", "unsupported_value"),
        ({"input": ["ok", ""]}, "input", "invalid_value"),
        ({"input": []}, "input", "invalid_value"),
        ({"input": "x", "dimensions": 128}, "dimensions", "unsupported_value"),
    ],
    ids=["token-arrays", "empty-string", "empty-list", "dimensions"],
)
def test_bad_embedding_requests_are_400(
    embedding_worker: ServiceProcess, body: dict, param: str, code: str
) -> None:
    r = embed(embedding_worker, {"model": MODEL, **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert r.json()["error"]["code"] == code


def test_embedding_worker_serves_only_embeddings(embedding_worker: ServiceProcess) -> None:
    models = httpx.get(f"{embedding_worker.url}/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL]
    chat = httpx.post(
        f"{embedding_worker.url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 400
    assert chat.json()["error"]["code"] == "unsupported_endpoint"
    counted = httpx.post(f"{embedding_worker.url}/tokenize", json={"text": "hello world"}).json()
    assert counted == {"model": MODEL, "count": 4, "max_model_len": 256}


def test_embedding_metrics(embedding_worker: ServiceProcess) -> None:
    before = httpx.get(f"{embedding_worker.url}/metrics").text
    embed(embedding_worker, {"model": MODEL, "input": ["one", "two"]})
    after = httpx.get(f"{embedding_worker.url}/metrics").text
    ok = {"endpoint": "embeddings", "status": "200"}
    assert metric_value(after, "switchyard_worker_requests_total", ok) == (
        metric_value(before, "switchyard_worker_requests_total", ok) + 1
    )
    assert metric_value(after, "switchyard_worker_embedding_inputs_total") == (
        metric_value(before, "switchyard_worker_embedding_inputs_total") + 2
    )
