"""TransformerLM: a decoder-only language model assembled from a :class:`ModelConfig`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference_impl.models.attention import soft_cap
from reference_impl.models.block import TransformerBlock, build_norm
from reference_impl.models.cache import KVCache
from reference_impl.models.config import ModelConfig
from reference_impl.models.moe import MoELayer, load_balancing_loss
from reference_impl.models.positions import RotaryEmbedding, sinusoidal_positions


def image_blocks(idx: Tensor, image_token_id: int) -> Tensor:
    """(B, T) ids of the runs of ``image_token_id`` in idx (B, T): 0 for a row's first run,
    1 for its second, ...; -1 for every other token (as transformers' Gemma 3)."""
    is_image = idx == image_token_id
    starts = is_image & ~F.pad(is_image, (1, 0))[:, :-1]
    return torch.where(is_image, starts.long().cumsum(dim=1) - 1, -1)


class TransformerLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size).

    Submodules: ``tok_emb``; ``pos_emb`` (learned positions only); ``blocks``;
    ``norm_f``; ``lm_head`` (its weight *is* ``tok_emb.weight`` when ``tie_weights``).
    The config's Gemma options (local/global layers, soft-caps, sandwich norms, QK-norm,
    MoE layers, an image prefix) are documented on :class:`ModelConfig`.

    Initialisation (GPT-2's): every linear and embedding weight ~ N(0, init_std), biases
    zero, norm weights one; the projections that write into the residual stream
    (``o_proj``, ``down_proj``) get std ``init_std / sqrt(2 * n_layers)`` so that the
    stream's variance does not grow with depth.
    """

    pos_table: Tensor | None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = (
            nn.Embedding(config.context_length, config.d_model)
            if config.pos_kind == "learned"
            else None
        )
        table = None
        if config.pos_kind == "sinusoidal":
            table = sinusoidal_positions(config.context_length, config.d_model)
        self.register_buffer("pos_table", table, persistent=False)
        ropes: dict[bool, RotaryEmbedding | None] = {False: None, True: None}
        if config.pos_kind == "rope":
            ropes[False] = ropes[True] = self._rope(config.rope_theta)
            local_theta = config.rope_local_theta
            if local_theta is not None and local_theta != config.rope_theta:
                ropes[True] = self._rope(local_theta)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config, ropes[config.is_local(i)], i) for i in range(config.n_layers)
        )
        self.norm_f = build_norm(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        resid_std = config.init_std / math.sqrt(2 * config.n_layers)
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=resid_std)

    def _rope(self, theta: float) -> RotaryEmbedding:
        return RotaryEmbedding(self.config.head_dim, self.config.context_length, theta)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of distinct parameters (a tied matrix counts once).

        With ``exclude_embeddings``, the token and position embedding tables are left out
        (the tied output matrix then counts as neither).
        """
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.tok_emb.weight.numel()
            if self.pos_emb is not None:
                n -= self.pos_emb.weight.numel()
        return n

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        """An empty key/value cache for ``batch_size`` sequences of up to ``max_len`` tokens
        (default ``context_length``), in the dtype and on the device of the weights; local
        layers keep only their last ``sliding_window - 1`` tokens."""
        c, w = self.config, self.tok_emb.weight
        return KVCache(
            c.n_layers,
            batch_size,
            c.n_kv_heads,
            max_len or c.context_length,
            c.head_dim,
            dtype=w.dtype,
            device=w.device,
            windows=[c.sliding_window if c.is_local(i) else None for i in range(c.n_layers)],
        )

    def aux_loss(self) -> Tensor:
        """The MoE layers' load-balancing losses of the last forward, summed (0 without
        MoE layers); the trainer adds ``moe_aux_loss_coef`` times it to the loss."""
        c = self.config
        total = torch.zeros((), device=self.tok_emb.weight.device)
        for block in self.blocks:
            if isinstance(block.ffn, MoELayer) and block.ffn.router_logits is not None:
                logits = block.ffn.router_logits.float()
                total = total + load_balancing_loss(logits, c.moe_num_experts, c.moe_top_k)
        return total

    def embed(self, idx: Tensor, image_embeds: Tensor | None = None) -> Tensor:
        """Token ids (B, T) -> input embeddings (B, T, d_model): scaled by sqrt(d_model)
        with ``embed_scale``, then ``image_embeds`` (N, P, d_model), N images of P vectors,
        replace the ``image_token_id`` placeholders in order (as Gemma 3 does)."""
        x = self.tok_emb(idx)
        if self.config.embed_scale:  # the factor in the weights' dtype, as transformers
            x = x * torch.tensor(self.config.d_model**0.5, dtype=x.dtype)
        if image_embeds is None:
            return x
        image_id = self.config.image_token_id
        if image_id is None:
            raise ValueError("image_embeds need a model with image_token_id set")
        placeholders = idx == image_id
        n = int(placeholders.sum())
        if n * x.size(-1) != image_embeds.numel():
            raise ValueError(
                f"image_embeds {tuple(image_embeds.shape)} do not fill the {n} "
                f"image_token_id={image_id} placeholders of idx"
            )
        return x.masked_scatter(placeholders[..., None], image_embeds.to(x.dtype))

    def forward(
        self,
        idx: Tensor,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
        image_embeds: Tensor | None = None,
    ) -> Tensor:
        """idx (B, T) int64 -> logits (B, T, vocab_size); position t sees tokens <= t only.

        ``attn_mask`` (broadcastable to (B, n_heads, T, S)) restricts attention further.
        With ``cache`` (from :meth:`new_cache`), idx holds the tokens that follow the
        ``cache.length`` cached ones: they sit at positions ``cache.length ..`` and attend
        over S = cache.length + T keys; the cache then holds them too.
        ``image_embeds`` (N, P, d_model) fill the image placeholders (see :meth:`embed`);
        the placeholders of one image then attend to each other both ways.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time) token ids, got shape {tuple(idx.shape)}")
        blocks = None
        if image_embeds is not None and self.config.image_token_id is not None:
            blocks = image_blocks(idx, self.config.image_token_id)
        return self.forward_embeds(self.embed(idx, image_embeds), attn_mask, cache, blocks)

    def forward_embeds(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
        blocks: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, d_model) input embeddings (token embeddings, or any vectors in their
        space, such as an image prefix) -> logits (B, T, vocab_size); positions, masking and
        ``cache`` as in :meth:`forward`, ``blocks`` (B, T) as in :func:`image_blocks`."""
        start = 0 if cache is None else cache.length  # a 0-d tensor for a static cache
        end = start + x.size(1)
        if isinstance(end, int) and end > self.config.context_length:
            raise ValueError(
                f"sequence length {end} exceeds context_length={self.config.context_length}"
            )
        if self.pos_emb is not None:
            x = x + self.pos_emb(start + torch.arange(x.size(1), device=x.device))
        elif self.pos_table is not None:
            x = x + self.pos_table[start + torch.arange(x.size(1), device=x.device)].to(x.dtype)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, attn_mask, None if cache is None else cache.layers[i], blocks)
        return soft_cap(self.lm_head(self.norm_f(x)), self.config.final_softcap)

    def loss(self, idx: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
        """Mean next-token cross-entropy of logits(idx) (B, T, V) against targets (B, T)."""
        return lm_loss(self(idx), targets, ignore_index)


def lm_loss(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean next-token cross-entropy of logits (B, T, V) against targets (B, T), in float32;
    targets equal to ``ignore_index`` count for nothing."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore_index
    )
