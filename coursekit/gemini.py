"""mini-gemini: the model of notebook 5.1, given so that 5.2 and 5.3 do not depend on your
answers there.

The Gemma 2/3 architecture at laptop scale, written with torch built-ins in one file
(nanoGPT style). Notation: B batch, T new tokens, S keys, H query heads, Hkv key/value
heads, D head width, E experts.

- token embeddings times sqrt(d_model); a tied output head with a final soft-cap;
- layers in a repeating pattern (``"LLG"``): local layers attend to the last ``window``
  keys (themselves included), global layers to every earlier key; separate RoPE bases
  (local 1e4, global 1e6);
- grouped-query attention, QK-norm, scores scaled by ``query_pre_attn_scalar ** -0.5`` and
  soft-capped (``c * tanh(s / c)``) before the mask;
- sandwich norms with Gemma's RMSNorm ``x / rms(x) * (1 + w)`` (w starts at 0);
- dense layers: a GeGLU feed-forward (GELU, tanh approximation); MoE layers (pattern
  ``"DM"``: every other layer): Mixtral routing (softmax over the experts, top-k,
  renormalised) to SwiGLU experts; :meth:`MiniGemini.aux_loss` is the Switch
  load-balancing loss ``E * sum_i f_i P_i`` summed over the MoE layers.

Decoding: :meth:`MiniGemini.forward` takes ``caches``, one object per layer with a
``length`` (tokens seen so far) and ``update(k, v) -> (keys, values, key_positions)``.
The mask is built from the query and key *positions* (-1: an empty slot, never seen), so
a cache may return its keys in any order, e.g. from a ring buffer. :class:`FullCache` is
the cache of a global layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class GeminiConfig:
    """The sizes and options of :class:`MiniGemini` (defaults: configs/mini_gemini.yaml)."""

    vocab_size: int = 512
    context_length: int = 128
    d_model: int = 128
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int = 32
    n_layers: int = 6
    d_ff: int = 256
    attn_pattern: str = "LLG"  # L: sliding-window (local) layer, G: global layer
    ffn_pattern: str = "DM"  # D: dense GeGLU, M: mixture of experts
    window: int = 32
    rope_local_theta: float = 1e4
    rope_theta: float = 1e6
    query_pre_attn_scalar: float = 32.0
    attn_softcap: float | None = 50.0
    final_softcap: float | None = 30.0
    num_experts: int = 4
    top_k: int = 2
    norm_eps: float = 1e-6
    init_std: float = 0.02

    def is_local(self, layer: int) -> bool:
        return self.attn_pattern[layer % len(self.attn_pattern)] == "L"

    def is_moe(self, layer: int) -> bool:
        return self.ffn_pattern[layer % len(self.ffn_pattern)] == "M"


def soft_cap(x: Tensor, cap: float | None) -> Tensor:
    """``cap * tanh(x / cap)``: x squashed smoothly into (-cap, cap); x itself for None."""
    return x if cap is None else cap * torch.tanh(x / cap)


def attention_mask(q_pos: Tensor, k_pos: Tensor, window: int | None = None) -> Tensor:
    """Bool (T, S): query at position ``q_pos[i]`` may see the key at ``k_pos[j]`` when
    ``0 <= k_pos[j] <= q_pos[i]`` and, with a ``window`` W, ``k_pos[j] > q_pos[i] - W``."""
    i, j = q_pos[:, None], k_pos[None, :]
    allowed = (j <= i) & (j >= 0)
    return allowed if window is None else allowed & (j > i - window)


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    q_pos: Tensor,
    k_pos: Tensor,
    window: int | None = None,
    *,
    scale: float | None = None,
    softcap: float | None = None,
    extra_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Attention of q (B, H, T, D) over k, v (B, Hkv, S, D) at positions q_pos (T,) and
    k_pos (S,) -> (output (B, H, T, D), weights (B, H, T, S)).

    Scores ``q k^T * scale`` (default 1 / sqrt(D)), soft-capped, masked by
    :func:`attention_mask`; ``extra_mask`` (B, T, S) bool allows further pairs (OR-ed
    with causal, the window still applies). Rows with no allowed key give zeros."""
    n_rep = q.size(1) // k.size(1)
    k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = soft_cap((q @ k.transpose(-2, -1)) * scale, softcap)  # (B, H, T, S)
    allowed = attention_mask(q_pos, k_pos)
    if extra_mask is not None:
        allowed = allowed | extra_mask  # (B, T, S)
    if window is not None:
        i, j = q_pos[:, None], k_pos[None, :]
        allowed = allowed & (j > i - window) & (j >= 0)
    allowed = allowed if allowed.dim() == 2 else allowed[:, None]  # broadcast over heads
    scores = scores.masked_fill(~allowed, -math.inf)
    blocked = ~allowed.any(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(blocked, 0.0), dim=-1).masked_fill(blocked, 0.0)
    return weights @ v, weights


def rope_tables(length: int, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos and sin (length, head_dim) for RoPE in the rotate-half layout."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    angles = torch.outer(torch.arange(length).float(), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (B, H, T, D) by cos, sin (T, D): [x1, x2] -> x * cos + [-x2, x1] * sin."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class RMSNorm(nn.Module):
    """Gemma's RMSNorm over the last dim: ``x / sqrt(mean(x^2) + eps) * (1 + weight)``,
    in float32 at least (float64 stays float64); ``weight`` (d,) starts at zero."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(d))

    def forward(self, x: Tensor) -> Tensor:
        dtype = torch.promote_types(x.dtype, torch.float32)
        x32 = x.to(dtype)
        y = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (y * (1.0 + self.weight.to(dtype))).to(x.dtype)


class FullCache:
    """A global layer's cache: every key and value so far, (B, Hkv, length, D)."""

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self.length = 0

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Append k, v (B, Hkv, T, D) -> all keys and values (B, Hkv, S, D), positions (S,)."""
        self.k = k if self.k is None else torch.cat((self.k, k), dim=2)
        self.v = v if self.v is None else torch.cat((self.v, v), dim=2)
        self.length += k.size(2)
        return self.k, self.v, torch.arange(self.length, device=k.device)


class Attention(nn.Module):
    """GQA self-attention with QK-norm, RoPE, soft-capping and an optional window."""

    def __init__(self, c: GeminiConfig, window: int | None) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = c.n_heads, c.n_kv_heads, c.head_dim
        self.q_proj = nn.Linear(c.d_model, c.n_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.n_heads * c.head_dim, c.d_model, bias=False)
        self.q_norm, self.k_norm = RMSNorm(c.head_dim, c.norm_eps), RMSNorm(c.head_dim, c.norm_eps)
        self.window, self.softcap = window, c.attn_softcap
        self.scale = c.query_pre_attn_scalar**-0.5
        self.weights: Tensor | None = None  # the last attention weights, if asked for

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        extra_mask: Tensor | None = None,
        cache: object | None = None,
        keep_weights: bool = False,
    ) -> Tensor:
        """x (B, T, d_model) at positions start.. (start = ``cache.length``, else 0)."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.q_norm(q), self.k_norm(k)
        start = 0 if cache is None else int(cache.length)  # type: ignore[attr-defined]
        q_pos = torch.arange(start, start + t, device=x.device)
        cos, sin = cos[start : start + t].to(x.dtype), sin[start : start + t].to(x.dtype)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k_pos = q_pos
        if cache is not None:
            k, v, k_pos = cache.update(k, v)  # type: ignore[attr-defined]
        y, weights = attend(
            q,
            k,
            v,
            q_pos,
            k_pos.to(x.device),
            self.window,
            scale=self.scale,
            softcap=self.softcap,
            extra_mask=extra_mask,
        )
        self.weights = weights.detach() if keep_weights else None
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class GatedFFN(nn.Module):
    """down_proj(act(gate_proj(x)) * up_proj(x)), (..., d_model) -> (..., d_model): GeGLU
    (tanh GELU) for the dense layers, SwiGLU (SiLU) for the experts."""

    def __init__(self, d_model: int, d_ff: int, act: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


def gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


class MoE(nn.Module):
    """Mixtral-style sparse MoE (B, T, d_model) -> (B, T, d_model): softmax over the E
    experts, keep the top k, renormalise; keeps ``router_logits`` (N, E) and
    ``counts`` (E,) (tokens routed to each expert) of the last forward."""

    def __init__(self, d_model: int, d_ff: int, num_experts: int, top_k: int) -> None:
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k
        self.router = nn.Linear(d_model, num_experts, bias=False)
        self.experts = nn.ModuleList(GatedFFN(d_model, d_ff, F.silu) for _ in range(num_experts))
        self.router_logits: Tensor | None = None
        self.counts: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.reshape(-1, x.size(-1))
        logits = self.router(tokens)  # (N, E)
        weights, chosen = torch.topk(torch.softmax(logits, dim=-1), self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)  # (N, k)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            rows, rank = torch.where(chosen == e)
            if rows.numel():
                out = out.index_add(0, rows, expert(tokens[rows]) * weights[rows, rank, None])
        self.router_logits = logits
        self.counts = torch.bincount(chosen.flatten(), minlength=self.num_experts).detach()
        return out.reshape(x.shape)


def load_balancing_loss(logits: Tensor, num_experts: int, top_k: int) -> Tensor:
    """Switch loss ``E * sum_i f_i P_i`` of router logits (N, E): f_i the fraction of tokens
    with expert i among their top k (the f sum to k), P_i the mean router probability."""
    probs = torch.softmax(logits.float(), dim=-1)
    chosen = torch.topk(probs, top_k, dim=-1).indices
    f = F.one_hot(chosen, num_experts).sum(dim=(0, 1)).to(probs.dtype) / logits.size(0)
    return num_experts * torch.sum(f * probs.mean(dim=0))


class Block(nn.Module):
    """x + post_attn_norm(attn(attn_norm(x))), then x + post_ffn_norm(ffn(ffn_norm(x)))."""

    def __init__(self, c: GeminiConfig, layer: int) -> None:
        super().__init__()
        self.local = c.is_local(layer)
        self.attn_norm = RMSNorm(c.d_model, c.norm_eps)
        self.attn = Attention(c, c.window if self.local else None)
        self.post_attn_norm = RMSNorm(c.d_model, c.norm_eps)
        self.ffn_norm = RMSNorm(c.d_model, c.norm_eps)
        self.ffn: nn.Module = (
            MoE(c.d_model, c.d_ff, c.num_experts, c.top_k)
            if c.is_moe(layer)
            else GatedFFN(c.d_model, c.d_ff, gelu_tanh)
        )
        self.post_ffn_norm = RMSNorm(c.d_model, c.norm_eps)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        extra_mask: Tensor | None,
        cache: object | None,
        keep_weights: bool,
    ) -> Tensor:
        h = self.attn(self.attn_norm(x), cos, sin, extra_mask, cache, keep_weights)
        x = x + self.post_attn_norm(h)
        return x + self.post_ffn_norm(self.ffn(self.ffn_norm(x)))


class MiniGemini(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size); see the module doc.

    Submodules: ``tok_emb``, ``blocks`` (each ``attn_norm``, ``attn``, ``post_attn_norm``,
    ``ffn_norm``, ``ffn``, ``post_ffn_norm``), ``norm_f``, ``lm_head`` (weight tied to
    ``tok_emb.weight``). Initialisation: linear and embedding weights ~ N(0, init_std),
    ``o_proj``/``down_proj`` with std / sqrt(2 n_layers), norm weights 0.
    """

    rope_cos: Tensor
    rope_sin: Tensor
    rope_local_cos: Tensor
    rope_local_sin: Tensor

    def __init__(self, config: GeminiConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or GeminiConfig()
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(Block(c, i) for i in range(c.n_layers))
        self.norm_f = RMSNorm(c.d_model, c.norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        for name, theta in (("rope", c.rope_theta), ("rope_local", c.rope_local_theta)):
            cos, sin = rope_tables(c.context_length, c.head_dim, theta)
            self.register_buffer(f"{name}_cos", cos, persistent=False)
            self.register_buffer(f"{name}_sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                continue
            std = c.init_std
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                std = c.init_std / math.sqrt(2 * c.n_layers)
            nn.init.normal_(p, mean=0.0, std=std)

    def num_parameters(self, active: bool = False) -> int:
        """Distinct parameters; with ``active``, those one token uses (top_k of E experts)."""
        n = sum(p.numel() for p in self.parameters())
        if active:
            for block in self.blocks:
                if isinstance(block.ffn, MoE):
                    per_expert = sum(p.numel() for p in block.ffn.experts[0].parameters())
                    n -= (block.ffn.num_experts - block.ffn.top_k) * per_expert
        return n

    def new_caches(self, window_cache: type | None = None) -> list[object]:
        """One empty cache per layer: ``window_cache(window)`` for local layers when given
        (your sliding-window cache), else :class:`FullCache` everywhere."""
        c = self.config
        return [
            window_cache(c.window) if window_cache is not None and c.is_local(i) else FullCache()
            for i in range(c.n_layers)
        ]

    def forward(
        self,
        idx: Tensor | None = None,
        *,
        inputs_embeds: Tensor | None = None,
        extra_mask: Tensor | None = None,
        caches: list[object] | None = None,
        keep_weights: bool = False,
    ) -> Tensor:
        """idx (B, T) token ids, or ``inputs_embeds`` (B, T, d_model) already scaled ->
        logits (B, T, vocab_size).

        ``extra_mask`` (B, T, T) bool: pairs allowed besides causal ones (image blocks);
        local layers still apply their window. ``caches`` (one per layer): the tokens sit
        at positions ``cache.length ..``; each layer's keys go through ``cache.update``.
        ``keep_weights`` stores each layer's attention weights in ``blocks[i].attn.weights``.
        """
        if inputs_embeds is None:
            if idx is None:
                raise ValueError("pass idx (B, T) or inputs_embeds (B, T, d_model)")
            x = self.tok_emb(idx)
            x = x * torch.tensor(self.config.d_model**0.5, dtype=x.dtype)
        else:
            x = inputs_embeds
        start = 0 if caches is None else int(caches[0].length)  # type: ignore[attr-defined]
        if start + x.size(1) > self.config.context_length:
            raise ValueError(
                f"{start + x.size(1)} positions exceed context_length {self.config.context_length}"
            )
        for i, block in enumerate(self.blocks):
            cos, sin = (
                (self.rope_local_cos, self.rope_local_sin)
                if block.local
                else (self.rope_cos, self.rope_sin)
            )
            cache = None if caches is None else caches[i]
            x = block(x, cos, sin, extra_mask, cache, keep_weights)
        return soft_cap(self.lm_head(self.norm_f(x)), self.config.final_softcap)

    def moe_layers(self) -> list[MoE]:
        return [b.ffn for b in self.blocks if isinstance(b.ffn, MoE)]

    def aux_loss(self) -> Tensor:
        """The load-balancing losses of the last forward, summed over the MoE layers."""
        total = torch.zeros((), device=self.tok_emb.weight.device)
        for moe in self.moe_layers():
            if moe.router_logits is not None:
                total = total + load_balancing_loss(moe.router_logits, moe.num_experts, moe.top_k)
        return total

    def expert_counts(self) -> Tensor:
        """Tokens routed to each expert in the last forward: (MoE layers, E), int64."""
        return torch.stack(
            [
                m.counts if m.counts is not None else torch.zeros(m.num_experts, dtype=torch.long)
                for m in self.moe_layers()
            ]
        )


def tiny_gemini(seed: int = 0, vocab_size: int = 64) -> MiniGemini:
    """A small seeded MiniGemini for tests (3 layers "LLG", window 4, context 48, 4
    experts top-2 in layer 1); the same seed gives the same weights, with norm weights
    randomised too so that every part matters."""
    g = torch.Generator().manual_seed(seed)
    config = GeminiConfig(
        vocab_size=vocab_size,
        context_length=48,
        d_model=32,
        n_heads=4,
        n_kv_heads=2,
        head_dim=8,
        n_layers=3,
        d_ff=48,
        window=4,
        query_pre_attn_scalar=8.0,
        attn_softcap=5.0,
        final_softcap=4.0,
        init_std=0.2,
    )
    model = MiniGemini(config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() == 1 else 0.2))
    return model.eval()
