"""The course's generation commands: ``scripts/generate.py`` and ``scripts/chat.py``.

Both load a checkpoint written by ``scripts/train.py`` (weights, config and tokenizer).
Every mistake a user can make (a missing checkpoint, a bad flag value, a prompt longer than
the context) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

import torch

from reference_impl.generation.beam import beam_search
from reference_impl.generation.decoding import generate
from reference_impl.generation.loading import load_model
from reference_impl.models import TransformerLM
from reference_impl.tokenizer import END, EOT, has_chat_format, render_prompt
from reference_impl.utils import CheckpointError, resolve_device


class UsageError(ValueError):
    """A flag value or input the user can fix."""


def _sampling_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        default="checkpoints/pretrained/model.pt",
        help="model.pt written by scripts/train.py (or its folder)",
    )
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 means greedy")
    p.add_argument("--top-k", type=int, help="keep the k most likely tokens")
    p.add_argument("--top-p", type=float, help="keep the smallest set with this probability")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--no-kv-cache", action="store_true", help="recompute the whole context")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")


def _check(args: argparse.Namespace) -> None:
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens: must be >= 1, got {args.max_new_tokens}")
    if args.temperature < 0:
        raise UsageError(f"--temperature: must be >= 0 (0 = greedy), got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k: must be >= 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p: must be in (0, 1], got {args.top_p}")
    if args.repetition_penalty <= 0:
        raise UsageError(f"--repetition-penalty: must be > 0, got {args.repetition_penalty}")
    if getattr(args, "beams", 1) < 1:
        raise UsageError(f"--beams: must be >= 1, got {args.beams}")


def _load_all(args: argparse.Namespace) -> tuple[TransformerLM, Any, dict[str, Any]]:
    try:
        return load_model(args.checkpoint, resolve_device(args.device))
    except RuntimeError as e:  # load_state_dict: weights that do not fit the config
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(
            f"{args.checkpoint}: its weights do not fit its model config ({str(e)[:120]})"
        ) from None


def _load(args: argparse.Namespace) -> tuple[TransformerLM, Any]:
    model, tok, _ = _load_all(args)
    return model, tok


def _prompt_ids(tok: Any, text: str, model: TransformerLM) -> torch.Tensor:
    ids = tok.encode(text)
    if not ids:
        raise UsageError("the prompt is empty: give at least one character")
    limit = model.config.context_length
    if len(ids) > limit - 1:
        raise UsageError(
            f"the prompt is {len(ids)} tokens, the model's context is {limit}: shorten it"
        )
    return torch.tensor([ids], device=next(model.parameters()).device)


def _continue(
    model: TransformerLM,
    idx: torch.Tensor,
    args: argparse.Namespace,
    stop: list[list[int]] | None = None,
) -> torch.Tensor:
    """ids (1, T) -> (1, T + n)."""
    if getattr(args, "beams", 1) > 1:
        best = beam_search(
            model, idx, args.max_new_tokens, args.beams, use_cache=not args.no_kv_cache
        )
        assert isinstance(best, torch.Tensor)  # (without return_all)
        return best
    gen = torch.Generator(device=idx.device).manual_seed(args.seed)
    return generate(
        model,
        idx,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        stop_sequences=stop,
        use_cache=not args.no_kv_cache,
        generator=gen,
    )


def _run(main: Callable[[], int]) -> int:
    try:
        return main()
    except (CheckpointError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130


def generate_main(argv: list[str] | None = None) -> int:
    """Print the prompt and its continuation (only that) on stdout."""
    p = argparse.ArgumentParser(
        prog="generate.py",
        description="Continue a prompt with a trained model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--prompt", default="Once upon a time")
    p.add_argument("--beams", type=int, default=1, help="beam search with this many beams")
    _sampling_flags(p)
    args = p.parse_args(argv)

    def main() -> int:
        _check(args)
        model, tok = _load(args)
        idx = _prompt_ids(tok, args.prompt, model)
        out = _continue(model, idx, args)
        print(f"{out.size(1) - idx.size(1)} tokens generated", file=sys.stderr)
        print(tok.decode(out[0].tolist()))
        return 0

    return _run(main)


def chat_main(
    argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """A conversation; ``/quit``, ``/exit``, end of input or Ctrl-C end it. A fine-tuned
    checkpoint (scripts/sft.py) is prompted in its chat format and stops at ``<|end|>``; a
    base model continues a plain "User: ..." / "Assistant: ..." history. Either way the
    history is cut to the turns that fit in the context window."""
    p = argparse.ArgumentParser(
        prog="chat.py",
        description="Chat with a trained model (/quit to leave).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _sampling_flags(p)
    p.add_argument("--web", action="store_true", help="chat in the browser instead")
    p.add_argument("--port", type=int, default=8000, help="--web: the port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1", help="--web: the address to listen on")
    p.set_defaults(max_new_tokens=120)
    args = p.parse_args(argv)
    inp, out = stdin or sys.stdin, stdout or sys.stdout

    def main() -> int:
        _check(args)
        if not 0 <= args.port <= 65535:
            raise UsageError(f"--port: must be in 0..65535, got {args.port}")
        model, tok, ckpt = _load_all(args)
        limit = model.config.context_length
        room = max(1, min(args.max_new_tokens, limit // 2))
        args.max_new_tokens = room
        if args.web:
            return _serve_web(model, tok, ckpt, args)
        if ckpt.get("chat_format") and has_chat_format(tok):
            return _chat_format_loop(model, tok, args, inp, out)
        stop = [tok.encode("\nUser:")]
        eot = getattr(tok, "special_ids", {}).get(EOT)  # a BPE tokenizer's end of text
        if eot is not None:
            stop.append([eot])
        history = ""
        print("Chat with the model; /quit to leave.", file=sys.stderr)
        while True:
            print("you> ", end="", file=out, flush=True)
            line = inp.readline()
            if not line or line.strip() in ("/quit", "/exit"):
                print("bye", file=out)
                return 0
            if not line.strip():
                continue
            history += f"User: {line.strip()}\nAssistant:"
            ids = tok.encode(history)[-(limit - room) :]  # the turns that still fit
            idx = torch.tensor([ids], device=next(model.parameters()).device)
            new = _continue(model, idx, args, stop)[0, idx.size(1) :].tolist()
            reply = tok.decode(new).split("\nUser:")[0].split(EOT)[0].strip()
            print(f"model> {reply}", file=out, flush=True)
            history += f" {reply}\n"

    return _run(main)


def _serve_web(
    model: TransformerLM, tok: Any, ckpt: dict[str, Any], args: argparse.Namespace
) -> int:
    """``--web``: the browser chat (reference_impl/generation/web.py) of a fine-tuned
    checkpoint, on ``--host``:``--port``; the page sets the sampling of each reply."""
    if not (ckpt.get("chat_format") and has_chat_format(tok)):
        raise UsageError(
            f"{args.checkpoint} was not fine-tuned for chat: run scripts/sft.py "
            "(without --web, chat.py continues a base model's plain text)"
        )
    from reference_impl.generation.web import listen, serve

    try:
        sock = listen(args.host, args.port)
    except OSError as e:
        raise UsageError(f"--host/--port: cannot listen on {args.host}:{args.port} ({e})") from None
    return serve(model, tok, sock, max_new_tokens=args.max_new_tokens)


def _chat_format_loop(
    model: TransformerLM, tok: Any, args: argparse.Namespace, inp: TextIO, out: TextIO
) -> int:
    """The chat loop of a fine-tuned model: the conversation rendered in the chat format
    (earliest turns dropped while it does not fit), each reply up to ``<|end|>``."""
    limit, end = model.config.context_length, tok.special_ids[END]
    conversation: list[dict[str, str]] = []
    print("Chat with the assistant; /quit to leave, /new for a new chat.", file=sys.stderr)
    while True:
        print("you> ", end="", file=out, flush=True)
        line = inp.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            print("bye", file=out)
            return 0
        if line.strip() == "/new":
            conversation = []
            continue
        if not line.strip():
            continue
        conversation.append({"role": "user", "content": line.strip()})
        ids = render_prompt(tok, conversation)
        while len(ids) + args.max_new_tokens > limit and len(conversation) > 1:
            conversation = conversation[2:]  # forget the oldest exchange
            ids = render_prompt(tok, conversation)
        if len(ids) >= limit:
            conversation.pop()
            print(
                f"model> [your message is {len(ids)} tokens; the context holds {limit}]",
                file=out,
                flush=True,
            )
            continue
        idx = torch.tensor([ids], device=next(model.parameters()).device)
        new = _continue(model, idx, args, [[end]])[0, idx.size(1) :].tolist()
        reply = tok.decode(new[: new.index(end)] if end in new else new).strip()
        print(f"model> {reply}", file=out, flush=True)
        conversation.append({"role": "assistant", "content": reply})
