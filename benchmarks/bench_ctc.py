"""The full `sgpa bench` run with the shipped CTC recogniser: >= 40 held-out utterances, silence masking.

Utterances: held-out synthetic voices of the corpus (festival slt, flite slt, espeak f3; ``--per-voice`` each) and
the held-out real recordings (pocketsphinx-testdata), all with 3 to ``--max-words`` words, in id order. The
manifest is written to work_data/bench_ctc/manifest.jsonl; the report folder is benchmarks/results/bench_ctc/
(rerunning resumes it). Wall time is recorded in that folder's timing.json.

    python benchmarks/bench_ctc.py --corpus work_data/corpus --per-voice 12 --max-words 10
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

from real_games import heldout_utterances  # noqa: E402

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_ctc"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "work_data" / "corpus")
    parser.add_argument("--per-voice", type=int, default=12)
    parser.add_argument("--max-words", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    items = heldout_utterances(args.corpus, args.per_voice, args.max_words, min_words=3)
    manifest = ROOT / "work_data" / "bench_ctc" / "manifest.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("".join(json.dumps({"id": i["id"], "audio": str(Path(i["wav"]).resolve()),
                                            "transcript": i["text"], "group": i["group"]}) + "\n" for i in items))
    import torch

    from sgpa.cli.main import cli, _register_commands

    torch.set_num_threads(2)
    _register_commands()
    started = time.time()
    try:
        cli.main(["bench", "--manifest", str(manifest), "-o", str(args.out), "--allow-outside"], standalone_mode=False)
    finally:
        timing = {"utterances": len(items), "wall_seconds": round(time.time() - started, 1),
                  "machine": f"{platform.machine()} CPU, 2 cores (shared with other work during the run)",
                  "command": "python benchmarks/bench_ctc.py " + " ".join(argv if argv is not None else sys.argv[1:])}
        atomic_write_text(args.out / "timing.json", json.dumps(timing, indent=2) + "\n")
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
