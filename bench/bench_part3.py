"""Part 3's benchmarks in one run, with their default settings (2 threads):

1. bench_attention_memory.py: peak memory and time of naive vs tiled attention, forward and
   backward, at T = 512, 2,048 and 8,192 (float32, one head of 64, causal);
2. bench_moe.py: training tokens/s of a small MoE LM vs a dense LM of equal active parameters.

    python bench/bench_part3.py
"""

from __future__ import annotations

import sys

import bench_attention_memory  # run as a script: bench/ is on sys.path
import bench_moe


def main() -> None:
    for module in (bench_attention_memory, bench_moe):
        print(f"== {module.__name__}")
        sys.argv = [str(module.__file__)]  # each parses its own (default) arguments
        module.main()
        print()


if __name__ == "__main__":
    main()
