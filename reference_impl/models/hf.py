"""Load Hugging Face GPT-2 and Llama weights into :class:`TransformerLM`.

Works on any model object with ``.config`` and ``.state_dict()`` in the layout of
``transformers``' ``GPT2LMHeadModel`` / ``LlamaForCausalLM``; ``transformers`` itself is
not imported here. To load a real checkpoint from local files::

    from transformers import GPT2LMHeadModel
    model = from_hf_gpt2(GPT2LMHeadModel.from_pretrained("/path/to/gpt2"))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reference_impl.models.config import ModelConfig
from reference_impl.models.model import TransformerLM


class UnsupportedHFModel(ValueError):
    """The Hugging Face model uses an option that TransformerLM does not implement."""


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedHFModel(f"cannot convert: {what}")


def _load(config: ModelConfig, state: dict[str, Tensor], dtype: torch.dtype) -> TransformerLM:
    model = TransformerLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if config.tie_weights else set()
    if set(missing) - tied or unexpected:
        raise UnsupportedHFModel(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    return model.to(dtype).eval()


def from_hf_gpt2(hf_model: Any) -> TransformerLM:
    """A TransformerLM (eval mode) with the weights of a Hugging Face ``GPT2LMHeadModel``.

    GPT-2 stores linear weights as (in, out) ``Conv1D``s and fuses q, k, v into
    ``c_attn``; both are undone here.
    """
    c = hf_model.config
    _require(
        c.activation_function in ("gelu_new", "gelu_pytorch_tanh", "gelu"),
        f"activation {c.activation_function}",
    )
    _require(c.scale_attn_weights, "scale_attn_weights=False")
    _require(not c.scale_attn_by_inverse_layer_idx, "scale_attn_by_inverse_layer_idx=True")
    config = ModelConfig(
        vocab_size=c.vocab_size,
        context_length=c.n_positions,
        d_model=c.n_embd,
        n_heads=c.n_head,
        n_layers=c.n_layer,
        d_ff=c.n_inner or 4 * c.n_embd,
        ffn_kind="gelu",
        gelu_approximate="none" if c.activation_function == "gelu" else "tanh",
        norm_kind="layernorm",
        norm_eps=c.layer_norm_epsilon,
        pos_kind="learned",
        bias=True,
        tie_weights=c.tie_word_embeddings,
    )
    sd = hf_model.state_dict()
    d = c.n_embd
    state = {
        "tok_emb.weight": sd["transformer.wte.weight"],
        "pos_emb.weight": sd["transformer.wpe.weight"],
        "norm_f.weight": sd["transformer.ln_f.weight"],
        "norm_f.bias": sd["transformer.ln_f.bias"],
    }
    if not c.tie_word_embeddings:
        state["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(c.n_layer):
        src, dst = f"transformer.h.{i}.", f"blocks.{i}."
        qkv_w = sd[src + "attn.c_attn.weight"].t()  # (3d, d)
        qkv_b = sd[src + "attn.c_attn.bias"]
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            state[dst + f"attn.{name}.weight"] = qkv_w[j * d : (j + 1) * d]
            state[dst + f"attn.{name}.bias"] = qkv_b[j * d : (j + 1) * d]
        for ours, theirs in (
            ("attn.o_proj", "attn.c_proj"),
            ("ffn.up_proj", "mlp.c_fc"),
            ("ffn.down_proj", "mlp.c_proj"),
        ):
            state[dst + ours + ".weight"] = sd[src + theirs + ".weight"].t()
            state[dst + ours + ".bias"] = sd[src + theirs + ".bias"]
        for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
            state[dst + ours + ".weight"] = sd[src + theirs + ".weight"]
            state[dst + ours + ".bias"] = sd[src + theirs + ".bias"]
    return _load(config, state, sd["transformer.wte.weight"].dtype)


def _rope_theta(c: Any) -> float:
    # transformers >= 5 keeps theta and scaling in ``rope_parameters``; 4.x in two fields.
    params = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
    rope_type = params.get("rope_type", params.get("type", "default"))
    _require(rope_type == "default", f"RoPE scaling of type {rope_type!r}")
    return float(params.get("rope_theta", getattr(c, "rope_theta", 10000.0)))


def _rename_layers(
    sd: dict[str, Tensor], prefix: str, n_layers: int, renames: dict[str, str]
) -> dict[str, Tensor]:
    """``{prefix}layers.{i}.<theirs>rest`` -> ``blocks.{i}.<ours>rest`` for each layer's
    weights, ``renames`` mapping their name prefixes to ours (the first that matches wins)."""
    state = {}
    for i in range(n_layers):
        layer = f"{prefix}layers.{i}."
        for key, value in sd.items():
            if not key.startswith(layer):
                continue
            rest = key[len(layer) :]
            theirs = next((t for t in renames if rest.startswith(t)), None)
            if theirs is not None:
                state[f"blocks.{i}.{renames[theirs]}{rest[len(theirs) :]}"] = value
    return state


def from_hf_llama(hf_model: Any) -> TransformerLM:
    """A TransformerLM (eval mode) with the weights of a Hugging Face ``LlamaForCausalLM``.

    Grouped-query heads, an explicit ``head_dim`` and tied or untied embeddings are kept.
    """
    c = hf_model.config
    _require(c.hidden_act == "silu", f"activation {c.hidden_act}")
    _require(
        c.attention_bias == c.mlp_bias,
        "attention_bias != mlp_bias (TransformerLM has one bias switch)",
    )
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    config = ModelConfig(
        vocab_size=c.vocab_size,
        context_length=c.max_position_embeddings,
        d_model=c.hidden_size,
        n_heads=c.num_attention_heads,
        n_kv_heads=c.num_key_value_heads,
        head_dim=head_dim,
        n_layers=c.num_hidden_layers,
        d_ff=c.intermediate_size,
        ffn_kind="swiglu",
        norm_kind="rmsnorm",
        norm_eps=c.rms_norm_eps,
        pos_kind="rope",
        rope_theta=_rope_theta(c),
        bias=c.attention_bias,
        tie_weights=c.tie_word_embeddings,
    )
    sd = hf_model.state_dict()
    state = {
        "tok_emb.weight": sd["model.embed_tokens.weight"],
        "norm_f.weight": sd["model.norm.weight"],
    }
    if not c.tie_word_embeddings:
        state["lm_head.weight"] = sd["lm_head.weight"]
    renames = {
        "self_attn.": "attn.",
        "mlp.": "ffn.",
        "input_layernorm.": "attn_norm.",
        "post_attention_layernorm.": "ffn_norm.",
    }
    state |= _rename_layers(sd, "model.", c.num_hidden_layers, renames)
    return _load(config, state, sd["model.embed_tokens.weight"].dtype)


def _gemma_state(sd: dict[str, Tensor], prefix: str, n_layers: int) -> dict[str, Tensor]:
    """Gemma weights under ``prefix`` (``model.`` or ``model.language_model.``) in our names.

    Gemma's RMSNorm multiplies by ``1 + w`` (its weights start at 0); ours by ``w``, so every
    norm weight gets 1 added here, in float32 as transformers computes it.
    """
    renames = {
        "self_attn.": "attn.",  # q_norm, k_norm too
        "mlp.": "ffn.",
        "input_layernorm.": "attn_norm.",
        "post_attention_layernorm.": "post_attn_norm.",
        "pre_feedforward_layernorm.": "ffn_norm.",
        "post_feedforward_layernorm.": "post_ffn_norm.",
    }

    def offset(name: str, w: Tensor) -> Tensor:
        return (1.0 + w.float()).to(w.dtype) if "norm" in name else w

    state = {
        "tok_emb.weight": sd[prefix + "embed_tokens.weight"],
        "norm_f.weight": offset("norm", sd[prefix + "norm.weight"]),
    }
    state |= {k: offset(k, v) for k, v in _rename_layers(sd, prefix, n_layers, renames).items()}
    return state


def _gemma_config(c: Any, **options: Any) -> ModelConfig:
    """The ModelConfig of a Gemma 2 / Gemma 3 text config ``c``; ``options`` add to it."""
    _require(c.hidden_activation == "gelu_pytorch_tanh", f"activation {c.hidden_activation}")
    _require(not c.attention_bias, "attention_bias=True")
    _require(not getattr(c, "use_bidirectional_attention", False), "bidirectional attention")
    kinds = {"sliding_attention": "L", "full_attention": "G"}
    _require(set(c.layer_types) <= set(kinds), f"layer types {set(c.layer_types)}")
    return ModelConfig(
        vocab_size=c.vocab_size,
        context_length=c.max_position_embeddings,
        d_model=c.hidden_size,
        n_heads=c.num_attention_heads,
        n_kv_heads=c.num_key_value_heads,
        head_dim=c.head_dim,
        n_layers=c.num_hidden_layers,
        d_ff=c.intermediate_size,
        ffn_kind="geglu",
        gelu_approximate="tanh",
        norm_kind="rmsnorm",
        norm_eps=c.rms_norm_eps,
        pos_kind="rope",
        bias=False,
        tie_weights=c.tie_word_embeddings,
        attn_pattern="".join(kinds[t] for t in c.layer_types),
        sliding_window=c.sliding_window,
        query_pre_attn_scalar=c.query_pre_attn_scalar,
        sandwich_norm=True,
        embed_scale=True,
        **options,
    )


def _gemma_model(config: ModelConfig, sd: dict[str, Tensor], prefix: str) -> TransformerLM:
    state = _gemma_state(sd, prefix, config.n_layers)
    if not config.tie_weights:
        state["lm_head.weight"] = sd["lm_head.weight"]
    return _load(config, state, sd[prefix + "embed_tokens.weight"].dtype)


def from_hf_gemma2(hf_model: Any) -> TransformerLM:
    """A TransformerLM (eval mode) with the weights of a Hugging Face ``Gemma2ForCausalLM``:
    alternating local and global layers, attention and final soft-caps, sandwich norms,
    GeGLU (tanh GELU), embeddings scaled by sqrt(d_model), tied head."""
    c = hf_model.config
    config = _gemma_config(
        c,
        rope_theta=_rope_theta(c),
        attn_softcap=c.attn_logit_softcapping,
        final_softcap=c.final_logit_softcapping,
    )
    return _gemma_model(config, hf_model.state_dict(), "model.")


def from_hf_gemma3(hf_model: Any) -> TransformerLM:
    """A TransformerLM (eval mode) with the weights of a Hugging Face ``Gemma3ForCausalLM``,
    or the text side of a ``Gemma3ForConditionalGeneration`` (its ``image_token_id`` kept:
    pass the projected image features as ``image_embeds``).

    Gemma 3 adds QK-norm and a RoPE base per layer kind to Gemma 2. As transformers does:
    the config's ``attn_logit_softcapping`` is stored but never applied, and the
    conditional-generation model does not apply ``final_logit_softcapping``.
    """
    c = hf_model.config
    multimodal = hasattr(c, "text_config") and hasattr(c, "vision_config")
    text = c.text_config if multimodal else c
    rope = text.rope_parameters
    for kind in ("full_attention", "sliding_attention"):
        _require(rope[kind].get("rope_type", "default") == "default", f"{kind} RoPE scaling")
    config = _gemma_config(
        text,
        rope_theta=float(rope["full_attention"]["rope_theta"]),
        rope_local_theta=float(rope["sliding_attention"]["rope_theta"]),
        qk_norm=True,
        final_softcap=None if multimodal else text.final_logit_softcapping,
        image_token_id=c.image_token_id if multimodal else None,
    )
    prefix = "model.language_model." if multimodal else "model."
    return _gemma_model(config, hf_model.state_dict(), prefix)
