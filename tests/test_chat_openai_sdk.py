"""The official openai SDK against the gateway of a platform started by ``switchyard up``."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.fixtures import MODEL, Platform


def test_non_streaming_chat_returns_real_model_text(openai_client: openai.OpenAI) -> None:
    resp = openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    assert resp.object == "chat.completion"
    assert resp.model == MODEL
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_greedy_generation_is_deterministic_and_on_topic(openai_client: openai.OpenAI) -> None:
    def ask() -> str:
        resp = openai_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What color is the sky?"}],
            max_tokens=24,
            temperature=0,
        )
        return resp.choices[0].message.content or ""

    first, second = ask(), ask()
    assert first == second
    assert "blue" in first.lower()


def test_max_tokens_reports_length(openai_client: openai.OpenAI) -> None:
    resp = openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_tokens=3,
        temperature=0,
    )
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 3


def test_streaming_chat_yields_chunks_then_done(openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count from one to five."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2, "text must arrive in several chunks"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes in (["stop"], ["length"])
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and not usage_chunks[0].choices
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert usage_chunks[0].usage.completion_tokens <= 16
    assert text.strip()
    assert len({c.id for c in chunks}) == 1


def test_streamed_text_equals_non_streamed_text(openai_client: openai.OpenAI) -> None:
    kwargs = dict(
        model=MODEL,
        messages=[{"role": "user", "content": "Name three colors."}],
        max_tokens=20,
        temperature=0,
    )
    whole = openai_client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in openai_client.chat.completions.create(stream=True, **kwargs)  # type: ignore[call-overload]
        if c.choices
    )
    assert streamed == whole.choices[0].message.content


def test_raw_sse_ends_with_done(platform: Platform) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    with httpx.stream(
        "POST", f"{platform.base_url}/chat/completions", json=body, headers=headers
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(r.iter_raw())
    events = [e for e in raw.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    assert events[-1] == b"data: [DONE]"


def test_stop_sequence_is_honoured(openai_client: openai.OpenAI) -> None:
    base = dict(
        model=MODEL,
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        max_tokens=40,
        temperature=0,
    )
    free = openai_client.chat.completions.create(**base).choices[0].message.content or ""  # type: ignore[call-overload]
    assert "4" in free, free
    stopped = openai_client.chat.completions.create(stop=["4"], **base)  # type: ignore[call-overload]
    text = stopped.choices[0].message.content or ""
    assert "4" not in text
    assert free.startswith(text)
    assert stopped.choices[0].finish_reason == "stop"


def test_models_lists_the_served_model(openai_client: openai.OpenAI) -> None:
    ids = [m.id for m in openai_client.models.list()]
    assert ids == sorted([MODEL, "all-minilm-l6-v2"])
    assert openai_client.models.retrieve(MODEL).id == MODEL


def test_unknown_model_is_404_in_openai_format(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    err = info.value.body
    assert isinstance(err, dict)
    assert err["code"] == "model_not_found"
    assert err["param"] == "model"
    assert err["type"] == "invalid_request_error"


def test_missing_messages_is_400(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        # NOT_GIVEN passes the SDK's own argument check and leaves the field out of the body.
        openai_client.chat.completions.create(model=MODEL, messages=openai.NOT_GIVEN)
    assert isinstance(info.value.body, dict)
    assert info.value.body["param"] == "messages"
    assert info.value.body["code"] == "missing_required_parameter"


def test_empty_messages_is_400(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=MODEL, messages=[])
    assert isinstance(info.value.body, dict)
    assert info.value.body["param"] == "messages"


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"[1, 2]", b"", b'{"model": 5, "messages": []}'],
    ids=["malformed", "array", "empty", "model-not-string"],
)
def test_bad_bodies_are_400_in_openai_format(platform: Platform, payload: bytes) -> None:
    r = httpx.post(
        f"{platform.base_url}/chat/completions",
        content=payload,
        headers={"Authorization": f"Bearer {platform.api_key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert err["message"]


def test_worker_validation_errors_pass_through(platform: Platform) -> None:
    r = httpx.post(
        f"{platform.base_url}/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 9},
        headers={"Authorization": f"Bearer {platform.api_key}"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "temperature"


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic abc"])
def test_missing_or_bad_key_is_401(platform: Platform, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    for method, path in (("POST", "/chat/completions"), ("GET", "/models")):
        r = httpx.request(method, f"{platform.base_url}{path}", headers=headers, json={})
        assert r.status_code == 401
        assert r.json()["error"]["code"] in ("invalid_api_key", "missing_api_key")


def test_sdk_with_wrong_key_raises_authentication_error(platform: Platform) -> None:
    client = openai.OpenAI(base_url=platform.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_embeddings_through_the_gateway_rank_similar_sentences_higher(
    openai_client: openai.OpenAI,
) -> None:
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."]
    resp = openai_client.embeddings.create(model="all-minilm-l6-v2", input=texts)
    vectors = [d.embedding for d in resp.data]
    assert [len(v) for v in vectors] == [384, 384, 384]

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))  # unit vectors

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2]) + 0.3
    assert resp.usage.prompt_tokens > 0


def test_models_list_includes_the_embedding_model(openai_client: openai.OpenAI) -> None:
    assert "all-minilm-l6-v2" in [m.id for m in openai_client.models.list()]
