"""The reference trainer: AdamW (or Muon), warmup + cosine, clipping, accumulation, evaluation,
logging (JSON lines, TensorBoard, optionally Weights & Biases), checkpoints that resume
exactly, and several processes through ``torchrun`` (DDP)."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from reference_impl.data import get_batch, is_prepared, open_token_file, prepare, token_dir
from reference_impl.data.chat import (
    ChatExamples,
    get_chat_batch,
    instruction_conversations,
    render_examples,
)
from reference_impl.models import ModelConfig, TransformerLM, lm_loss
from reference_impl.tokenizer import EOT, load_tokenizer, tokenizer_state
from reference_impl.training import distributed
from reference_impl.training.config import DataConfig, ExperimentConfig, TrainConfig
from reference_impl.training.muon import MuonWithAdamW
from reference_impl.training.schedule import cosine_lr
from reference_impl.utils import CheckpointError, load_checkpoint, resolve_device, save_checkpoint


class TrainError(RuntimeError):
    """Something the user can fix (an existing run, a config that does not fit a checkpoint)."""


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, device: torch.device
) -> torch.optim.AdamW | MuonWithAdamW:
    """``train.optimizer``: AdamW with weight decay on matrices only (not on biases and norm
    gains); or Muon on the blocks' matrices with AdamW on the rest. AdamW runs fused (one
    kernel for all parameters) on CPUs and CUDA GPUs: 4x faster than its loop on 2 cores."""
    betas = (cfg.beta1, cfg.beta2)
    fused = device.type in ("cpu", "cuda")
    if cfg.optimizer == "muon":
        return MuonWithAdamW(model, cfg.lr, cfg.weight_decay, betas, fused)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, fused=fused)


def load_splits(data: DataConfig, vocab_size: int, d: distributed.Dist) -> dict[str, np.ndarray]:
    """The train and validation token files, built on first use (by the main process)."""
    folder = token_dir(data.dataset, data.size, data.tokenizer, data.data_dir)
    if d.main and not is_prepared(data.dataset, data.size, data.tokenizer, data.data_dir):
        prepare(data.dataset, data.size, data.tokenizer, data.data_dir, data.data_dir)
    distributed.barrier(d)
    return {
        split: open_token_file(folder / f"{split}.bin", vocab_size)[0]
        for split in ("train", "validation")
    }


class TextBatches:
    """Pretraining: random windows of ``block`` tokens from the token files."""

    def __init__(self, exp: ExperimentConfig, d: distributed.Dist) -> None:
        self.splits = load_splits(exp.data, exp.model.vocab_size, d)
        self.block = exp.model.context_length

    def sample(self, split: str, batch_size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        return get_batch(self.splits[split], batch_size, self.block, gen)

    def describe(self) -> str:
        return f"{len(self.splits['train']):,} training tokens"


class ChatBatches:
    """Supervised fine-tuning: whole conversations in the chat format, padded; only the
    assistant's tokens are trained on."""

    def __init__(self, exp: ExperimentConfig) -> None:
        tok = load_tokenizer(exp.data.tokenizer)
        if tok.eot_id is None:
            raise TrainError(f"data.tokenizer {exp.data.tokenizer!r} has no {EOT} token")
        train, held_out = instruction_conversations(exp.data.size, seed=exp.train.seed)
        try:
            self.splits: dict[str, ChatExamples] = {
                "train": render_examples(tok.tokenizer, train, exp.model.context_length),
                "validation": render_examples(tok.tokenizer, held_out, exp.model.context_length),
            }
        except ValueError as e:
            raise TrainError(f"data.dataset instructions: {e}") from None
        self.pad_id = tok.eot_id

    def sample(self, split: str, batch_size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        return get_chat_batch(self.splits[split], batch_size, self.pad_id, gen)

    def describe(self) -> str:
        train = self.splits["train"]
        return (
            f"{len(train):,} training conversations ({train.n_trained:,} answer tokens; "
            f"{train.dropped} longer than the context left out)"
        )


def load_batches(exp: ExperimentConfig, d: distributed.Dist) -> TextBatches | ChatBatches:
    return ChatBatches(exp) if exp.data.dataset == "instructions" else TextBatches(exp, d)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: TextBatches | ChatBatches,
    cfg: TrainConfig,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]],
) -> float:
    """Mean loss over ``cfg.eval_iters`` validation batches, always the same ones (a
    fixed seed)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    total = 0.0
    for _ in range(cfg.eval_iters):
        x, y = batches.sample("validation", cfg.batch_size, gen)
        with autocast():
            total += lm_loss(model(x.to(device)), y.to(device)).item()
    model.train(was_training)
    return total / cfg.eval_iters


class Metrics:
    """``metrics.jsonl`` (one JSON object per line), TensorBoard and W&B, main process only."""

    def __init__(self, out: Path, start: int, exp: ExperimentConfig, enabled: bool) -> None:
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.tb: Any = None
        self.wandb: Any = None
        if not enabled:
            return
        kept = []
        if start > 0 and self.path.is_file():  # a resumed run drops what came after its checkpoint
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["iter"] < start
            ]
        self.path.write_text("".join(line + "\n" for line in kept))
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(out / "tb"), purge_step=start)
        if exp.train.wandb:
            try:
                import wandb  # type: ignore[import-not-found]
            except ImportError:
                raise TrainError("train.wandb: true needs `pip install wandb`") from None
            self.wandb = wandb.init(mode="offline", dir=str(out), config=asdict(exp))

    def log(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        step = int(record["iter"])
        for key, value in record.items():
            if key != "iter":
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(record, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


@dataclass
class TrainResult:
    out_dir: Path
    iters_done: int
    losses: dict[int, float] = field(default_factory=dict)  # logged iterations only
    val_loss: float = math.nan


def _check_resumable(
    ckpt: dict[str, Any],
    exp: ExperimentConfig,
    path: Path,
    fix: str = "resume with the checkpoint's config or use another --out-dir",
) -> None:
    # from_dict fills in what older checkpoints saved as None (derived fields)
    saved, wanted = ModelConfig.from_dict(ckpt["model_config"]).to_dict(), exp.model.to_dict()
    diff = [k for k in wanted if saved.get(k) != wanted[k]]
    if diff:
        k = diff[0]
        raise TrainError(
            f"{path} was trained with model.{k}={saved.get(k)!r}, the config says "
            f"{wanted[k]!r}: {fix}"
        )


def _initial_weights(exp: ExperimentConfig) -> dict[str, Tensor] | None:
    """The weights of ``train.init_from`` (a checkpoint of the same architecture), if set."""
    path = exp.train.init_from
    if path is None:
        return None
    try:
        base = load_checkpoint(path)
    except CheckpointError as e:
        raise TrainError(f"train.init_from: {e}") from None
    _check_resumable(base, exp, Path(path), "fine-tune with the base model's architecture")
    return base["model"]


class Clock:
    """The schedule's position: the iteration, or for a run with a ``time_limit`` (seconds)
    ``max_iters`` positions spread over the limit, counted from the end of the first
    iteration (the one that compiles). Without a limit it never says the time is up."""

    def __init__(self, time_limit: float | None, max_iters: int) -> None:
        self.limit, self.max_iters = time_limit, max_iters
        self.started: float | None = None

    def position(self, it: int) -> float:
        if self.limit is None:
            return it
        if self.started is None:
            return 0.0
        return self.max_iters * (time.perf_counter() - self.started) / self.limit

    def tick(self) -> bool:
        """Called after each iteration: whether the time is up."""
        if self.limit is None:
            return False
        if self.started is None:
            self.started = time.perf_counter()
            return False
        return time.perf_counter() - self.started >= self.limit


def _iterations(start: int, stop: int | None, show: bool) -> Iterator[int]:
    """``start``, ``start + 1``, ... up to ``stop`` (without one: until the loop breaks)."""
    return iter(
        tqdm(
            itertools.count(start) if stop is None else range(start, stop),
            initial=start,
            total=stop,
            disable=not show,
            desc="training",
            leave=False,
        )
    )


def train(
    exp: ExperimentConfig,
    out_dir: str | Path,
    *,
    max_iters: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``exp``'s model on its data; stop after ``max_iters`` (default: the schedule's
    ``train.max_iters``). Writes ``out_dir/model.pt`` (every ``eval_interval`` iterations
    and at the end), ``metrics.jsonl`` and TensorBoard logs under ``out_dir/tb``."""
    cfg, out = exp.train, Path(out_dir)
    stop = cfg.max_iters if max_iters is None and cfg.time_limit is None else max_iters
    ckpt_path = out / "model.pt"
    ckpt = None
    if resume and cfg.time_limit is not None:
        raise TrainError(
            "--resume: a run with train.time_limit follows the clock, so it cannot continue "
            "on exactly the same path; start it again, or drop time_limit"
        )
    if resume:
        try:
            ckpt = load_checkpoint(ckpt_path)
        except CheckpointError as e:
            raise TrainError(f"--resume: {e}") from None
        _check_resumable(ckpt, exp, ckpt_path)
        saved = ckpt.get("train_config", {}).get("optimizer", "adamw")
        if saved != cfg.optimizer:
            raise TrainError(
                f"{ckpt_path} was trained with train.optimizer={saved!r}, the config says "
                f"{cfg.optimizer!r}: the optimizer's state cannot continue another optimizer"
            )
    elif ckpt_path.exists() and not overwrite:
        raise TrainError(f"{ckpt_path} exists: pass --resume to continue it, or --overwrite")
    init = None if ckpt is not None else _initial_weights(exp)

    d = distributed.setup()
    try:
        return _train(exp, cfg, out, stop, ckpt, init, d, progress, log)
    finally:
        distributed.teardown(d)


def _train(
    exp: ExperimentConfig,
    cfg: TrainConfig,
    out: Path,
    stop: int | None,
    ckpt: dict[str, Any] | None,
    init: dict[str, Tensor] | None,
    d: distributed.Dist,
    progress: bool,
    log: Callable[[str], None],
) -> TrainResult:
    device = resolve_device(cfg.device)
    if d.enabled and device.type == "cuda":
        device = torch.device("cuda", d.local_rank)
    batches = load_batches(exp, d)
    torch.manual_seed(cfg.seed + d.rank)
    model = TransformerLM(exp.model).to(device)
    if init is not None:
        model.load_state_dict(init)
    opt = make_optimizer(model, cfg, device)
    gen = torch.Generator().manual_seed(cfg.seed + d.rank)
    start = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["iter"])
        if d.main:  # other processes keep fresh, distinct streams
            torch.set_rng_state(ckpt["rng"]["torch"])
            gen.set_state(ckpt["rng"]["data"])
    net: nn.Module = model
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    if d.enabled:
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    use_bf16 = cfg.dtype == "bfloat16"

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if use_bf16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if d.enabled and cfg.time_limit is not None:
        raise TrainError(
            "train.time_limit: each process would stop at its own iteration; "
            "a run on several processes needs max_iters"
        )
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    metrics = Metrics(out, start, exp, d.main)
    block = exp.model.context_length
    tokens_per_iter = cfg.batch_size * block * cfg.grad_accum_steps * d.world_size
    if d.main:
        log(
            f"model: {model.num_parameters():,} parameters on {device} x {d.world_size}; "
            f"data: {batches.describe()} ({exp.data.dataset}); up to "
            f"{tokens_per_iter:,} tokens per iteration; "
            + (
                f"iterations {start} -> {stop}"
                if cfg.time_limit is None
                else f"iterations for {cfg.time_limit:g} s (a schedule of {cfg.max_iters})"
                + (f", at most {stop}" if stop is not None else "")
            )
        )

    def state(iters_done: int, torch_rng: Tensor, data_rng: Tensor) -> dict[str, Any]:
        return {
            "model_config": exp.model.to_dict(),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "iter": iters_done,
            "train_config": asdict(cfg),
            "data_config": asdict(exp.data),
            "tokenizer": tokenizer_state(exp.data.tokenizer),
            "chat_format": exp.data.dataset == "instructions",
            "rng": {"torch": torch_rng, "data": data_rng},
        }

    result = TrainResult(out, start)
    net.train()
    began, it, tokens_seen = time.perf_counter(), start, 0
    clock = Clock(cfg.time_limit, cfg.max_iters)
    rng_at_start = (torch.get_rng_state(), gen.get_state())
    try:
        for it in _iterations(start, stop, progress and d.main):
            rng_at_start = (torch.get_rng_state(), gen.get_state())
            if it % cfg.eval_interval == 0 and it > 0 and d.main:
                val = evaluate(model, batches, cfg, device, autocast)
                metrics.log({"iter": it, "val_loss": val, "val_ppl": math.exp(min(val, 50))})
            lr = cosine_lr(clock.position(it), cfg.lr, cfg.min_lr, cfg.warmup_iters, cfg.max_iters)
            for group in opt.param_groups:
                group["lr"] = lr
            loss_sum = aux_sum = 0.0
            for micro in range(cfg.grad_accum_steps):
                x, y = batches.sample("train", cfg.batch_size, gen)
                tokens_seen += x.numel() * d.world_size
                last = micro == cfg.grad_accum_steps - 1
                sync = contextlib.nullcontext() if last or not d.enabled else net.no_sync()  # type: ignore[operator]
                with sync, autocast():
                    loss = lm_loss(net(x.to(device)), y.to(device)) / cfg.grad_accum_steps
                    # MoE layers' load balancing (0 without them), logged beside the LM loss
                    aux = model.aux_loss() / cfg.grad_accum_steps
                with sync:
                    (loss + exp.model.moe_aux_loss_coef * aux).backward()
                loss_sum += loss.item()
                aux_sum += aux.item()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            result.iters_done = it + 1
            done = it + 1 == stop or clock.tick()
            if it % cfg.log_interval == 0 or done:
                result.losses[it] = loss_sum
                rate = tokens_seen / (time.perf_counter() - began)
                record = {"iter": it, "loss": loss_sum, "lr": lr, "tokens_per_s": rate}
                moe = "M" in exp.model.ffn_pattern
                metrics.log(record | ({"aux_loss": aux_sum} if moe else {}))
                if d.main:
                    aux_note = f"  aux {aux_sum:.4f}" if moe else ""
                    log(
                        f"iter {it:6d}  loss {loss_sum:.4f}{aux_note}  lr {lr:.2e}  "
                        f"{rate:,.0f} tok/s"
                    )
            if done:
                break
            if (it + 1) % cfg.eval_interval == 0 and d.main:
                save_checkpoint(
                    out / "model.pt", state(it + 1, torch.get_rng_state(), gen.get_state())
                )
    except KeyboardInterrupt:
        if d.main:  # keep every finished iteration: resume continues from here
            save_checkpoint(
                out / "model.pt",
                state(
                    result.iters_done,
                    *(
                        (torch.get_rng_state(), gen.get_state())
                        if result.iters_done > it
                        else rng_at_start
                    ),
                ),
            )
            log(
                f"interrupted: {result.iters_done} iterations saved in {out / 'model.pt'}; "
                + (
                    "continue with --resume"
                    if cfg.time_limit is None
                    else "a run that follows the clock cannot be resumed; its weights load"
                )
            )
        metrics.close()
        raise
    if d.main:
        result.val_loss = evaluate(model, batches, cfg, device, autocast)
        metrics.log(
            {
                "iter": result.iters_done,
                "val_loss": result.val_loss,
                "val_ppl": math.exp(min(result.val_loss, 50)),
            }
        )
        save_checkpoint(
            out / "model.pt", state(result.iters_done, torch.get_rng_state(), gen.get_state())
        )
    metrics.close()
    distributed.barrier(d)  # the others wait while the main process evaluates and saves
    return result
