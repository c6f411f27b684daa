"""POST /v1/embeddings."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_common.errors import InvalidRequestError, json_response
from switchyard_model_worker import relaying
from switchyard_model_worker.api.deps import RunnerDep, SettingsDep
from switchyard_model_worker.api.tracking import counted
from switchyard_model_worker.openai_requests import EmbeddingRequest

router = APIRouter(tags=["embeddings"])
ENDPOINT = "embeddings"


def _texts(body: EmbeddingRequest, max_inputs: int) -> list[str]:
    raw = body.input
    texts = [raw] if isinstance(raw, str) else raw
    if not texts:
        raise InvalidRequestError("'input' must not be empty.", param="input", code="invalid_value")
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequestError(
            "Token-array inputs are not supported by this model; send text.",
            param="input",
            code="unsupported_value",
        )
    if len(texts) > max_inputs:
        raise InvalidRequestError(
            f"At most {max_inputs} inputs per request; got {len(texts)}.",
            param="input",
            code="invalid_value",
        )
    if any(not t for t in texts):
        raise InvalidRequestError(
            "'input' must not contain empty strings.", param="input", code="invalid_value"
        )
    return texts  # type: ignore[return-value]


@router.post("/v1/embeddings")
async def create_embeddings(
    body: EmbeddingRequest, request: Request, runner: RunnerDep, settings: SettingsDep
) -> Response:
    with counted(runner, ENDPOINT):
        runner.check_model(body.model, "embeddings")
        if runner.backend.relays:
            call = relaying.relay_call("/v1/embeddings", body)
            inputs = 1 if isinstance(body.input, str) else len(body.input)
            whole = await cancel_on_disconnect(request, runner.relay_embeddings(call, inputs))
            return json_response(whole.payload, whole.status_code)
        texts = _texts(body, settings.embedding_max_inputs)
        result = await cancel_on_disconnect(request, runner.embed(texts))
        dims = result.vectors.shape[1]
        if body.dimensions is not None and body.dimensions != dims:
            raise InvalidRequestError(
                f"This model makes {dims}-dimensional embeddings; 'dimensions' cannot change it.",
                param="dimensions",
                code="unsupported_value",
            )
        data: list[dict[str, Any]] = []
        for i, vector in enumerate(result.vectors):
            value: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if body.encoding_format == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
        return json_response(
            {"object": "list", "data": data, "model": runner.model_name, "usage": usage}
        )
