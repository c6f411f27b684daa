"""A BERT encoder forward pass in numpy, over Hugging Face safetensors weights.

Enough of BERT for sentence-transformers models such as all-MiniLM-L6-v2: absolute position
embeddings, post-layer-norm encoder layers, GELU (erf form), then mean pooling over the
attention mask and L2 normalisation. No torch: the weights are read with ``safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_heads: int
    num_layers: int
    layer_norm_eps: float
    max_positions: int

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BertConfig:
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"not a BERT model: model_type={raw.get('model_type')!r}")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported activation {raw.get('hidden_act')!r}")
        return cls(
            hidden_size=int(raw["hidden_size"]),
            num_heads=int(raw["num_attention_heads"]),
            num_layers=int(raw["num_hidden_layers"]),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            max_positions=int(raw.get("max_position_embeddings", 512)),
        )


def _erf(x: Array) -> Array:
    """erf to ~1.5e-7 (Abramowitz & Stegun 7.1.26), below float32 noise for GELU."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    out: Array = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _gelu(x: Array) -> Array:
    out: Array = (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)
    return out


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


@dataclass(frozen=True)
class _Layer:
    qkv_w: Array
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_w: Array
    ln1_b: Array
    up_w: Array
    up_b: Array
    down_w: Array
    down_b: Array
    ln2_w: Array
    ln2_b: Array


class BertEncoder:
    """Encodes padded batches of token ids into L2-normalised mean-pooled sentence vectors."""

    def __init__(self, config: BertConfig, weights: dict[str, Array]) -> None:
        self.config = config
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> Array:
            return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")
        self.emb_norm_w = w("embeddings.LayerNorm.weight")
        self.emb_norm_b = w("embeddings.LayerNorm.bias")
        self.layers: list[_Layer] = []
        for i in range(config.num_layers):
            p = f"encoder.layer.{i}."
            names = ("query", "key", "value")
            self.layers.append(
                _Layer(
                    qkv_w=np.concatenate(
                        [w(p + f"attention.self.{n}.weight") for n in names]
                    ).T.copy(),
                    qkv_b=np.concatenate([w(p + f"attention.self.{n}.bias") for n in names]),
                    out_w=w(p + "attention.output.dense.weight").T.copy(),
                    out_b=w(p + "attention.output.dense.bias"),
                    ln1_w=w(p + "attention.output.LayerNorm.weight"),
                    ln1_b=w(p + "attention.output.LayerNorm.bias"),
                    up_w=w(p + "intermediate.dense.weight").T.copy(),
                    up_b=w(p + "intermediate.dense.bias"),
                    down_w=w(p + "output.dense.weight").T.copy(),
                    down_b=w(p + "output.dense.bias"),
                    ln2_w=w(p + "output.LayerNorm.weight"),
                    ln2_b=w(p + "output.LayerNorm.bias"),
                )
            )

    @classmethod
    def from_pretrained(cls, directory: Path) -> BertEncoder:
        import json

        from safetensors.numpy import load_file

        config = BertConfig.from_json(json.loads((directory / "config.json").read_text()))
        return cls(config, load_file(str(directory / "model.safetensors")))

    @property
    def dimensions(self) -> int:
        return self.config.hidden_size

    def encode(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
        """``ids`` and ``mask`` are ``[batch, seq]``; returns ``[batch, hidden]`` unit vectors."""
        cfg = self.config
        batch, seq = ids.shape
        if seq > cfg.max_positions:
            raise ValueError(f"sequence of {seq} tokens exceeds {cfg.max_positions} positions")
        x = self.word[ids] + self.position[:seq][None, :, :] + self.token_type[0]
        x = _layer_norm(x, self.emb_norm_w, self.emb_norm_b, cfg.layer_norm_eps)
        heads, size = cfg.num_heads, cfg.hidden_size // cfg.num_heads
        scale = np.float32(1.0 / np.sqrt(size))
        # Additive mask: padded keys get a large negative score.
        bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e9)).astype(
            np.float32
        )
        x = x.reshape(batch * seq, cfg.hidden_size)
        eps = cfg.layer_norm_eps
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            qkv = qkv.reshape(batch, seq, 3, heads, size).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0] * scale, qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, cfg.hidden_size)
            x = _layer_norm(x + ctx @ layer.out_w + layer.out_b, layer.ln1_w, layer.ln1_b, eps)
            up = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(x + up @ layer.down_w + layer.down_b, layer.ln2_w, layer.ln2_b, eps)
        x = x.reshape(batch, seq, cfg.hidden_size)
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
