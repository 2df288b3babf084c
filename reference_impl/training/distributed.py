"""Several processes through ``torchrun``: which one this is, and the process group."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """The process that logs and writes checkpoints."""
        return self.rank == 0


def setup() -> Dist:
    """Join the process group ``torchrun`` describes (NCCL on GPUs, gloo on CPUs); a plain
    ``python`` run is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        # The DDP wrapper (its reducer holds the group) may sit in reference cycles: free it
        # now, so that the group and its gloo threads go here and not at interpreter exit,
        # where they can abort the process ("terminate called without an active exception").
        gc.collect()
        dist.destroy_process_group()
