"""Chat with a trained model: ``python scripts/chat.py --checkpoint DIR/model.pt``."""

from reference_impl.generation.cli import chat_main

raise SystemExit(chat_main())
