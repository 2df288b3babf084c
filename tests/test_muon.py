"""Muon, batched by shape, against torch.optim.Muon; the Muon + AdamW pair in the trainer:
which parameters each half takes, exact resume, and a checkpoint of the other optimizer."""

from __future__ import annotations

import pytest
import torch

from reference_impl.models import ModelConfig, TransformerLM
from reference_impl.training import TrainError, train
from reference_impl.training.muon import Muon, MuonWithAdamW, orthogonalize
from reference_impl.utils.config import ConfigError, from_dict

from .test_trainer import MODEL, experiment, quiet, without_speed

SHAPES = [(32, 32), (32, 32), (16, 32), (96, 32), (96, 32), (32, 96)]  # repeats, wide and tall


def matrices(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for shape in SHAPES]


def test_orthogonalize_pushes_every_singular_value_towards_one() -> None:
    g = torch.randn(3, 24, 64, generator=torch.Generator().manual_seed(0))
    g *= torch.logspace(-1, 1, 24)[:, None]  # singular values spread over 100x or more
    assert (torch.linalg.svdvals(g)[:, 0] > 100 * torch.linalg.svdvals(g)[:, -1]).all()
    o = orthogonalize(g).float()
    s = torch.linalg.svdvals(o)
    assert s.min() > 0.5 and s.max() < 1.3  # the quintic's band, not exactly 1
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    polar = u @ vh
    cosine = (o * polar).sum(dim=(-2, -1)) / (o.norm(dim=(-2, -1)) * polar.norm(dim=(-2, -1)))
    assert (cosine > 0.95).all()
    assert orthogonalize(g.mT).mT.float().allclose(o, atol=1e-2)  # tall: the same, transposed


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_muon_takes_the_steps_of_torch_muon(weight_decay: float) -> None:
    ours = [torch.nn.Parameter(m) for m in matrices(0)]
    peer = [torch.nn.Parameter(m.clone()) for m in matrices(0)]
    opt = Muon(ours, lr=0.02, weight_decay=weight_decay)
    ref = torch.optim.Muon(peer, lr=0.02, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw")
    for step in range(4):
        for a, b, g in zip(ours, peer, matrices(100 + step), strict=True):
            a.grad, b.grad = g, g.clone()
        opt.step()
        ref.step()
    for a, b, start in zip(ours, peer, matrices(0), strict=True):
        moved = (b - start).abs().max()
        assert moved > 0.01  # four steps of 0.02 * 0.2 * sqrt(max(m, n)) went somewhere
        torch.testing.assert_close(a, b)  # batched or one by one, the same bfloat16 products


def test_muon_refuses_what_is_not_a_matrix() -> None:
    with pytest.raises(ValueError, match="matrix"):
        Muon([torch.nn.Parameter(torch.ones(4))])


def test_muon_with_adamw_splits_the_parameters_once() -> None:
    model = TransformerLM(ModelConfig(**MODEL))  # type: ignore[arg-type]
    opt = MuonWithAdamW(model, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    muon = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    adamw = {id(p) for g in opt.adamw.param_groups for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert not muon & adamw and muon | adamw == set(names)
    assert {names[i] for i in muon} == {
        n for n, p in model.named_parameters() if p.dim() == 2 and n != "tok_emb.weight"
    }
    decayed = {names[id(p)] for p in opt.adamw.param_groups[0]["params"]}
    assert decayed == {"tok_emb.weight"}  # the tied embedding and head
    assert len(opt.param_groups) == 3  # the schedule sets every one


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("data")


def test_a_muon_run_resumes_exactly_and_learns(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    straight = train(experiment(data_dir, optimizer="muon"), tmp_path / "a", log=quiet)
    train(experiment(data_dir, optimizer="muon"), tmp_path / "b", max_iters=12, log=quiet)
    resumed = train(experiment(data_dir, optimizer="muon"), tmp_path / "b", resume=True, log=quiet)
    assert resumed.val_loss == straight.val_loss
    assert without_speed(tmp_path / "b") == without_speed(tmp_path / "a")
    assert straight.losses[29] < straight.losses[0] - 1.0


def test_resuming_with_the_other_optimizer_is_a_clear_error(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    train(experiment(data_dir), tmp_path, max_iters=5, log=quiet)
    with pytest.raises(TrainError, match=r"train\.optimizer='adamw'.*'muon'"):
        train(experiment(data_dir, optimizer="muon"), tmp_path, resume=True, log=quiet)


def test_an_unknown_optimizer_names_its_key() -> None:
    from reference_impl.training import TrainConfig

    with pytest.raises(ConfigError, match="optimizer"):
        from_dict(TrainConfig, {"optimizer": "sgd"}, "train")
