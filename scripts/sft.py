"""Fine-tune a pretrained model into an assistant:
``python scripts/sft.py --checkpoint BASE/model.pt --out-dir DIR``."""

from reference_impl.training.sft import sft_main

raise SystemExit(sft_main())
