"""Grader of the training-loop notebook (part4_training): the next-token loss, one AdamW
step, the learning-rate schedule, gradient clipping, random batches, one whole training
iteration of a bigram model built from those pieces, and the budget of a run (parameters,
training FLOPs, AdamW memory) by formula.

Every exercise is a plain function of tensors and numbers. Expected values come from the
references: ``F.cross_entropy`` for the loss (and autograd for its gradient),
``torch.optim.AdamW`` (``foreach=False``) started from the case's moments for one AdamW
step, ``reference_impl.training.cosine_lr`` for the schedule,
``torch.nn.utils.clip_grad_norm_`` for clipping, ``reference_impl.data.get_batch`` for
batches and ``reference_impl.models.accounting.training_budget`` for the budget.
``clip_grad_norm`` returns ``(list of clipped gradients, total norm before clipping as a
0-dim tensor)``, as ``clip_grad_norm_`` does. ``training_budget`` returns Python ints
``(n_params, flops, memory_bytes)``; its FLOP and memory checks judge those against the
student's own ``n_params``, so that a wrong count costs the parameter checks only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.checks import Case, Check, describe_plain_difference
from autograder.graders.base import Item, Signature
from coursekit import generate_stories
from reference_impl.data import get_batch as reference_get_batch
from reference_impl.models.accounting import training_budget
from reference_impl.training import cosine_lr


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- cross_entropy --------------------------------------------------------------------------


def _ce_case(logits: Tensor, targets: Tensor, grad: bool = False) -> Case:
    v = logits.shape[-1]
    leaf = logits.detach().clone().requires_grad_(grad)
    loss = F.cross_entropy(leaf.reshape(-1, v), targets.reshape(-1))
    atol = 1e-4 if logits.dtype == torch.float32 else 1e-9
    if not grad:
        return Case([logits, targets], loss.detach(), atol=atol, rtol=1e-6)
    loss.backward()
    assert leaf.grad is not None
    grad_output = torch.tensor(1.0, dtype=logits.dtype)
    return Case(
        [logits, targets],
        loss.detach(),
        grad_args=(0,),
        grad_output=grad_output,
        expected_grads=[leaf.grad],
        atol=atol,
        rtol=1e-6,
    )


def _logits(
    *shape: int, seed: int, scale: float = 2.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    return (torch.randn(*shape, generator=_rng(seed), dtype=torch.float64) * scale).to(dtype)


def _targets(*shape: int, vocab: int, seed: int) -> Tensor:
    return torch.randint(vocab, shape, generator=_rng(seed + 1000))


def _huge_case() -> Case:
    logits = _logits(6, 9, seed=4, scale=1.0, dtype=torch.float32).sign() * 1e4
    logits += _logits(6, 9, seed=5, scale=1e3, dtype=torch.float32)
    return _ce_case(logits, _targets(6, vocab=9, seed=4))


CROSS_ENTROPY_CHECKS = [
    Check(
        "values on 2-D logits (N, V)",
        0.5,
        lambda: _ce_case(_logits(8, 11, seed=1), _targets(8, vocab=11, seed=1)),
        "loss = mean over rows of logsumexp(logits) - logits[target]: gather each row's "
        "target logit",
    ),
    Check(
        "3-D logits (B, T, V): the mean over all B*T positions",
        0.5,
        lambda: _ce_case(_logits(3, 5, 7, seed=2), _targets(3, 5, vocab=7, seed=2)),
        "flatten to (B*T, V) and (B*T,), or work on the last axis; average over every "
        "position, not only over the batch (return a 0-dim tensor)",
    ),
    Check(
        "gradient of the logits (B, T, V)",
        0.5,
        lambda: _ce_case(_logits(2, 4, 6, seed=3), _targets(2, 4, vocab=6, seed=3), grad=True),
        "build the loss from torch operations on logits (no .item(), numpy or detach): "
        "its gradient is (softmax - one_hot) / number of positions",
    ),
    Check(
        "huge logits (±1e4, float32): finite and right",
        0.5,
        _huge_case,
        "exp(1e4) overflows: subtract each row's max before exponentiating (log-sum-exp "
        "trick, or torch.logsumexp); never take the log of a softmax",
    ),
    Check(
        "a single row",
        0.5,
        lambda: _ce_case(_logits(1, 13, seed=6), _targets(1, vocab=13, seed=6)),
        "with one row the mean is that row's loss; keep the vocabulary on the last axis",
    ),
    Check(
        "two classes (V = 2)",
        0.5,
        lambda: _ce_case(_logits(10, 2, seed=7, scale=5.0), _targets(10, vocab=2, seed=7)),
        "the log-sum-exp runs over the last axis (dim=-1, keepdim where you subtract)",
    ),
]


# --- adamw_step -----------------------------------------------------------------------------


def torch_adamw_step(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Step number ``step`` (1-based) of ``torch.optim.AdamW`` from the given moments."""
    p = torch.nn.Parameter(param.detach().clone())
    p.grad = grad.detach().clone()
    opt = torch.optim.AdamW(
        [p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, foreach=False
    )
    opt.state[p] = {
        "step": torch.tensor(float(step - 1)),
        "exp_avg": exp_avg.detach().clone(),
        "exp_avg_sq": exp_avg_sq.detach().clone(),
    }
    opt.step()
    state = opt.state[p]
    return p.detach().clone(), state["exp_avg"].clone(), state["exp_avg_sq"].clone()


def _adamw_case(
    shape: tuple[int, ...],
    seed: int,
    step: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    grad_scale: float = 1.0,
    zero_state: bool = False,
    zero_grad: bool = False,
    dtype: torch.dtype = torch.float64,
) -> Case:
    g = _rng(seed)
    param = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    grad = (torch.randn(shape, generator=g, dtype=torch.float64) * grad_scale).to(dtype)
    exp_avg = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.1).to(dtype)
    exp_avg_sq = (torch.rand(shape, generator=g, dtype=torch.float64) * 0.05).to(dtype)
    if zero_grad:
        grad = torch.zeros_like(grad)
    if zero_state:
        exp_avg, exp_avg_sq = torch.zeros_like(exp_avg), torch.zeros_like(exp_avg_sq)
    args = [param, grad, exp_avg, exp_avg_sq, step, lr, betas[0], betas[1], eps, weight_decay]
    expected = torch_adamw_step(*args)  # type: ignore[arg-type]
    if dtype == torch.float32:
        return Case(args, expected, atol=1e-6, rtol=1e-5)
    return Case(args, expected, atol=1e-11, rtol=1e-9)


ADAMW_CHECKS = [
    Check(
        "step 1 from zero moments",
        0.5,
        lambda: _adamw_case((4, 5), seed=1, step=1, zero_state=True),
        "m = beta1*m + (1-beta1)*g, v = beta2*v + (1-beta2)*g*g; divide m by "
        "(1 - beta1**step) and v by (1 - beta2**step): at step 1 the update is about "
        "lr * sign(g)",
    ),
    Check(
        "step 2 with existing moments",
        0.5,
        lambda: _adamw_case((6,), seed=2, step=2, weight_decay=0.1),
        "return (new_param, new_exp_avg, new_exp_avg_sq), all updated; bias corrections "
        "use this step's number (1-based)",
    ),
    Check(
        "step 1000, betas (0.9, 0.95): bias corrections near 1",
        0.5,
        lambda: _adamw_case((3, 4), seed=3, step=1000, betas=(0.9, 0.95), weight_decay=0.1),
        "late in training 1 - beta**step is about 1: this checks the moment updates and "
        "the decoupled decay on their own",
    ),
    Check(
        "weight decay 0: plain Adam",
        0.5,
        lambda: _adamw_case((5, 3), seed=4, step=3, weight_decay=0.0),
        "update = lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - beta1**step) "
        "and v_hat = v / (1 - beta2**step)",
    ),
    Check(
        "strong decoupled weight decay (lr 0.1, weight_decay 0.5)",
        0.5,
        lambda: _adamw_case((4, 4), seed=5, step=4, lr=0.1, weight_decay=0.5),
        "decoupled: first param = param * (1 - lr*weight_decay), then the Adam update; "
        "do not add weight_decay*param to the gradient (that is L2, Adam not AdamW) nor "
        "decay after the update",
    ),
    Check(
        "zero gradient: decay and momentum still move the parameter",
        0.5,
        lambda: _adamw_case((7,), seed=6, step=10, zero_grad=True, weight_decay=0.1),
        "with g = 0 the moments shrink (m *= beta1, v *= beta2) and the parameter still "
        "moves by the bias-corrected momentum and the decay",
    ),
    Check(
        "tiny gradients (1e-6): eps added after the square root",
        0.5,
        lambda: _adamw_case(
            (8,), seed=7, step=1, lr=1e-2, grad_scale=1e-6, zero_state=True, weight_decay=0.0
        ),
        "the denominator is sqrt(v_hat) + eps, not sqrt(v_hat + eps): with gradients of "
        "1e-6 the difference is a factor of 100",
    ),
    Check(
        "float32 parameter of a GPT-sized shape",
        0.5,
        lambda: _adamw_case((64, 48), seed=8, step=7, weight_decay=0.1, dtype=torch.float32),
        "work with tensor operations on the given dtype; return new tensors of the "
        "parameter's shape",
    ),
]


# --- lr_at ----------------------------------------------------------------------------------


def _lr_case(
    it: int, max_lr: float = 6e-4, min_lr: float = 6e-5, warmup: int = 100, max_iters: int = 1100
) -> Case:
    expected = float(cosine_lr(it, max_lr, min_lr, warmup, max_iters))
    return Case([it, max_lr, min_lr, warmup, max_iters], expected, atol=1e-15, rtol=1e-9)


LR_CHECKS = [
    Check(
        "first iteration (it = 0): max_lr / warmup_iters",
        0.5,
        lambda: _lr_case(0),
        "warmup is linear from max_lr/warmup_iters at it = 0: lr = max_lr * (it + 1) / "
        "warmup_iters (never 0, or the first step is wasted)",
    ),
    Check(
        "last warmup iteration (it = warmup_iters - 1): max_lr",
        0.5,
        lambda: _lr_case(99),
        "the warmup reaches max_lr at it = warmup_iters - 1: use (it + 1) / warmup_iters",
    ),
    Check(
        "it = warmup_iters: the cosine starts at max_lr",
        0.5,
        lambda: _lr_case(100),
        "after warmup, progress = (it - warmup_iters) / (max_iters - warmup_iters) goes "
        "from 0 to 1; lr = min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * progress))",
    ),
    Check(
        "the middle of the cosine: (max_lr + min_lr) / 2",
        0.5,
        lambda: _lr_case(600),
        "the cosine spans max_iters - warmup_iters iterations, not max_iters, and ends at "
        "min_lr, not 0",
    ),
    Check(
        "three quarters into the cosine",
        0.5,
        lambda: _lr_case(850, max_lr=1e-3, min_lr=0.0),
        "progress = (it - warmup_iters) / (max_iters - warmup_iters); "
        "lr = min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * progress))",
    ),
    Check(
        "it = max_iters: min_lr",
        0.5,
        lambda: _lr_case(1100),
        "at max_iters the cosine has reached min_lr",
    ),
    Check(
        "after max_iters: stays at min_lr",
        0.5,
        lambda: _lr_case(1500),
        "for it >= max_iters return min_lr: the cosine would rise again",
    ),
    Check(
        "warmup_iters = 0: the cosine from the first iteration",
        0.5,
        lambda: _lr_case(250, max_lr=3e-4, min_lr=3e-5, warmup=0, max_iters=1000),
        "with no warmup the cosine starts at it = 0 (do not divide by warmup_iters when it is 0)",
    ),
]


# --- clip_grad_norm -------------------------------------------------------------------------


def _clip_case(grads: list[Tensor], max_norm: float) -> Case:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)
    clipped = [p.grad.clone() for p in params if p.grad is not None]
    atol = 1e-9 if grads[0].dtype == torch.float64 else 1e-6
    return Case(
        [[g.clone() for g in grads], max_norm], (clipped, norm.detach()), atol=atol, rtol=1e-6
    )


def _grads(
    shapes: list[tuple[int, ...]], seed: int, scale: float = 1.0, dtype: torch.dtype = torch.float64
) -> list[Tensor]:
    g = _rng(seed)
    return [(torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dtype) for s in shapes]


CLIP_CHECKS = [
    Check(
        "below the threshold: unchanged",
        0.5,
        lambda: _clip_case(_grads([(3, 4), (4,)], seed=1, scale=0.1), 5.0),
        "the coefficient max_norm / (total_norm + 1e-6) is clamped to at most 1: small "
        "gradients are never scaled up",
    ),
    Check(
        "above the threshold: scaled to max_norm",
        0.5,
        lambda: _clip_case(_grads([(5, 5)], seed=2, scale=3.0), 1.0),
        "multiply every gradient by max_norm / (total_norm + 1e-6)",
    ),
    Check(
        "several tensors: one global norm",
        0.5,
        lambda: _clip_case(_grads([(4, 6), (6,), (2, 3, 5), (1,)], seed=3, scale=2.0), 2.0),
        "total_norm = sqrt(sum over ALL tensors of the sum of squares), and every tensor "
        "is scaled by the same coefficient (not each by its own norm)",
    ),
    Check(
        "the norm returned is the norm before clipping",
        0.5,
        lambda: _clip_case(_grads([(10,), (3, 3)], seed=4, scale=10.0), 0.5),
        "return (clipped_grads, total_norm) with total_norm measured before clipping, "
        "as a 0-dim tensor",
    ),
    Check(
        "all-zero gradients",
        0.5,
        lambda: _clip_case(
            [torch.zeros(3, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)], 1.0
        ),
        "the total norm is 0: the 1e-6 in the denominator (and the clamp to 1) avoid a "
        "division by zero; the gradients stay zero",
    ),
    Check(
        "huge gradients (1e15, float32)",
        0.5,
        lambda: _clip_case(_grads([(8, 8), (8,)], seed=5, scale=1e15, dtype=torch.float32), 1.0),
        "a loss spike: scale by max_norm / (total_norm + 1e-6) and return new tensors of "
        "the gradients' dtype",
    ),
]


# --- get_batch ------------------------------------------------------------------------------


def _story_bytes() -> Tensor:
    return torch.tensor(list(" ".join(generate_stories(5, 11)).encode()), dtype=torch.int64)


def _batch_case(data: Tensor, batch_size: int, block_size: int, seed: int) -> Case:
    expected = reference_get_batch(data, batch_size, block_size, _rng(seed))
    return Case([data, batch_size, block_size, seed], tuple(expected))


BATCH_CHECKS = [
    Check(
        "windows of a story's bytes",
        0.5,
        lambda: _batch_case(_story_bytes(), 4, 8, 0),
        "starts = torch.randint(len(data) - block_size, (batch_size,), "
        "generator=torch.Generator().manual_seed(seed)); x[i] = data[s:s+block_size]",
    ),
    Check(
        "y is x shifted by one",
        0.5,
        lambda: _batch_case(torch.arange(1000, 1200), 8, 16, 1),
        "y[i] = data[s+1 : s+1+block_size]: the target of x[i, t] is the next token",
    ),
    Check(
        "the last window is reachable, none out of bounds",
        0.5,
        lambda: _batch_case(torch.arange(50, 62), 16, 10, 2),
        "starts = torch.randint(len(data) - block_size, ...): the last window starts at "
        "len(data) - block_size - 1 (its target ends at the last token)",
    ),
    Check(
        "uint8 data: x and y are int64",
        0.5,
        lambda: _batch_case(_story_bytes().to(torch.uint8), 3, 12, 3),
        "return int64 tensors (.long()) whatever the data's dtype: embeddings and "
        "cross-entropy need int64 ids",
    ),
    Check(
        "batch size 1",
        0.5,
        lambda: _batch_case(_story_bytes(), 1, 32, 4),
        "the shapes are (batch_size, block_size) even for batch_size = 1",
    ),
    Check(
        "block size 1",
        0.5,
        lambda: _batch_case(_story_bytes(), 6, 1, 5),
        "one input and one target token per row: shapes (batch_size, 1)",
    ),
]


# --- train_step -----------------------------------------------------------------------------


def reference_train_step(
    W: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    x: Tensor,
    y: Tensor,
    it: int,
    max_lr: float,
    min_lr: float,
    warmup_iters: int,
    max_iters: int,
    max_norm: float,
    weight_decay: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Iteration ``it`` (0-based) of a bigram LM (logits = W[x]) with the peers' pieces:
    ``F.cross_entropy``, ``clip_grad_norm_``, ``cosine_lr`` and ``torch.optim.AdamW`` (betas 0.9,
    0.95, eps 1e-8) at step it + 1. Returns (loss before the update, W, exp_avg, exp_avg_sq)."""
    p = torch.nn.Parameter(W.detach().clone())
    loss = F.cross_entropy(p[x].flatten(0, 1), y.flatten())  # in W's dtype
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p], max_norm, foreach=False)
    lr = cosine_lr(it, max_lr, min_lr, warmup_iters, max_iters)
    assert p.grad is not None
    new_w, m, v = torch_adamw_step(
        p, p.grad, exp_avg, exp_avg_sq, it + 1, lr, 0.9, 0.95, 1e-8, weight_decay
    )
    return loss.detach(), new_w, m, v


def _step_case(
    it: int,
    seed: int,
    vocab: int = 12,
    batch: int = 3,
    t: int = 7,
    scale: float = 0.5,
    fresh: bool = False,
    max_norm: float = 1.0,
    weight_decay: float = 0.1,
    max_iters: int = 100,
    warmup_iters: int = 10,
) -> Case:
    g = _rng(seed)
    W = torch.randn(vocab, vocab, generator=g, dtype=torch.float64) * scale
    m = (
        torch.zeros_like(W)
        if fresh
        else torch.randn(vocab, vocab, generator=g, dtype=torch.float64) * 0.01
    )
    v = (
        torch.zeros_like(W)
        if fresh
        else torch.rand(vocab, vocab, generator=g, dtype=torch.float64) * 1e-3
    )
    x = torch.randint(0, vocab, (batch, t), generator=g)
    y = torch.randint(0, vocab, (batch, t), generator=g)
    args = [W, m, v, x, y, it, 1e-2, 1e-3, warmup_iters, max_iters, max_norm, weight_decay]
    return Case(args, reference_train_step(*args), atol=1e-10, rtol=1e-8)  # type: ignore[arg-type]


TRAIN_STEP_CHECKS = [
    Check(
        "the first iteration (step 1, warmup, fresh moments)",
        1.0,
        lambda: _step_case(0, 1, fresh=True),
        "loss = cross_entropy(W[x], y); backward; clip; lr = lr_at(it, ...); "
        "adamw_step(..., step=it + 1, ...): the step count starts at 1",
    ),
    Check(
        "an iteration in the middle of the cosine",
        1.0,
        lambda: _step_case(55, 2),
        "the learning rate of THIS iteration: lr_at(it, ...), not it + 1",
    ),
    Check(
        "clipping when the gradient is large",
        0.5,
        lambda: _step_case(20, 3, scale=8.0, max_norm=0.05),
        "clip the gradient (to max_norm) before the AdamW step",
    ),
    Check(
        "no clipping below max_norm, no weight decay",
        0.5,
        lambda: _step_case(30, 4, max_norm=1e6, weight_decay=0.0),
        "clipping never scales a small gradient; weight_decay goes to adamw_step",
    ),
    Check(
        "the loss is measured before the update",
        0.5,
        lambda: _step_case(12, 5, scale=2.0),
        "return the loss computed with the weights you started from, detached",
    ),
    Check(
        "one sequence of one token, after the schedule",
        0.5,
        lambda: _step_case(150, 6, batch=1, t=1),
        "the shapes work for B = T = 1; after max_iters the rate stays at min_lr",
    ),
]


# --- training_budget ------------------------------------------------------------------------

BudgetConfig = tuple[int, int, int, int, int]  # vocab_size, block_size, d_model, n_layers, tokens
NOTEBOOK_FAST: BudgetConfig = (256, 64, 64, 2, 10**9)


def _budget_parts(out: object) -> tuple[object, object, object] | str:
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        return "output: return the tuple (n_params, flops, memory_bytes)"
    return out[0], out[1], out[2]


def _params_case(config: BudgetConfig) -> Case:
    """Only n_params (output[0]) is judged, exactly."""
    expected = training_budget(*config)[0]

    def judge(out: object) -> str | None:
        parts = _budget_parts(out)
        if isinstance(parts, str):
            return parts
        return describe_plain_difference("n_params (output[0])", parts[0], expected, 0.0, 0.0)

    return Case(list(config), None, extra=judge)


def _per_param_case(config: BudgetConfig, index: int, name: str, factor: int) -> Case:
    """output[index] == factor * the student's own n_params (times n_tokens for the FLOPs):
    a wrong parameter count costs the parameter checks only."""
    tokens = config[4] if index == 1 else 1

    def judge(out: object) -> str | None:
        parts = _budget_parts(out)
        if isinstance(parts, str):
            return parts
        n = parts[0]
        if type(n) is not int or n <= 0:
            return f"n_params (output[0]): expected a positive int, got {n!r}"
        return describe_plain_difference(
            f"{name} (output[{index}]) for your n_params = {n:,}",
            parts[index],
            factor * n * tokens,
            0.0,
            1e-12,
        )

    return Case(list(config), None, extra=judge)


BUDGET_CHECKS = [
    Check(
        "parameters of the notebook's fast-mode GPT (V 256, T 64, d 64, 2 layers)",
        0.5,
        lambda: _params_case(NOTEBOOK_FAST),
        "tables V*d (tied: the output head is the same matrix, count it once) and T*d; per "
        "block two LayerNorms (gain and bias, 2*d each), qkv 3*d*d and proj d*d (no biases), "
        "the MLP d*4d + 4d and 4d*d + d (with biases); the final LayerNorm 2*d",
    ),
    Check(
        "no blocks (n_layers = 0): the embeddings and the final LayerNorm",
        0.5,
        lambda: _params_case((300, 17, 40, 0, 10**6)),
        "with no blocks: the token table once (the output head is tied to it), the position "
        "table block_size*d_model, and the final LayerNorm's gain and bias",
    ),
    Check(
        "parameters of a deeper, wider GPT (V 1000, T 128, d 96, 5 layers)",
        0.5,
        lambda: _params_case((1000, 128, 96, 5, 10**9)),
        "per block: 4*d (two LayerNorms) + 3*d*d + d*d (attention, no biases) + 8*d*d + 5*d "
        "(the MLP with its biases) = 12*d*d + 9*d",
    ),
    Check(
        "GPT-2 small's shape (V 50257, T 1024, d 768, 12 layers): a Python int",
        0.5,
        lambda: _params_case((50257, 1024, 768, 12, 300 * 10**9)),
        "return Python ints (int(...)), not tensors or floats; this model is GPT-2 small "
        "without its attention biases",
    ),
    Check(
        "training FLOPs: 6 * n_params * n_tokens",
        0.5,
        lambda: _per_param_case(NOTEBOOK_FAST, 1, "flops", 6),
        "2*N*D for the forward pass and twice that for the backward: 6*N*D in all, with N "
        "your parameter count (not 2*N*D, which is the forward pass alone)",
    ),
    Check(
        "AdamW memory: 16 bytes per parameter",
        0.5,
        lambda: _per_param_case(NOTEBOOK_FAST, 2, "memory_bytes", 16),
        "four float32 numbers (4 bytes each) per parameter: the weight, its gradient, and "
        "AdamW's two moments exp_avg and exp_avg_sq",
    ),
]


ITEMS: dict[str, Item] = {
    "training_loop.cross_entropy": Item(
        "cross_entropy",
        CROSS_ENTROPY_CHECKS,
        Signature(
            "logits, targets", shapes={"logits": "(*N, V)", "targets": "(*N)", "return": "()"}
        ),
    ),
    "training_loop.get_batch": Item(
        "get_batch",
        BATCH_CHECKS,
        Signature(
            "data, batch_size, block_size, seed",
            shapes={
                "data": "(N,)",
                "return[0]": "(batch_size, block_size)",
                "return[1]": "(batch_size, block_size)",
            },
        ),
    ),
    "training_loop.adamw_step": Item(
        "adamw_step",
        ADAMW_CHECKS,
        Signature(
            "param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay",
            shapes={
                "param": "(*P)",
                "grad": "(*P)",
                "exp_avg": "(*P)",
                "exp_avg_sq": "(*P)",
                "return[0]": "(*P)",
                "return[1]": "(*P)",
                "return[2]": "(*P)",
            },
        ),
    ),
    "training_loop.lr_at": Item(
        "lr_at", LR_CHECKS, Signature("it, max_lr, min_lr, warmup_iters, max_iters")
    ),
    "training_loop.clip_grad_norm": Item(
        "clip_grad_norm", CLIP_CHECKS, Signature("grads, max_norm", shapes={"return[1]": "()"})
    ),
    "training_loop.train_step": Item(
        "train_step",
        TRAIN_STEP_CHECKS,
        Signature(
            "W, exp_avg, exp_avg_sq, x, y, it, max_lr, min_lr, warmup_iters, max_iters, "
            "max_norm, weight_decay",
            shapes={
                "W": "(V, V)",
                "exp_avg": "(V, V)",
                "exp_avg_sq": "(V, V)",
                "x": "(*N)",
                "y": "(*N)",
                "return[0]": "()",
                "return[1]": "(V, V)",
                "return[2]": "(V, V)",
                "return[3]": "(V, V)",
            },
        ),
    ),
    "training_loop.training_budget": Item(
        "training_budget",
        BUDGET_CHECKS,
        Signature("vocab_size, block_size, d_model, n_layers, n_tokens"),
    ),
}
