"""What the four SGPA stages add to the acoustic model's forward pass, with the shipped model, on real utterances.

Runs ``sgpa.pipeline.align_timed`` (the path `sgpa align` takes) on held-out utterances of the corpus and reports
the seconds of the model forward and of each stage, summed, and the stages' share of the forward time. Written to
benchmarks/results/stage_overhead.{json,md}.

    python benchmarks/stage_overhead.py --corpus work_data/corpus --per-voice 10
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_games import heldout_utterances  # noqa: E402

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STEPS = ("forward_s", "stage1_s", "stage2_s", "stage3_s", "stage4_s")


def main(argv: list[str] | None = None) -> None:
    import torch

    import sgpa
    from sgpa.pipeline import align_timed

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "work_data" / "corpus")
    parser.add_argument("--per-voice", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = sgpa.load_aligner()
    items = heldout_utterances(args.corpus, args.per_voice, max_words=40, min_words=1)
    align_timed(items[0]["wav"], items[0]["text"], model)  # warm-up: first-call costs are not the stages'
    totals = dict.fromkeys(STEPS, 0.0)
    audio_s = 0.0
    for item in items:
        segmentation, timings = align_timed(item["wav"], item["text"], model)
        audio_s += segmentation.audio.duration_s
        for step in STEPS:
            totals[step] += timings[step]
    stages = sum(totals[step] for step in STEPS[1:])
    result = {
        "command": "python benchmarks/stage_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, 2 threads",
        "model": model.name, "utterances": len(items), "audio_s": round(audio_s, 1),
        "seconds": {step: round(value, 3) for step, value in totals.items()},
        "stages_share_of_forward": round(stages / totals["forward_s"], 3),
        "share_per_stage": {step: round(totals[step] / totals["forward_s"], 3) for step in STEPS[1:]},
    }
    atomic_write_text(RESULTS / "stage_overhead.json", json.dumps(result, indent=2) + "\n")
    lines = ["# The four stages' cost next to the model forward (shipped sgpa-ctc-en)", "",
             f"`{result['command']}` — {result['utterances']} held-out utterances, {result['audio_s']} s of audio, "
             f"{result['machine']}.", "", "| step | seconds | share of the forward |", "|---|---:|---:|"]
    lines.append(f"| model forward (emissions) | {totals['forward_s']:.2f} | 1 |")
    for step in STEPS[1:]:
        lines.append(f"| {step[:-2]} | {totals[step]:.2f} | {result['share_per_stage'][step]:.1%} |")
    lines.append(f"| **stages 1–4** | {stages:.2f} | **{result['stages_share_of_forward']:.1%}** |")
    atomic_write_text(RESULTS / "stage_overhead.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
