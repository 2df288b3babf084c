"""Key/value cache for incremental decoding.

Each attention layer stores the keys and values of every token it has seen, so a new
token attends over them without recomputing the prefix. The cache holds ``n_kv_heads``
heads, not ``n_heads``: grouped-query attention shrinks it by ``n_heads / n_kv_heads``.
A sliding-window layer (window W) needs only the last W - 1 keys: :class:`SlidingKVCache`
keeps them in a ring buffer, so its memory stays O(W) however long the text.
"""

from __future__ import annotations

import torch
from torch import Tensor


class LayerKVCache:
    """One layer's keys and values, preallocated: ``k`` and ``v`` are (B, Hkv, max_len, D).

    ``length`` tokens are filled; :meth:`update` appends the next ones. Slot p holds the
    token at position p: ``positions`` is ``arange(max_len)``, made once.

    ``length`` is an int, or a 0-d long tensor once :meth:`KVCache.make_static` ran: then
    no shape and no Python number changes from one token to the next, so that a
    ``torch.compile``-d step compiles once (see ``generate(compile=True)``).
    """

    def __init__(self, k: Tensor, v: Tensor) -> None:
        self.k, self.v = k, v
        self.length: int | Tensor = 0
        self.positions = torch.arange(k.size(2), device=k.device)

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Append k, v (B, Hkv, T, D) -> all keys and values so far, (B, Hkv, S, D) with
        S = length + T, and their positions (S,).

        With a tensor ``length`` (static shapes) -> the whole buffers, S = max_len: the
        slots after the new tokens hold zeros or stale keys, at positions after every
        query, which the causal mask hides. Nothing checks that they fit there.
        """
        if isinstance(self.length, Tensor):
            slots = self.length + torch.arange(k.size(2), device=k.device)
            self.k.index_copy_(2, slots, k)
            self.v.index_copy_(2, slots, v)
            self.length = self.length + k.size(2)
            return self.k, self.v, self.positions
        end = self.length + k.size(2)
        if end > self.k.size(2):
            raise ValueError(f"cache full: {end} tokens do not fit max_len={self.k.size(2)}")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end], self.positions[:end]

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (B',) in that order, e.g. the surviving beams."""
        self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class SlidingKVCache:
    """One sliding-window layer's last ``window - 1`` keys and values, in a ring buffer:
    ``k`` and ``v`` are (B, Hkv, window - 1, D); the token at position p sits in slot
    ``p % (window - 1)``, and ``positions`` (window - 1,) says which token each slot holds
    (-1: empty). Keys keep their RoPE rotation, so their order in the buffer is free."""

    def __init__(self, k: Tensor, v: Tensor) -> None:
        self.k, self.v, self.length = k, v, 0
        self.positions = torch.full((k.size(2),), -1, dtype=torch.long, device=k.device)

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Take k, v (B, Hkv, T, D) of positions length .. length + T - 1 -> the buffered
        keys and values followed by the new ones, (B, Hkv, window - 1 + T, D), and their
        positions (-1 for an empty slot, which the window mask blocks); then keep the last
        window - 1 of them."""
        t, slots = k.size(2), self.k.size(2)
        new = torch.arange(self.length, self.length + t, device=k.device)
        keys = torch.cat((self.k, k), dim=2)
        values = torch.cat((self.v, v), dim=2)
        positions = torch.cat((self.positions, new))
        if slots:
            keep = slice(max(0, t - slots), t)  # the newest tokens that fit
            slot = new[keep] % slots
            self.k[:, :, slot], self.v[:, :, slot] = k[:, :, keep], v[:, :, keep]
            self.positions[slot] = new[keep]
        self.length += t
        return keys, values, positions

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (B',) in that order, e.g. the surviving beams."""
        self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class KVCache:
    """The caches of all layers; ``length`` is the number of tokens seen so far.

    ``windows[i]`` set (not None) makes layer i a :class:`SlidingKVCache` of
    ``windows[i] - 1`` slots; the others hold ``max_len`` tokens.
    """

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
        windows: list[int | None] | None = None,
    ) -> None:
        self.layers: list[LayerKVCache | SlidingKVCache] = []
        for i in range(n_layers):
            window = None if windows is None else windows[i]
            slots = max_len if window is None else window - 1
            shape = (batch_size, n_kv_heads, slots, head_dim)
            k = torch.zeros(shape, dtype=dtype, device=device)
            v = torch.zeros(shape, dtype=dtype, device=device)
            self.layers.append(LayerKVCache(k, v) if window is None else SlidingKVCache(k, v))

    def nbytes(self) -> int:
        """Bytes the keys and values take."""
        return sum(c.k.nbytes + c.v.nbytes for c in self.layers)

    @property
    def length(self) -> int | Tensor:
        return self.layers[0].length

    def make_static(self) -> None:
        """Hold ``length`` as a 0-d long tensor from now on (see :class:`LayerKVCache`);
        not for sliding-window layers."""
        for layer in self.layers:
            if isinstance(layer, SlidingKVCache):
                raise ValueError("a sliding-window cache cannot have static shapes")
            if isinstance(layer.length, int):
                layer.length = torch.tensor(layer.length, device=layer.k.device)

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (B',) of every layer (beam search)."""
        for layer in self.layers:
            layer.reorder(index)
