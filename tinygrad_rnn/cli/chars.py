"""cli/chars.py — `tinygrad-rnn chars` (train a character-level language model) and `tinygrad-rnn generate`.

The default text is CPython's own help topics (`pydoc_data.topics`), so every
install has it. Training is truncated backpropagation through time over
`--batch` parallel streams of the text: each step reads the next `--bptt`
characters of every stream, carries the hidden state over from the previous
step (detached, so gradients stop there), and takes one optimizer step.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ..core.engine import no_grad
from ..core.tensor import Tensor
from ..nn.recurrent import detach_state
from . import checkpoints, common
from .baselines import WittenBellNgram
from .common import CLIError

RUNNING_MEAN = 20  # batches in the train loss printed while training
EVAL_CHARS = 4096  # characters scored for the validation loss: enough to compare runs, cheap to compute
CONTEXT_CHARS = 64  # text read, unscored, before each scored stream, so no scored character goes without context
NGRAM_ORDER = 5  # the best Witten-Bell order on the default text (4: 1.547, 5: 1.518, 6: 1.581 nats/char)


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chars",
        help="train a character-level language model and print samples while it learns",
        description=(
            "Train a character-level language model with truncated backpropagation through time. Without --text "
            "it reads the help topics that ship with CPython (pydoc_data.topics). Prints samples while it trains "
            "and saves a checkpoint that `tinygrad-rnn generate` can sample from."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument("--text", metavar="FILE", help="a UTF-8 text file (default: CPython's help topics)")
    common.add_model_options(parser, cell="gru", hidden=128, layers=1)
    training = common.add_training_options(
        parser,
        lr=0.01,
        batch=64,
        bptt=32,
    )
    training.add_argument(
        "--steps",
        type=common.positive_int,
        default=1500,
        help="optimizer steps in this run; with --resume, steps beyond the checkpoint's (default: 1500)",
    )
    common.add_schedule_option(training)
    common.add_checkpoint_options(parser, default="chars.npz", save_every=100, what="--steps")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--sample-every", type=common.positive_int, default=100, help="print a sample every N steps (default: 100)"
    )
    out.add_argument(
        "--sample-length", type=common.positive_int, default=160, help="characters per sample (default: 160)"
    )
    out.add_argument(
        "--temperature", type=common.positive_float, default=0.8, help="of the printed samples (default: 0.8)"
    )
    out.add_argument("--plot", metavar="FILE", help="save a PNG of the loss curves")
    parser.set_defaults(run=run_chars)

    gen = subparsers.add_parser(
        "generate",
        help="sample text from a model saved by `tinygrad-rnn chars`",
        description=(
            "Sample text from a character model saved by `tinygrad-rnn chars`. The same --seed gives the same text."
        ),
    )
    gen.add_argument(
        "--checkpoint", metavar="FILE", default="chars.npz", help="a checkpoint of `chars` (default: chars.npz)"
    )
    gen.add_argument("--prime", default=None, help="text to start from (default: a newline)")
    gen.add_argument(
        "--temperature", type=common.positive_float, default=0.8, help="below 1 is more conservative (default: 0.8)"
    )
    gen.add_argument("--length", type=common.positive_int, default=300, help="characters to generate (default: 300)")
    common.add_seed_option(gen, "random seed")
    gen.set_defaults(run=run_generate)


# ---------------------------------------------------------------- data


def read_text(path: str | None) -> tuple[str, str]:
    if path is None:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[name] for name in sorted(topics)), "CPython's help topics"
    from .forecast import read_text_file

    text = read_text_file(path)
    if len(set(text)) < 2:
        raise CLIError(f"{path} has only one distinct character ({text[0]!r}); a language model needs at least two")
    return text, path


def streams(ids: np.ndarray, batch: int) -> np.ndarray:
    """Cut the text into `batch` equal contiguous streams: an array (batch, length)."""
    length = len(ids) // batch
    return ids[: batch * length].reshape(batch, length)


def encode(text: str, vocab: str, what: str) -> np.ndarray:
    index = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        shown = "".join(unknown[:10]) + ("..." if len(unknown) > 10 else "")
        raise CLIError(f"{what} has {len(unknown)} character(s) the model does not know: {shown!r}")
    return np.array([index[ch] for ch in text], dtype=np.int64)


# ---------------------------------------------------------------- training


def run_chars(args: argparse.Namespace) -> int:
    text, label = read_text(args.text)
    resume_path = checkpoints.resume_path(args)
    checkpoints.claim_checkpoint(args.checkpoint, resume_path, args.force)
    common.check_plot_path(args.plot)
    settings = common.model_settings(args)
    start_step = 0
    if resume_path is not None:
        saved, params, optimizer_state = checkpoints.load_checkpoint(resume_path, "chars")
        checkpoints.compare_settings(resume_path, saved, settings)
        vocab = str(saved["vocab"])
        start_step = int(saved.get("step", 0))
    else:
        vocab = "".join(sorted(set(text)))
    ids = encode(text, vocab, label)
    n_val = max(len(ids) // 10, args.bptt + 1)
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    if len(train_ids) < args.batch * (args.bptt + 1):
        raise CLIError(
            f"{label} has {len(text)} characters, too few for --batch {args.batch} streams of --bptt {args.bptt}: "
            f"it needs at least {args.batch * (args.bptt + 1) + n_val} (or a smaller --batch / --bptt)"
        )
    rng = np.random.default_rng(args.seed)  # initialises the parameters, then draws samples

    from .models import CharModel

    model = CharModel(args.cell, len(vocab), args.hidden, args.layers, dtype=args.dtype, rng=rng)
    optimizer = common.make_optimizer(args.optimizer, model.parameters(), args.lr)
    if resume_path is not None:
        checkpoints.restore_training(resume_path, model, optimizer, params, optimizer_state, args.lr, start_step)

    data = streams(train_ids, args.batch)
    common.say(
        f"chars on {label}: {len(train_ids)} training characters, {len(val_ids)} held out, vocabulary of "
        f"{len(vocab)}; {args.cell.upper()} hidden {args.hidden} x {args.layers} layer(s), bptt {args.bptt}"
    )
    prime = "\n" if "\n" in vocab else vocab[0]
    losses: list[float] = []
    val_curve: list[tuple[int, float]] = []
    state: Any = None
    position = int(rng.integers(0, data.shape[1] - args.bptt))  # where in the streams this run starts reading
    end = start_step + args.steps
    config = {**settings, "kind": "chars", "vocab": vocab, "bptt": args.bptt, "source": label}
    run = checkpoints.TrainingRun(
        args.checkpoint,
        model,
        optimizer,
        lambda step: {**config, "step": step},
        save_every=args.save_every,
        saved_step=start_step if checkpoints.same_file(resume_path, args.checkpoint) else None,
        advice=common.divergence_advice(args.lr, args.clip),
    )
    train_chunk = forward_backward(model, args.cell, args.compile)
    started = time.perf_counter()
    with run, common.progress_bar(end, "chars", initial=start_step) as bar:
        for step in range(start_step + 1, end + 1):
            if position + args.bptt + 1 > data.shape[1]:
                position, state = 0, None  # wrapped around: the streams start again from a fresh state
            chunk = data[:, position : position + args.bptt + 1].T  # (bptt + 1, batch), sequence-first
            position += args.bptt
            if args.schedule == "cosine":
                common.set_lr(optimizer, common.cosine_lr(args.lr, step - start_step - 1, args.steps))
            optimizer.zero_grad()
            x, target = model.one_hot(chunk[:-1]), model.one_hot(chunk[1:])
            loss, *state = train_chunk(x, target, *flat_state(state))
            common.clip_gradients(model.parameters(), args.clip)
            optimizer.step()
            value = loss.item()
            run.step_done(step, value)
            losses.append(value)
            elapsed = max(time.perf_counter() - started, 1e-9)
            chars_per_s = (step - start_step) * args.batch * args.bptt / elapsed
            bar.set_postfix({"loss": f"{value:.3f}", "char/s": f"{chars_per_s:.0f}"}, refresh=False)
            bar.update(1)
            if step % args.sample_every == 0 or step == end:
                val = cross_entropy_nats(model, ids, len(train_ids), len(ids), args.batch)
                val_curve.append((step, val))
                sample = sample_text(model, vocab, prime, args.sample_length, args.temperature, rng)
                recent = losses[-RUNNING_MEAN:]
                common.say(
                    f"--- step {step}/{end}  train loss {np.mean(recent):.3f} (mean of {len(recent)} batches)  "
                    f"val loss {val:.3f} nats/char"
                )
                common.say(sample)
        run.save(end)
    seconds = time.perf_counter() - started

    common.say(f"trained {args.steps} steps in {seconds:.1f} s")
    common.say_saved("checkpoint", args.checkpoint, f"step {end}")
    if args.plot:
        plot_losses(args.plot, start_step, losses, val_curve, f"chars ({args.cell.upper()}, {label})")
        common.say_saved("plot", args.plot)
    recent_batches = min(RUNNING_MEAN, len(losses))
    common.say(
        f"cross-entropy: up to {EVAL_CHARS} characters, the last of the training text and the first held out, "
        f"each predicted from the text before it (streams from a fresh state that first read {CONTEXT_CHARS} "
        f"unscored characters); the train loss above is the mean over the last {recent_batches} batch(es) "
        f"({recent_batches * args.batch * args.bptt} characters from all over the text, each batch scored just "
        "before the step that learned from it), so the two score different text"
    )
    ngram = WittenBellNgram(train_ids, len(vocab), NGRAM_ORDER)
    n_train = len(train_ids)
    for part, first, end in (("train", max(1, n_train - EVAL_CHARS), n_train), ("val", n_train, len(ids))):
        network = val_curve[-1][1] if part == "val" else cross_entropy_nats(model, ids, first, end, args.batch)
        scored = ids[first : first + scored_chars(end - first, args.batch)]
        unigram = unigram_nats(train_ids, scored, len(vocab))
        context = ids[max(0, first - NGRAM_ORDER + 1) : first + len(scored)]
        table = ngram.cross_entropy(context, start=len(context) - len(scored))
        print(
            f"{part} cross-entropy {network:.3f} nats/char (unigram baseline {unigram:.3f}, "
            f"Witten-Bell {NGRAM_ORDER}-gram {table:.3f})"
        )
    return 0


def forward_backward(model: Any, cell: str, compile: bool) -> Any:
    """The part of a training step that tg.compile replays: `(x, target, *state) -> (loss, *new state)`,
    all Tensors, the state flat (an LSTM's is h, c). The characters come in one-hot, as floats: tg.compile
    keys its cache on the values of integer arguments, so ids would record a new program at every step.
    The one-hot target gives the same cross-entropy and gradient as the ids, to the bit."""
    from ..nn.functional import cross_entropy

    def one_chunk(x: Tensor, target: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        initial = None if not state else state if cell == "lstm" else state[0]
        logits, final = model(x, initial)
        vocab = logits.shape[-1]
        loss = cross_entropy(logits.reshape(-1, vocab), target.reshape(-1, vocab), dim=-1)
        loss.backward()
        return (loss.detach(), *flat_state(detach_state(final)))

    return common.compiled(one_chunk, compile)


def flat_state(state: Any) -> tuple[Tensor, ...]:
    return () if state is None else tuple(state) if isinstance(state, tuple | list) else (state,)


def scored_chars(available: int, batch: int) -> int:
    """How many characters an evaluation scores: up to EVAL_CHARS, cut into equal streams."""
    n_streams, length = _eval_streams(available, batch)
    return n_streams * length


def _eval_streams(available: int, batch: int) -> tuple[int, int]:
    count = min(EVAL_CHARS, available)
    n_streams = max(1, min(batch, count // 8))
    return n_streams, count // n_streams


def cross_entropy_nats(model: Any, ids: np.ndarray, first: int, end: int, batch: int) -> float:
    """Mean cross-entropy of predicting ids[first : first + scored_chars(end - first, batch)], each from the
    text before it.

    The scored characters are cut into equal streams run side by side; each stream starts from a fresh
    state that first reads the CONTEXT_CHARS characters before its first scored one (fewer when the
    text begins closer), so the network is scored on the same characters, with context, as the n-gram.
    """
    from ..nn.functional import cross_entropy

    n_streams, length = _eval_streams(end - first, batch)
    context = min(CONTEXT_CHARS, first - 1)
    starts = first + length * np.arange(n_streams)
    rows = np.stack([ids[s - context - 1 : s + length] for s in starts], axis=1)  # (context + length + 1, streams)
    with no_grad():
        logits, _ = model(rows[:-1])
        scored = logits[context:]
        loss = cross_entropy(scored.reshape(-1, scored.shape[-1]), rows[context + 1 :].reshape(-1))
    return float(loss.item())


def unigram_nats(train_ids: np.ndarray, scored: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy of predicting each of `scored` from the training text's letter frequencies (add-one)."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[scored].mean())


def sample_text(model: Any, vocab: str, prime: str, length: int, temperature: float, rng: np.random.Generator) -> str:
    """Feed `prime`, then draw `length` characters one at a time from softmax(logits / temperature)."""
    ids = encode(prime, vocab, "--prime")
    out = []
    with no_grad():
        logits, state = model(ids[:, None])
        for _ in range(length):
            last = np.asarray(logits.data[-1, 0], dtype=np.float64)
            p = np.exp((last - last.max()) / temperature)  # shift first: a tiny temperature must not overflow
            choice = int(rng.choice(len(vocab), p=p / p.sum()))
            out.append(vocab[choice])
            logits, state = model(np.array([[choice]]), state)
    return prime + "".join(out)


def plot_losses(path: str, start_step: int, losses: list[float], val: list[tuple[int, float]], title: str) -> None:
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = np.arange(start_step + 1, start_step + len(losses) + 1)
    ax.plot(steps, losses, color="tab:gray", linewidth=0.7, label="train (per step)")
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", color="tab:red", label="held-out text")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title(f"{title}: loss")
    ax.legend()
    fig.tight_layout()
    common.save_figure(fig, path)
    plt.close(fig)


# ---------------------------------------------------------------- generate


def run_generate(args: argparse.Namespace) -> int:
    config, params, _ = checkpoints.load_checkpoint(args.checkpoint, "chars")
    from .models import CharModel

    try:
        vocab = str(config["vocab"])
        model = CharModel(
            str(config["cell"]), len(vocab), int(config["hidden"]), int(config["layers"]), dtype=str(config["dtype"])
        )
    except (KeyError, ValueError, TypeError):
        raise CLIError(f"{args.checkpoint}: its settings are incomplete; retrain with `tinygrad-rnn chars`") from None
    checkpoints.load_model_state(args.checkpoint, model, params)
    prime = args.prime if args.prime else ("\n" if "\n" in vocab else vocab[0])
    rng = np.random.default_rng(args.seed)
    print(sample_text(model, vocab, prime, args.length, args.temperature, rng))
    return 0
