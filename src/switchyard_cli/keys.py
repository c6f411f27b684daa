"""The development API key that ``switchyard up`` sets up."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

KEY_PREFIX = "sk-sy-"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def dev_key(data_dir: Path, explicit: str | None) -> tuple[str, str]:
    """Return (key, where it came from): explicit, stored in data_dir, or newly generated."""
    if explicit:
        return explicit, "given"
    stored = data_dir / "api-key"
    if stored.is_file():
        key = stored.read_text().strip()
        if key:
            return key, f"stored in {stored}"
    key = generate_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, f"generated and stored in {stored}"


def digest(key: str) -> str:
    """What the gateway is given: the key's SHA-256 digest, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()
