"""Measuring the tensor memory a block of code allocates, on any device (the CPU included)."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage created inside the ``with`` block and alive at once.

    Every op's outputs pass through ``__torch_dispatch__``: a storage seen for the first time
    is added to the live set (its bytes counted), and after each op the storages no longer
    referenced anywhere (Python or autograd's saved tensors) are dropped. ``peak`` is the
    largest total, ``largest`` the largest single storage. Storages created before the block
    (inputs, weights) are not counted. Works on any device, CPU included.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = self.peak = self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for key, (ref, nbytes) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= nbytes
        for x in tree_flatten(out)[0]:
            if isinstance(x, Tensor):
                storage = x.untyped_storage()
                key = storage.data_ptr()
                if key not in self.live and storage.nbytes() > 0:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
                    self.largest = max(self.largest, storage.nbytes())
        self.peak = max(self.peak, self.current)
        return out
