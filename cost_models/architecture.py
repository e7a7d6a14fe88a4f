"""Decoder-only transformer shape -> parameter counts (total, embedding, non-embedding, MoE active).

What is counted (matching how Hugging Face ``num_parameters()`` counts the published checkpoints):
- attention: Q, K, V, O projections (GQA: K and V have ``kv_heads`` heads); biases if ``bias``;
  optionally DeepSeek multi-head latent attention (MLA) when ``kv_lora_rank > 0``;
- feed-forward: SwiGLU = 3 matrices d×f (gate, up, down), GELU = 2 matrices (up, down) plus biases if
  ``bias``; MoE layers hold ``experts`` routed + ``shared_experts`` experts of width ``moe_ffn_hidden`` and
  a router (d × experts, no bias);
- norms: two per layer plus a final one; RMSNorm has a weight (d), LayerNorm a weight and a bias (2d);
- embeddings: token embedding (vocab × d), the output head (vocab × d) unless ``tied_embeddings``, and
  learned position embeddings (seq_len × d) if ``learned_positions``. Rotary embeddings have no params.

Not counted: DeepSeek-V3's multi-token-prediction module (≈14B, excluded from its published 671B too),
router score-correction biases (DeepSeek-V3: 256 per MoE layer, 14,848 in all), QK-norm weights.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_DIMENSION = 16_777_216  # largest layer count, width, head count, vocabulary or context length accepted


class ModelShape(BaseModel):
    """A decoder-only transformer. Dense when ``experts == 1``; MoE layers follow ``dense_layers`` dense ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layers: int = Field(gt=0)
    d_model: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int | None = Field(default=None, gt=0, description="K/V heads (GQA); default = heads (MHA)")
    head_dim: int | None = Field(default=None, gt=0, description="default d_model // heads")
    ffn_hidden: int = Field(gt=0, description="dense FFN width (intermediate size)")
    ffn_type: Literal["swiglu", "gelu"] = "swiglu"
    vocab: int = Field(gt=0)
    tied_embeddings: bool = False
    experts: int = Field(default=1, gt=0, description="routed experts per MoE layer (1 = dense)")
    top_k: int = Field(default=1, gt=0, description="routed experts active per token")
    shared_experts: int = Field(default=0, ge=0, description="always-active experts per MoE layer")
    moe_ffn_hidden: int | None = Field(default=None, gt=0, description="expert width; default ffn_hidden")
    dense_layers: int = Field(default=0, ge=0, description="leading dense layers of an MoE model")
    seq_len: int = Field(default=4096, gt=0, description="training context length (tokens)")
    bias: bool = Field(default=False, description="linear layers carry biases (GPT-2/3, OPT style)")
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    learned_positions: bool = Field(default=False, description="learned absolute position embeddings")
    # Multi-head latent attention (DeepSeek-V2/V3). kv_lora_rank > 0 switches it on; head_dim is then
    # the no-RoPE part of the Q/K head (qk_nope_head_dim).
    q_lora_rank: int = Field(default=0, ge=0)
    kv_lora_rank: int = Field(default=0, ge=0)
    qk_rope_head_dim: int = Field(default=0, ge=0)
    v_head_dim: int | None = Field(default=None, gt=0, description="MLA value head dim; default head_dim")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data):
        if isinstance(data, dict):
            data = dict(data)
            if data.get("kv_heads") is None and "heads" in data:
                data["kv_heads"] = data["heads"]
            if data.get("head_dim") is None and "heads" in data and "d_model" in data:
                data["head_dim"] = data["d_model"] // data["heads"]
            if data.get("moe_ffn_hidden") is None and "ffn_hidden" in data:
                data["moe_ffn_hidden"] = data["ffn_hidden"]
            if data.get("v_head_dim") is None:
                data["v_head_dim"] = data.get("head_dim")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelShape:
        for name, v in self:  # bounded, so every derived count stays a finite float
            if isinstance(v, int) and not isinstance(v, bool) and v > MAX_DIMENSION:
                raise ValueError(f"{name} must be at most {MAX_DIMENSION:,} (got {v:.3g})")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) cannot exceed experts ({self.experts})")
        if self.dense_layers > self.layers:
            raise ValueError(f"dense_layers ({self.dense_layers}) cannot exceed layers ({self.layers})")
        return self

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def tp_heads(self) -> int:
        """The heads a training tensor-parallel degree must divide: the K/V heads (query groups), which
        Megatron-Core and torchtitan split across TP ranks (a degree above them would need replicated K/V,
        which the cluster model does not price); every head for MLA, whose K/V are per head."""
        return self.heads if self.is_mla else self.kv_heads

    @property
    def moe_layers(self) -> int:
        """Number of MoE layers (0 for a dense model)."""
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def d_attn(self) -> int:
        """Width of the attention output (heads × value head dim), Kaplan's d_attn."""
        return self.heads * self.v_head_dim


def _norm_params(shape: ModelShape) -> int:
    return (2 if shape.norm == "layernorm" else 1) * shape.d_model


def attention_params_per_layer(shape: ModelShape) -> int:
    """Attention projection params in one layer (Q, K, V, O; GQA-aware; MLA if configured)."""
    d, h, hd = shape.d_model, shape.heads, shape.head_dim
    if shape.is_mla:
        qk_dim = hd + shape.qk_rope_head_dim
        if shape.q_lora_rank:
            q = d * shape.q_lora_rank + shape.q_lora_rank + shape.q_lora_rank * h * qk_dim  # down, norm, up
        else:
            q = d * h * qk_dim
        kv_down = d * (shape.kv_lora_rank + shape.qk_rope_head_dim) + shape.kv_lora_rank  # + latent norm
        kv_up = shape.kv_lora_rank * h * (hd + shape.v_head_dim)
        out = h * shape.v_head_dim * d
        return q + kv_down + kv_up + out
    kv = shape.kv_heads
    weights = d * h * hd + 2 * d * kv * hd + h * hd * d
    biases = (h * hd + 2 * kv * hd + d) if shape.bias else 0
    return weights + biases


def _ffn_params(shape: ModelShape, width: int) -> int:
    d = shape.d_model
    if shape.ffn_type == "swiglu":
        return 3 * d * width + ((2 * width + d) if shape.bias else 0)
    return 2 * d * width + ((width + d) if shape.bias else 0)


def dense_ffn_params_per_layer(shape: ModelShape) -> int:
    """Feed-forward params of one dense layer (width ``ffn_hidden``)."""
    return _ffn_params(shape, shape.ffn_hidden)


def expert_params_per_layer(shape: ModelShape) -> int:
    """Params of one expert (width ``moe_ffn_hidden``)."""
    return _ffn_params(shape, shape.moe_ffn_hidden)


def router_params_per_layer(shape: ModelShape) -> int:
    """Router (gate) params of one MoE layer: d_model × experts; 0 for a dense model."""
    return shape.d_model * shape.experts if shape.is_moe else 0


def moe_ffn_params_per_layer(shape: ModelShape) -> int:
    """All feed-forward params of one MoE layer: routed + shared experts + router."""
    n = shape.experts + shape.shared_experts
    return n * expert_params_per_layer(shape) + router_params_per_layer(shape)


def moe_ffn_active_params_per_layer(shape: ModelShape) -> int:
    """Feed-forward params one token uses in an MoE layer: top_k routed + shared experts + router."""
    n = shape.top_k + shape.shared_experts
    return n * expert_params_per_layer(shape) + router_params_per_layer(shape)


def ffn_params_per_layer(shape: ModelShape) -> float:
    """Average feed-forward params per layer (dense and MoE layers mixed); plain FFN for a dense model."""
    return _ffn_total(shape) / shape.layers


def _ffn_total(shape: ModelShape) -> int:
    dense = (shape.layers - shape.moe_layers) * dense_ffn_params_per_layer(shape)
    return dense + shape.moe_layers * moe_ffn_params_per_layer(shape)


def _ffn_active_total(shape: ModelShape) -> int:
    dense = (shape.layers - shape.moe_layers) * dense_ffn_params_per_layer(shape)
    return dense + shape.moe_layers * moe_ffn_active_params_per_layer(shape)


def norm_params(shape: ModelShape) -> int:
    """All normalisation params: two norms per layer plus the final norm."""
    return (2 * shape.layers + 1) * _norm_params(shape)


def embedding_params(shape: ModelShape) -> int:
    """Token embedding + untied output head + learned positions (vocab·d·(1 or 2) [+ seq_len·d])."""
    heads_out = 1 if shape.tied_embeddings else 2
    pos = shape.seq_len * shape.d_model if shape.learned_positions else 0
    return heads_out * shape.vocab * shape.d_model + pos


def non_embedding_params(shape: ModelShape) -> int:
    """Attention + feed-forward (all experts) + norms: Kaplan's N for a dense model."""
    return shape.layers * attention_params_per_layer(shape) + _ffn_total(shape) + norm_params(shape)


def total_params(shape: ModelShape) -> int:
    """Every parameter (Chinchilla's N; what model cards report)."""
    return non_embedding_params(shape) + embedding_params(shape)


def active_non_embedding_params(shape: ModelShape) -> int:
    """Non-embedding params one token uses (= non_embedding_params for a dense model)."""
    return shape.layers * attention_params_per_layer(shape) + _ffn_active_total(shape) + norm_params(shape)


def active_params(shape: ModelShape) -> int:
    """Params one token uses, embeddings included (how Mixtral's 12.9B and DeepSeek-V3's 37B are quoted)."""
    return active_non_embedding_params(shape) + embedding_params(shape)


def expert_params(shape: ModelShape) -> int:
    """Routed-expert params of the whole model (what expert parallelism shards); 0 for a dense model."""
    return shape.moe_layers * shape.experts * expert_params_per_layer(shape)
