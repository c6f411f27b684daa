"""Standard Webhooks signing, exactly as OpenAI signs its deliveries.

``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` with the key
decoded from a ``whsec_<base64>`` secret; one ``v1,`` entry per secret in use (two while a
rotated-out secret is still in its grace period), separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_hint(secret: str) -> str:
    """A masked hint naming the secret without revealing it (its last four characters)."""
    return f"{SECRET_PREFIX}...{secret[-4:]}"


def _key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` sent as ``webhook_id`` at ``timestamp``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets_in_use: Iterable[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, webhook_id, timestamp, body) for s in secrets_in_use
        ),
    }
