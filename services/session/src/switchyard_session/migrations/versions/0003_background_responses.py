"""Background responses: a queued response's status, lease, owner, attempts and request.

``status`` is null for a response recorded when its turn finished; a background one moves
through queued, in_progress and a final status, claimed by one gateway at a time under a
lease (see claims.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("responses", sa.Column("status", sa.String(32), nullable=True))
    op.add_column("responses", sa.Column("lease_until", sa.Float(), nullable=True))
    op.add_column("responses", sa.Column("owner", sa.String(255), nullable=True))
    op.add_column(
        "responses", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("responses", sa.Column("request", sa.JSON(), nullable=True))
    op.create_index("ix_responses_status", "responses", ["status"])


def downgrade() -> None:
    op.drop_index("ix_responses_status", "responses")
    for column in ("request", "attempts", "owner", "lease_until", "status"):
        op.drop_column("responses", column)
