"""Train the project's English CTC model from a corpus folder, within a wall-clock budget.

Usage::

    python -m sgpa.training.train_ctc --corpus work_data/corpus --out sgpa/models/sgpa-ctc-en --minutes 60

The learning rate warms up linearly over ``--warmup-steps`` and then follows a cosine curve over the *time*
budget, so a run given 60 minutes anneals fully in 60 minutes whatever the machine's speed. A small dev set
(utterances of the training voices left out of training) is decoded every ``--eval-minutes``; the checkpoint
with the lowest dev CER is what ``--out`` receives. The corpus's ``heldout`` split is never read here: it is
for ``benchmarks/ctc_accuracy.py``. Progress goes to stdout; ``--work-dir`` holds a resumable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from sgpa.errors import InputError
from sgpa.io import atomic_write_text
from sgpa.training.data import (
    FREE_WINDOW_S,
    collate,
    duration_batches,
    load_utterances,
    precompute_features,
    read_manifest,
)
from sgpa.training.metrics import character_error_rate, greedy_decode
from sgpa.training.model import ARCHITECTURES, SAMPLE_RATE, build_model, build_processor


def learning_rate(step: int, elapsed_fraction: float, peak: float, warmup_steps: int, floor: float = 0.02) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay from ``peak`` to ``floor * peak`` over the budget."""
    warmup = min(1.0, (step + 1) / warmup_steps)
    progress = min(max(elapsed_fraction, 0.0), 1.0)
    cosine = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return peak * warmup * cosine


def split_dev(entries: list[dict], fraction: float, max_dev: int, rng: np.random.Generator) -> tuple[list, list]:
    """Split the ``train`` entries into (train, dev); other splits are dropped."""
    train = [e for e in entries if e.get("split", "train") == "train"]
    n_dev = min(max_dev, int(round(len(train) * fraction)))
    order = rng.permutation(len(train))
    dev_ids = set(order[:n_dev].tolist())
    return [e for i, e in enumerate(train) if i not in dev_ids], [e for i, e in enumerate(train) if i in dev_ids]


def output_lengths(model, attention_mask):
    """Valid output frames per batch row, given the input ``attention_mask``."""
    input_lengths = attention_mask.sum(-1)
    if "input_values" in model.main_input_name:
        return model._get_feat_extract_output_lengths(input_lengths)
    return input_lengths  # log-mel models here keep one output frame per input frame


def batch_loss(model, inputs: dict, frame_duration_s: float, timed: bool = True):
    """Mean per-label CTC loss of a collated batch, and the share of rows trained with time windows.

    With ``timed`` the loss sums only over paths that emit each label inside its window
    (:func:`sgpa.training.timed_ctc.timed_ctc_loss`); rows whose windows admit no path, or that have none, use
    plain CTC. Like transformers' ``ctc_loss_reduction="mean"``, each row's loss is divided by its label count.
    """
    import torch

    from sgpa.training.timed_ctc import timed_ctc_loss, windows_to_frames

    labels, windows_s = inputs["labels"], inputs["label_windows_s"]
    model_inputs = {key: value for key, value in inputs.items() if key not in ("labels", "label_windows_s")}
    log_probs = torch.log_softmax(model(**model_inputs).logits.float(), dim=-1)
    input_lengths = output_lengths(model, inputs["attention_mask"])
    label_lengths = (labels >= 0).sum(-1)
    targets = labels.clamp(min=0)
    blank = model.config.pad_token_id
    use_timed = torch.zeros(len(labels), dtype=torch.bool)
    if timed:
        label_frames = windows_to_frames(windows_s, frame_duration_s, log_probs.shape[1])
        per_row, feasible = timed_ctc_loss(log_probs, input_lengths, targets, label_lengths, label_frames, blank)
        use_timed = feasible & (windows_s[..., 0] > FREE_WINDOW_S[0]).any(-1)
    if not use_timed.all():  # plain CTC only where the windows are missing or admit no path
        plain = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1), targets, input_lengths, label_lengths, blank=blank, reduction="none",
            zero_infinity=True,
        )
        per_row = torch.where(use_timed, per_row, plain) if timed else plain
    timed_share = float(use_timed.float().mean())
    return (per_row / label_lengths.clamp(min=1)).mean(), timed_share


def decode_cer(model, processor, utterances, max_batch_s: float = 60.0) -> tuple[float, list[str]]:
    """Greedy CER of ``model`` over ``utterances`` and the hypotheses, in order."""
    import torch

    id_to_token = {i: t for t, i in processor.tokenizer.get_vocab().items()}
    model.eval()
    hypotheses = [""] * len(utterances)
    durations = np.array([u.duration_s for u in utterances])
    batches = duration_batches(durations, max_batch_s, np.random.default_rng(0))
    with torch.inference_mode():
        for batch in batches:
            inputs = collate([utterances[i] for i in batch], processor)
            inputs.pop("labels")
            inputs.pop("label_windows_s")
            logits = model(**inputs).logits
            lengths = output_lengths(model, inputs["attention_mask"])
            for row, index in enumerate(batch):
                frame_ids = logits[row, : int(lengths[row])].argmax(-1).numpy()
                hypotheses[index] = greedy_decode(frame_ids, id_to_token)
    model.train()
    references = [" ".join(processor.tokenizer.decode(u.labels.tolist(), group_tokens=False).split()) for u in utterances]
    return character_error_rate(references, hypotheses), hypotheses


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="corpus folder with manifest.jsonl")
    p.add_argument("--out", required=True, help="where the best model is saved (save_pretrained)")
    p.add_argument("--work-dir", default=None, help="checkpoints and logs (default: <out>.work)")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (testing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--batch-seconds", type=float, default=24.0, help="padded audio seconds per batch")
    p.add_argument("--max-utterances", type=int, default=None, help="use only this many training utterances")
    p.add_argument("--max-duration-s", type=float, default=16.0)
    p.add_argument("--dev-fraction", type=float, default=0.03)
    p.add_argument("--max-dev", type=int, default=120)
    p.add_argument("--eval-minutes", type=float, default=5.0)
    p.add_argument("--arch", choices=ARCHITECTURES, default="wav2vec2", help="wav2vec2 (shipped) or wav2vec2-bert (log-mel)")
    p.add_argument("--hidden-size", type=int, default=192)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=768)
    p.add_argument(
        "--timed-ctc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restrict CTC paths to label windows from the corpus's word/phone times (sgpa.training.timed_ctc)",
    )
    p.add_argument("--exact-tolerance-s", type=float, default=0.02, help="window slack around synthesis times")
    p.add_argument("--silver-tolerance-s", type=float, default=0.05, help="window slack around forced-aligner times")
    p.add_argument(
        "--speed-range",
        type=float,
        nargs=2,
        default=(0.9, 1.15),
        metavar=("LOW", "HIGH"),
        help="speed factors drawn for half of the training waveforms (1 1 turns it off)",
    )
    p.add_argument("--init", default=None,
                   help="start from the weights of a model folder (save_pretrained, e.g. the shipped sgpa-ctc-en) "
                        "of the same architecture instead of random weights; the optimizer starts afresh")
    p.add_argument("--resume", action="store_true", help="continue from <work-dir>/checkpoint.pt")
    return p.parse_args(argv)


def init_from(model, folder: Path) -> None:
    """Copy the weights of the model saved in ``folder`` into ``model``; a different architecture or size is an
    :class:`InputError` naming the first mismatch."""
    from transformers import AutoModelForCTC

    source = AutoModelForCTC.from_pretrained(folder).state_dict()
    target = model.state_dict()
    for name, tensor in target.items():
        if name not in source or source[name].shape != tensor.shape:
            found = tuple(source[name].shape) if name in source else "missing"
            raise InputError(f"--init {folder}: {name} is {found} there, {tuple(tensor.shape)} here "
                             "(use the same --arch and sizes)")
    model.load_state_dict({name: source[name] for name in target})


def save_model(model, processor, out_dir: Path, summary: dict) -> None:
    """``save_pretrained`` model + processor into ``out_dir`` (replaced as a whole) with a training summary."""
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    model.save_pretrained(tmp_dir, safe_serialization=True)
    processor.save_pretrained(tmp_dir)
    (tmp_dir / "training_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    replace_folder(tmp_dir, out_dir)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCTC

    from sgpa.ctc import DELIMITER_IN_GAP_ATTRIBUTE, measure_frame_duration_s

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out_dir = Path(args.out)
    work_dir = Path(args.work_dir) if args.work_dir else out_dir.with_name(out_dir.name + ".work")
    work_dir.mkdir(parents=True, exist_ok=True)

    entries = read_manifest(args.corpus)
    train_entries, dev_entries = split_dev(entries, args.dev_fraction, args.max_dev, rng)
    if args.max_utterances:
        train_entries = [train_entries[i] for i in rng.permutation(len(train_entries))[: args.max_utterances]]
    t0 = time.time()
    tolerances = (args.exact_tolerance_s, args.silver_tolerance_s)
    train = load_utterances(train_entries, args.max_duration_s, *tolerances)
    dev = load_utterances(dev_entries, args.max_duration_s, *tolerances)
    hours = sum(u.duration_s for u in train) / 3600
    n_timed = sum(u.label_windows_s is not None for u in train)
    print(
        f"loaded {len(train)} train ({hours:.2f} h, {n_timed} with word times) and {len(dev)} dev utterances "
        f"in {time.time() - t0:.0f} s",
        flush=True,
    )

    processor = build_processor(args.arch)
    if args.arch == "wav2vec2-bert":
        t0 = time.time()
        precompute_features(train + dev, processor.feature_extractor)
        print(f"computed log-mel features in {time.time() - t0:.0f} s", flush=True)
    model = build_model(args.arch, args.hidden_size, args.layers, args.heads, args.intermediate_size)
    if args.init:
        init_from(model, Path(args.init))
        print(f"initialised from {args.init}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    frame_duration_s = measure_frame_duration_s(model, processor, SAMPLE_RATE)
    model.train()
    print(f"{type(model).__name__} with {n_params / 1e6:.2f} M parameters", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=args.weight_decay)

    step, epoch, trained_s, best_cer, history = 0, 0, 0.0, float("inf"), []
    skip_batches = 0  # batches of the current epoch already trained on (when resuming)
    checkpoint_path = work_dir / "checkpoint.pt"
    if args.resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, trained_s, best_cer, history = state["step"], state["epoch"], state["trained_s"], state["best_cer"], state["history"]
        skip_batches = state.get("batch_in_epoch", step if epoch == 0 else 0)
        print(f"resumed at step {step} (epoch {epoch}, batch {skip_batches}) after {trained_s / 60:.1f} min", flush=True)

    budget_s = args.minutes * 60
    durations = np.array([u.duration_s for u in train])
    start = time.time() - trained_s
    last_eval = session_start = time.time()
    loss_sum, loss_n, audio_s, timed_sum = 0.0, 0, 0.0, 0.0
    speed_range = tuple(args.speed_range) if args.speed_range[0] != args.speed_range[1] else None
    model.train()
    done = False
    while not done:
        epoch_rng = np.random.default_rng([args.seed, epoch])
        batches = duration_batches(durations, args.batch_seconds, epoch_rng)
        if epoch == 0:
            # Short utterances first in the first epoch ("SortaGrad"): CTC leaves its all-blank plateau sooner.
            batches.sort(key=lambda batch: float(durations[batch].max()))
        batch_in_epoch = skip_batches
        for batch in batches[skip_batches:]:
            elapsed = time.time() - start
            if elapsed >= budget_s or (args.max_steps is not None and step >= args.max_steps):
                done = True
                break
            lr = learning_rate(step, elapsed / budget_s, args.lr, args.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs = collate([train[i] for i in batch], processor, augment_rng=epoch_rng, speed_range=speed_range)
            loss, timed_share = batch_loss(model, inputs, frame_duration_s, timed=args.timed_ctc)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            step += 1
            batch_in_epoch += 1
            loss_sum, loss_n, timed_sum = loss_sum + loss.item(), loss_n + 1, timed_sum + timed_share
            audio_s += float(durations[batch].sum())
            if step % 25 == 0:
                print(
                    f"step {step} epoch {epoch} {elapsed / 60:5.1f} min loss {loss_sum / loss_n:.3f} lr {lr:.2e} "
                    f"{audio_s / max(time.time() - session_start, 1e-9):.1f} audio-s/s "
                    f"timed {100 * timed_sum / loss_n:.0f}%",
                    flush=True,
                )
                loss_sum, loss_n, timed_sum = 0.0, 0, 0.0
            if time.time() - last_eval >= args.eval_minutes * 60:
                best_cer = evaluate_and_checkpoint(
                    model, optimizer, processor, dev, (step, epoch, batch_in_epoch), start, best_cer, history, work_dir
                )
                last_eval = time.time()
        else:
            epoch += 1
            skip_batches = 0
    best_cer = evaluate_and_checkpoint(
        model, optimizer, processor, dev, (step, epoch, batch_in_epoch), start, best_cer, history, work_dir
    )

    best = AutoModelForCTC.from_pretrained(work_dir / "best")
    if args.timed_ctc and n_timed:
        # Tells sgpa.pipeline that this model's word delimiter sits in the pause between words.
        setattr(best.config, DELIMITER_IN_GAP_ATTRIBUTE, True)
    summary = {
        "steps": step,
        "epochs": epoch,
        "train_minutes": round((time.time() - start) / 60, 1),
        "train_utterances": len(train),
        "train_hours": round(hours, 3),
        "dev_utterances": len(dev),
        "best_dev_cer": best_cer,
        "parameters": n_params,
        "history": history,
        "args": vars(args),
    }
    save_model(best, processor, out_dir, summary)
    print(f"saved the best checkpoint (dev CER {best_cer:.3f}) to {out_dir}", flush=True)


def evaluate_and_checkpoint(model, optimizer, processor, dev, position, start, best_cer, history, work_dir):
    """Decode the dev set, keep the best model in ``work_dir/best`` and write a resumable checkpoint.

    ``position`` is (step, epoch, batch index within the epoch) of the next batch to train on.
    """
    import torch

    step, epoch, batch_in_epoch = position
    cer, hypotheses = decode_cer(model, processor, dev)
    elapsed = time.time() - start
    history.append({"step": step, "minutes": round(elapsed / 60, 2), "dev_cer": round(cer, 4)})
    print(f"eval step {step} {elapsed / 60:.1f} min dev CER {cer:.3f} | {dev[0].text!r} -> {hypotheses[0]!r}", flush=True)
    if cer < best_cer:
        best_cer = cer
        model.save_pretrained(work_dir / "best", safe_serialization=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "trained_s": elapsed,
        "best_cer": best_cer,
        "history": history,
    }
    write_checkpoint(work_dir, state, history)
    return best_cer


def write_checkpoint(work_dir: Path, state: dict, history: list[dict]) -> None:
    """``work_dir/checkpoint.pt`` (written to a temporary name, then renamed: never half-written) and the eval
    history as ``history.json``."""
    import torch

    torch.save(state, work_dir / "checkpoint.pt.tmp")
    (work_dir / "checkpoint.pt.tmp").replace(work_dir / "checkpoint.pt")
    atomic_write_text(work_dir / "history.json", json.dumps(history, indent=2))


def replace_folder(tmp_dir: Path, out_dir: Path) -> None:
    """Move a freshly written model folder onto ``out_dir``, keeping files there that are not ours (the model card)."""
    if out_dir.exists():
        for extra in out_dir.iterdir():
            if extra.is_file() and not (tmp_dir / extra.name).exists():
                shutil.copy2(extra, tmp_dir / extra.name)
        shutil.rmtree(out_dir)
    tmp_dir.rename(out_dir)


if __name__ == "__main__":
    main()
