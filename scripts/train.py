"""Train from a YAML config: ``python scripts/train.py --config configs/small_model.yaml``."""

from reference_impl.training.cli import main

raise SystemExit(main())
