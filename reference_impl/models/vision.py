"""An image input for the language model: ViT patches, a small ViT encoder, a LLaVA-style
projector, and a captioner trained with a prefix-LM loss.

Notation: B batch, C channels, H x W image, P patch size, N = (H/P)(W/P) patches, D width.

State-dict mapping from Hugging Face's ``ViTModel`` (transformers 5), done by
:func:`from_hf_vit`::

    embeddings.cls_token                           -> embed.cls_token
    embeddings.position_embeddings                 -> embed.pos_emb
    embeddings.patch_embeddings.projection  (Conv2d, (D, C, P, P)) -> embed.proj (D, C*P*P)
    layers.{i}.layernorm_before / _after           -> blocks.{i}.norm1 / norm2
    layers.{i}.attention.{q,k,v}_proj (concatenated) -> blocks.{i}.qkv
    layers.{i}.attention.o_proj                    -> blocks.{i}.proj
    layers.{i}.mlp.fc1 / fc2                       -> blocks.{i}.fc1 / fc2
    layernorm                                      -> norm

The Conv2d's kernel flattened as (D, C*P*P) is a linear map on :func:`patchify`'s patches:
that is why patches are flattened channel-first, then rows, then columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference_impl.models.attention import scaled_dot_product_attention
from reference_impl.models.config import ModelConfig
from reference_impl.models.model import TransformerLM
from reference_impl.models.norms import LayerNorm


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) -> (B, N, C*P*P): non-overlapping P x P patches, row-major over the grid,
    each flattened channel-first (c, i, j) like the kernel of ViT's Conv2d patch embedding."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, rows, i, cols, j)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)


class PatchEmbedding(nn.Module):
    """Images (B, C, H, W) -> tokens (B, 1 + N, D): a class token, then one linear embedding
    per patch; each of the 1 + N positions adds its learned position embedding.

    Parameters: ``proj`` (C*P*P -> D), ``cls_token`` (1, 1, D), ``pos_emb`` (1, 1 + N, D).
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, d_model: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        n_patches = (image_size // patch_size) ** 2
        self.proj = nn.Linear(in_channels * patch_size**2, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos_emb = nn.Parameter(torch.randn(1, 1 + n_patches, d_model) * 0.02)

    def forward(self, images: Tensor) -> Tensor:
        patches = self.proj(patchify(images, self.patch_size))  # (B, N, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_emb


class ViTBlock(nn.Module):
    """Pre-norm encoder block, (B, T, D) -> (B, T, D): x + attn(norm1(x)), then
    x + fc2(gelu(fc1(norm2(x)))). Attention is bidirectional: every token sees every token.

    Submodules: ``norm1``, ``qkv`` (D -> 3D, q then k then v, each split into heads),
    ``proj``, ``norm2``, ``fc1`` (D -> d_ff), ``fc2`` (the names of timm's ViT).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = LayerNorm(d_model, eps)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = LayerNorm(d_model, eps)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    def attention(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = scaled_dot_product_attention(q, k, v)  # (B, H, T, D/H), no mask
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


@dataclass
class VisionConfig:
    """A ViT encoder: ``image_size`` x ``image_size`` images of ``in_channels`` channels cut
    into ``patch_size`` patches, ``n_layers`` blocks of width ``d_model``."""

    image_size: int
    patch_size: int
    in_channels: int
    d_model: int
    n_heads: int
    n_layers: int
    d_ff: int
    norm_eps: float = 1e-5

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class ViTEncoder(nn.Module):
    """Images (B, C, H, W) -> features (B, 1 + N, D): patch embedding, the blocks, a final
    LayerNorm. Submodules: ``embed``, ``blocks``, ``norm``."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.embed = PatchEmbedding(c.image_size, c.patch_size, c.in_channels, c.d_model)
        self.blocks = nn.ModuleList(
            ViTBlock(c.d_model, c.n_heads, c.d_ff, c.norm_eps) for _ in range(c.n_layers)
        )
        self.norm = LayerNorm(c.d_model, c.norm_eps)

    def forward(self, images: Tensor) -> Tensor:
        x = self.embed(images)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class ImageProjector(nn.Module):
    """Encoder features (B, 1 + N, d_vision) -> image tokens (B, N, d_model) in the LM's
    embedding space: the class token is dropped (LLaVA's default feature selection), then
    fc2(gelu(fc1(x))) with hidden width d_model (LLaVA-1.5's two-layer MLP)."""

    def __init__(self, d_vision: int, d_model: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_vision, d_model)
        self.fc2 = nn.Linear(d_model, d_model)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(features[:, 1:])))


def prefix_lm_loss(logits: Tensor, targets: Tensor, n_prefix: int) -> Tensor:
    """Mean next-token cross-entropy over the text of [n_prefix image tokens; T text tokens].

    logits (B, n_prefix + T, V); targets (B, T) the text's token ids, -100 where nothing is
    to be predicted (padding). Position n_prefix - 1 + i predicts targets[:, i]: the last
    image position predicts the first text token, and no image position is a target.
    """
    b = targets.shape[0]
    ignore = targets.new_full((b, n_prefix), -100)
    labels = torch.cat([ignore, targets], dim=1)[:, 1:]  # the label of each position
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten())


class ImageCaptioner(nn.Module):
    """A ViT encoder and a projector whose N image tokens are a prefix to a TransformerLM.

    forward(images (B, C, H, W), tokens (B, T)) -> logits (B, N + T, vocab_size), causal
    over the whole sequence; train it with ``prefix_lm_loss(logits, targets, n_prefix)``.
    The LM's ``context_length`` must hold N + T positions.
    """

    def __init__(self, vision: VisionConfig, lm: ModelConfig) -> None:
        super().__init__()
        self.encoder = ViTEncoder(vision)
        self.projector = ImageProjector(vision.d_model, lm.d_model)
        self.lm = TransformerLM(lm)
        self.n_prefix = vision.n_patches

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        prefix = self.projector(self.encoder(images))  # (B, N, lm.d_model)
        return self.lm.forward_embeds(torch.cat([prefix, self.lm.tok_emb(tokens)], dim=1))


def from_hf_vit(hf_vit_model: Any) -> ViTEncoder:
    """A ViTEncoder (eval mode) with the weights of a Hugging Face ``ViTModel`` (see the
    module doc for the mapping); its pooler, if any, is not part of the encoder."""
    c = hf_vit_model.config
    if c.hidden_act != "gelu" or not c.qkv_bias:
        raise ValueError(f"cannot convert: hidden_act={c.hidden_act}, qkv_bias={c.qkv_bias}")
    config = VisionConfig(
        image_size=c.image_size,
        patch_size=c.patch_size,
        in_channels=c.num_channels,
        d_model=c.hidden_size,
        n_heads=c.num_attention_heads,
        n_layers=c.num_hidden_layers,
        d_ff=c.intermediate_size,
        norm_eps=c.layer_norm_eps,
    )
    sd = hf_vit_model.state_dict()
    conv = sd["embeddings.patch_embeddings.projection.weight"]  # (D, C, P, P)
    state = {
        "embed.cls_token": sd["embeddings.cls_token"],
        "embed.pos_emb": sd["embeddings.position_embeddings"],
        "embed.proj.weight": conv.reshape(conv.shape[0], -1),
        "embed.proj.bias": sd["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": sd["layernorm.weight"],
        "norm.bias": sd["layernorm.bias"],
    }
    for i in range(c.num_hidden_layers):
        src, dst = f"layers.{i}.", f"blocks.{i}."
        for part in ("weight", "bias"):
            state[dst + f"qkv.{part}"] = torch.cat(
                [sd[src + f"attention.{n}_proj.{part}"] for n in "qkv"]
            )
            for ours, theirs in (
                ("proj", "attention.o_proj"),
                ("norm1", "layernorm_before"),
                ("norm2", "layernorm_after"),
                ("fc1", "mlp.fc1"),
                ("fc2", "mlp.fc2"),
            ):
                state[dst + f"{ours}.{part}"] = sd[src + f"{theirs}.{part}"]
    encoder = ViTEncoder(config)
    encoder.load_state_dict({k: v.clone() for k, v in state.items()})
    return encoder.to(conv.dtype).eval()
