"""A GGUF model's own tokenizer and chat template (through llama.cpp).

Used by the llama.cpp backend for prompts, and by the openai-compatible backend to count
tokens locally (the GGUF is then opened vocabulary-only: no weights, no context memory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchyard_model_worker.backends.base import ModelLoadError, TokenCount


class GgufTokenizer:
    def __init__(self, llama: Any, path: Path) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"{path} has no chat template in its metadata.")
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        self.llama = llama
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos_id) if eos_id >= 0 else "",
            bos_token=llama._model.token_get_text(bos_id) if bos_id >= 0 else "",
            stop_token_ids=[eos_id],
        )

    @classmethod
    def open_vocab_only(cls, path: Path) -> GgufTokenizer:
        try:
            from llama_cpp import Llama

            llama = Llama(model_path=str(path), vocab_only=True, n_ctx=256, verbose=False)
        except Exception as exc:
            raise ModelLoadError(
                f"llama.cpp could not read the tokenizer in {path}: {exc}"
            ) from exc
        return cls(llama, path)

    def chat_tokens(self, messages: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
        """Tokens of ``messages`` after the chat template (with the generation prompt),
        and the stop strings the template asks for."""
        formatted = self.formatter(messages=messages)  # type: ignore[arg-type]
        stops = formatted.stop or []
        extra = [stops] if isinstance(stops, str) else list(stops)
        tokens = self.llama.tokenize(
            formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
        )
        return list(tokens), extra

    def text_tokens(self, text: str) -> list[int]:
        """Tokens of a raw prompt, as ``/v1/completions`` feeds it (with BOS)."""
        return list(self.llama.tokenize(text.encode(), add_bos=True, special=False))

    def count(
        self, *, text: str | None = None, messages: list[dict[str, Any]] | None = None
    ) -> TokenCount:
        tokens = self.chat_tokens(messages)[0] if messages is not None else None
        if tokens is None:
            tokens = self.text_tokens(text or "")
        return TokenCount(count=len(tokens), tokens=tokens)
