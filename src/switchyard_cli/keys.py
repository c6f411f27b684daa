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


def write_key_hashes(path: Path, keys: list[str]) -> None:
    """The gateway's key file: SHA-256 digests only, never the keys themselves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digests = "".join(hashlib.sha256(k.encode()).hexdigest() + "\n" for k in keys)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# sha256 digests of API keys, one per line\n" + digests)
