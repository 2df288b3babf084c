"""Key/value cache for incremental decoding.

Each attention layer stores the keys and values of every token it has seen, so a new
token attends over them without recomputing the prefix. The cache holds ``n_kv_heads``
heads, not ``n_heads``: grouped-query attention shrinks it by ``n_heads / n_kv_heads``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class LayerKVCache:
    """One layer's keys and values, preallocated: ``k`` and ``v`` are (B, Hkv, max_len, D).

    ``length`` tokens are filled; :meth:`update` appends the next ones.
    """

    def __init__(self, k: Tensor, v: Tensor) -> None:
        self.k, self.v, self.length = k, v, 0

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append k, v (B, Hkv, T, D) -> all keys and values so far, (B, Hkv, length + T, D)."""
        end = self.length + k.size(2)
        if end > self.k.size(2):
            raise ValueError(f"cache full: {end} tokens do not fit max_len={self.k.size(2)}")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (B',) in that order, e.g. the surviving beams."""
        self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class KVCache:
    """The caches of all layers; ``length`` is the number of tokens seen so far."""

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        shape = (batch_size, n_kv_heads, max_len, head_dim)
        self.layers = [
            LayerKVCache(
                torch.zeros(shape, dtype=dtype, device=device),
                torch.zeros(shape, dtype=dtype, device=device),
            )
            for _ in range(n_layers)
        ]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (B',) of every layer (beam search)."""
        for layer in self.layers:
            layer.reorder(index)
