"""Items: an index on (owner, section, seq), which a context read walks newest first.

Without it PostgreSQL may fetch every item of the owner and sort them (seen at 10,000
items); with it, a page of the newest items is one backward index range.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_owner_section_seq", "items", ["owner_id", "section", "seq"])


def downgrade() -> None:
    op.drop_index("ix_items_owner_section_seq", "items")
