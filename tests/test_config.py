"""Config loading: every shipped config is valid; every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reference_impl.models import ModelConfig, TransformerLM
from reference_impl.training import load_experiment
from reference_impl.utils.config import ConfigError

from .conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_five_configs_ship() -> None:
    assert [p.name for p in CONFIGS] == [
        "large_model.yaml",
        "medium_model.yaml",
        "mini_gemini.yaml",
        "shakespeare_3min.yaml",
        "small_model.yaml",
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_configs_load_and_build(path: Path) -> None:
    exp = load_experiment(path)
    with torch.device("meta"):  # no memory: only the shapes are built
        model = TransformerLM(exp.model)
    assert model.num_parameters() > 0
    assert ModelConfig.from_dict(exp.model.to_dict()) == exp.model


def test_parameter_counts_grow_small_to_large() -> None:
    counts = []
    for name in ("small", "medium", "large"):
        with torch.device("meta"):
            counts.append(TransformerLM(load_experiment(REPO / f"configs/{name}_model.yaml").model))
    n = [m.num_parameters() for m in counts]
    assert n[0] < 2_000_000 < n[1] < 50_000_000 < n[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


BASE = "model: {vocab_size: 256, context_length: 16, d_model: 32, n_heads: 4, n_layers: 1"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (BASE + ", n_head: 4}", r"model\.n_head: unknown key \(did you mean 'n_heads'\?\)"),
        (BASE + ", dropout: high}", r"model\.dropout: expected float, got str \('high'\)"),
        (BASE + ", bias: 1}", r"model\.bias: expected bool, got int"),
        (BASE.replace("n_layers: 1", "n_layers: 1.5") + "}", r"model\.n_layers: expected int"),
        (BASE + ", ffn_kind: relu}", r"model\.ffn_kind: expected 'gelu' \| 'swiglu' \| 'geglu'"),
        (BASE.replace("d_model: 32", "d_model: 30") + "}", r"model\.n_heads: d_model=30 is not"),
        (BASE + ", n_kv_heads: 3}", r"model\.n_kv_heads: n_heads=4 is not divisible"),
        (BASE + ", dropout: 1.5}", r"model\.dropout: must be in \[0, 1\)"),
        (BASE.replace("n_heads: 4", "n_heads: 0") + "}", r"model\.n_heads: must be >= 1"),
        ("model: {vocab_size: 256}", r"model: missing required key\(s\): context_length"),
        (BASE + "}\ntrain: {lr: fast}", r"train\.lr: expected float"),
        (BASE + "}\ntrain: {max_step: 3}", r"train\.max_step: unknown key"),
        (BASE + "}\ntrian: {}", r"trian: unknown section"),
        (BASE + "}\ndata: {size: huge}", r"data\.size: expected 'tiny' \| 'small'"),
        (BASE.replace("256", "100") + "}", r"model\.vocab_size: the byte tokenizer needs"),
        (BASE + ", attn_pattern: LX}", r"model\.attn_pattern: a string of L and G, got 'LX'"),
        (BASE + ", attn_pattern: LG}", r"model\.sliding_window: local layers \(L in attn_pattern"),
        (BASE + ", ffn_pattern: M, moe_top_k: 9}", r"model\.moe_top_k: must be in \[1, moe_num"),
        (BASE + ", attn_softcap: -1.0}", r"model\.attn_softcap: must be > 0"),
        (BASE + ", image_token_id: 256}", r"model\.image_token_id: must be a token id below"),
        ("model: [1, 2]", r"model: expected a mapping"),
        ("model: {a: [}", r"not valid YAML"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment(write(tmp_path, yaml_text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_experiment(tmp_path / "nope.yaml")


def test_yaml_exponent_floats_are_floats(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, BASE + "}\ntrain: {lr: 3e-4, min_lr: 1e-5}"))
    assert exp.train.lr == 3e-4 and exp.train.min_lr == 1e-5


def test_int_accepted_for_float(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, BASE + ", rope_theta: 500000}"))
    assert exp.model.rope_theta == 500000.0 and isinstance(exp.model.rope_theta, float)


def test_derived_fields_are_filled_in_once_and_null_means_derive() -> None:
    base = {"vocab_size": 10, "context_length": 8, "d_model": 96, "n_heads": 4, "n_layers": 1}
    cfg = ModelConfig.from_dict(base | {"n_kv_heads": None, "head_dim": None, "d_ff": None})
    assert (cfg.n_kv_heads, cfg.head_dim, cfg.d_ff) == (4, 24, 384)
    gated = ModelConfig.from_dict(base | {"ffn_kind": "swiglu"})
    assert gated.d_ff == 256  # 8/3 * 96 = 256, a multiple of 64
    assert ModelConfig.from_dict(gated.to_dict()) == gated  # what a checkpoint stores
    with pytest.raises(ConfigError, match=r"model\.d_ff: must be >= 1"):
        ModelConfig.from_dict(base | {"d_ff": 0})
    with pytest.raises(ConfigError, match=r"model\.n_kv_heads: expected int"):
        ModelConfig.from_dict(base | {"n_kv_heads": "two"})
