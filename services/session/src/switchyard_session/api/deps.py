"""Dependencies: the store from the lifespan, the caller's tenant, the internal token, and
the two shapes handlers share: an idempotent write and a cursor page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header, Query, Request

from switchyard_common.internal_calls import TenantDep
from switchyard_session.store import Store


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=255)]
After = Annotated[str | None, Query()]
Limit = Annotated[int, Query(ge=1, le=100)]
Order = Annotated[Literal["asc", "desc"], Query()]


@dataclass(frozen=True)
class Write:
    """An idempotent write's context: the store, the caller's tenant, its Idempotency-Key."""

    store: Store
    tenant: str
    key: str | None


async def get_write(store: StoreDep, tenant: TenantDep, key: IdempotencyKey = None) -> Write:
    return Write(store, tenant, key)


@dataclass(frozen=True)
class Page:
    """A list call's cursor parameters, as the store's ``list_*`` methods take them."""

    after: str | None
    limit: int
    order: Literal["asc", "desc"]


async def get_page(after: After = None, limit: Limit = 20, order: Order = "desc") -> Page:
    return Page(after, limit, order)


WriteDep = Annotated[Write, Depends(get_write)]
PageDep = Annotated[Page, Depends(get_page)]
