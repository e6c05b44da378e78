"""Stage 3's pause threshold (``min_pause_s``) measured: word-boundary error of ``sgpa align`` at each threshold.

A silence between two words that lasts at least ``min_pause_s`` becomes a pause (context, in every coalition);
a shorter one is split between the two words. Too low a threshold cuts stop closures and short breaks out of
connected speech; too high a one lets words swallow real pauses. Both show in FA-Bench's word start/end error
(each word's own start and end against the truth), which charges a word for a pause it absorbed; the gap-based
error (a cut anywhere inside the true gap is exact) is reported beside it.

The threshold is **chosen on a dev set of training voices** (``--dev-split train``: unseen sentences spoken by the
voices the model trained on, ``python -m sgpa.corpus.generate --out work_data/corpus/dev_train --n 150 --seed 31
--voices train --augment 0 --id-prefix dev_``), then reported on the held-out voices and real speech. Real speech
has the long pauses that synthetic speech lacks, but only 10 clips and a silver reference (pocketsphinx), so it is
reported, not used for the choice.

    python benchmarks/pause_threshold.py --corpus work_data/corpus

writes ``benchmarks/results/pause_threshold.{json,md}``. The model forward runs once per utterance per threshold
(as ``sgpa align`` does): 280 alignments per threshold (the recorded run, 32 min, shared the 2 cores with a training
run; ``ctc_accuracy.py`` alone does 130 in about 15 s).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ctc_accuracy import evaluate, heldout_items  # noqa: E402

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
THRESHOLDS_S = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)  # 0: no pauses at all (words tile every gap)


def summary_row(figures: dict) -> dict:
    """The figures that decide the threshold, from :func:`ctc_accuracy.figures` of one set."""
    return {
        "utterances": figures["aligned_utterances"],
        "fa_bench_mae_ms": figures["refined_start_end"]["mae_ms"],
        "gap_mae_ms": figures["refined"]["mae_ms"],
        "within_20ms": figures["refined"]["within_20ms"],
        "worst_utterance_fa_bench_ms": figures["refined_start_end"]["worst_utterance_mae_ms"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="work_data/corpus", help="corpus with dev (train-voice) and held-out utterances")
    parser.add_argument("--per-voice", type=int, default=40)
    parser.add_argument("--dev-split", default="train")
    parser.add_argument("--thresholds-s", default=",".join(f"{t:g}" for t in THRESHOLDS_S))
    parser.add_argument("--out", default=str(RESULTS / "pause_threshold"))
    args = parser.parse_args(argv)

    import torch

    from sgpa.ctc import load_ctc_model
    from sgpa.refine import MIN_PAUSE_S

    torch.set_num_threads(2)
    started = time.time()
    model = load_ctc_model(None)
    dev, _ = heldout_items(Path(args.corpus), args.per_voice, args.dev_split)
    heldout, real = heldout_items(Path(args.corpus), args.per_voice)
    sets = {"dev (training voices)": dev, "held-out synthetic": heldout, "real (silver reference)": real}
    thresholds = [float(t) for t in args.thresholds_s.split(",")]
    rows = []
    for threshold in thresholds:
        for name, items in sets.items():
            if not items:
                continue
            groups, _ = evaluate(model, items, boundaries=True, align_options={"min_pause_s": threshold})
            rows.append({"threshold_s": threshold, "set": name, **summary_row(groups["overall"])})
            print(rows[-1], flush=True)
    dev_rows = [r for r in rows if r["set"] == "dev (training voices)"]
    # the smallest dev error, rounded to 0.05 ms; ties go to the threshold nearest the current default
    best = min(dev_rows, key=lambda r: (round(r["fa_bench_mae_ms"] / 0.05), abs(r["threshold_s"] - MIN_PAUSE_S)))
    result = {
        "command": "python benchmarks/pause_threshold.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "model": model.name, "revision": model.revision, "current_default_s": MIN_PAUSE_S,
        "chosen_on_dev_s": best["threshold_s"], "rows": rows, "seconds": round(time.time() - started, 1),
    }
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(result, list(sets)))
    print(to_markdown(result, list(sets)))


def to_markdown(result: dict, set_names: list[str]) -> str:
    lines = [
        "# Stage 3's pause threshold: boundary error of `sgpa align` at each `min_pause_s`",
        "",
        f"`{result['command']}`; model `{result['model']}` ({result['revision']}); {result['machine']}; "
        f"{result['seconds']:.0f} s. Chosen on the dev set (training voices, unseen sentences): "
        f"**{result['chosen_on_dev_s']:g} s** (smallest FA-Bench error; the default was {result['current_default_s']:g} s).",
        "",
        "Each cell: FA-Bench word start/end MAE ms / gap-based MAE ms (worst utterance's FA-Bench MAE ms).",
        "",
        "| min_pause_s | " + " | ".join(set_names) + " |",
        "|---:|" + "---:|" * len(set_names),
    ]
    for threshold in sorted({r["threshold_s"] for r in result["rows"]}):
        cells = []
        for name in set_names:
            row = next((r for r in result["rows"] if r["threshold_s"] == threshold and r["set"] == name), None)
            cells.append("–" if row is None else
                         f"{row['fa_bench_mae_ms']:.1f} / {row['gap_mae_ms']:.1f} ({row['worst_utterance_fa_bench_ms']:.0f})")
        label = f"{threshold:g}" + (" (no pauses)" if threshold == 0 else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    counts = {name: next(r["utterances"] for r in result["rows"] if r["set"] == name)
              for name in set_names if any(r["set"] == name for r in result["rows"])}
    lines += ["", "Utterances: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
