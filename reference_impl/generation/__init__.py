"""Text generation: logit processors, greedy/sampled decoding with a KV cache, beam search,
and loading a trained model to generate from."""

from reference_impl.generation.beam import beam_search
from reference_impl.generation.decoding import (
    choose_next,
    ends_with_any,
    generate,
    next_token_logits,
    process_logits,
)
from reference_impl.generation.loading import load_model
from reference_impl.generation.processors import (
    apply_repetition_penalty,
    apply_temperature,
    top_k_filter,
    top_p_filter,
)

__all__ = [
    "apply_repetition_penalty",
    "apply_temperature",
    "beam_search",
    "choose_next",
    "ends_with_any",
    "generate",
    "load_model",
    "next_token_logits",
    "process_logits",
    "top_k_filter",
    "top_p_filter",
]
