"""``/v1/context``: a turn's earlier items with cached token counts; ``/v1/token_counts``:
the gateway writes back the counts it had to compute."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from starlette.responses import Response

from switchyard_common.errors import InvalidRequestError, json_response
from switchyard_common.internal_calls import TenantDep
from switchyard_session.api.deps import StoreDep

router = APIRouter(prefix="/v1", tags=["context"])


class ContextRequest(BaseModel):
    model: str
    conversation: str | None = None
    previous_response_id: str | None = None
    # Stop reading older items once known counts exceed this many tokens (None: read all).
    budget: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def one_source(self) -> ContextRequest:
        if self.conversation is not None and self.previous_response_id is not None:
            raise InvalidRequestError(
                "Use either 'conversation' or 'previous_response_id', not both.",
                param="previous_response_id",
            )
        return self


class TokenCount(BaseModel):
    ref: int
    tokens: int = Field(ge=0)


class TokenCounts(BaseModel):
    model: str
    counts: list[TokenCount] = Field(max_length=10_000)


@router.post("/context")
async def build_context(body: ContextRequest, store: StoreDep, tenant: TenantDep) -> Response:
    return json_response(
        await store.context(
            tenant,
            body.model,
            conversation_id=body.conversation,
            previous_response_id=body.previous_response_id,
            budget=body.budget,
        )
    )


@router.post("/token_counts")
async def write_token_counts(body: TokenCounts, store: StoreDep, tenant: TenantDep) -> Response:
    updated = await store.write_token_counts(
        tenant, body.model, {c.ref: c.tokens for c in body.counts}
    )
    return json_response({"object": "token_counts", "updated": updated})
