"""Continue a prompt: ``python scripts/generate.py --checkpoint DIR/model.pt --prompt TEXT``."""

from reference_impl.generation.cli import generate_main

raise SystemExit(generate_main())
