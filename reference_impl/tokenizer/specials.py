"""The special tokens the course's tokenizers reserve: ``<|endoftext|>`` between documents,
and the chat format's turn markers (see :mod:`reference_impl.tokenizer.chat`)."""

#: The special token that separates documents.
EOT = "<|endoftext|>"
USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
#: The chat format's special tokens, reserved in a tokenizer beside ``<|endoftext|>``.
CHAT_TOKENS = (USER, ASSISTANT, END)
#: Every special token a tokenizer folder may hold, in id order.
SPECIAL_TOKENS = (EOT, *CHAT_TOKENS)
