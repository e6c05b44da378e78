"""Peak memory of the whole `sgpa align` process on long audio, next to the same command on a short clip.

Builds a 15-minute file by repeating data_samples/slt_0000.wav (and its transcript), runs `sgpa align` on it and on
data_samples/slt_0001.wav under GNU time, and records each process's maximum resident set size and wall time in
benchmarks/results/process_memory.{json,md}. The short clip's figure is the fixed footprint of the libraries
(torch alone maps about 550 MB).

    python benchmarks/process_memory.py --minutes 15
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def peak_of(command: list[str]) -> dict:
    """Run ``command`` under ``/usr/bin/time -v``; its peak RSS (MiB) and wall seconds."""
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-500:]}")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr).group(1)
    seconds = sum(float(part) * 60**k for k, part in enumerate(reversed(wall.split(":"))))
    return {"peak_rss_mib": round(rss_kib / 1024, 1), "wall_seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> None:
    import soundfile

    from sgpa.audio import load_audio

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    args = parser.parse_args(argv)
    sgpa_command = str(Path(sys.executable).with_name("sgpa"))
    clip, _ = load_audio(ROOT / "data_samples" / "slt_0000.wav")
    words = (ROOT / "data_samples" / "slt_0000.txt").read_text().split()
    repeats = int(np.ceil(args.minutes * 60 / (len(clip) / 16000)))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        long_wav = folder / "long.wav"
        soundfile.write(long_wav, np.tile(clip, repeats)[: int(args.minutes * 60 * 16000)], 16000)
        kept = int(len(words) * args.minutes * 60 / (len(clip) / 16000))
        (folder / "long.txt").write_text(" ".join((words * repeats)[:kept]))
        long_run = peak_of([sgpa_command, "align", str(long_wav), "-o", str(folder / "out"), "-q"])
        short_run = peak_of([sgpa_command, "align", str(ROOT / "data_samples" / "slt_0001.wav"),
                             "--transcript-file", str(ROOT / "data_samples" / "slt_0001.txt"),
                             "-o", str(folder / "out"), "-q"])
    result = {
        "command": "python benchmarks/process_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, 2 cores",
        "minutes": args.minutes, "words": kept,
        "long_audio": long_run, "short_clip": short_run,
    }
    atomic_write_text(RESULTS / "process_memory.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(RESULTS / "process_memory.md", (
        f"# Peak memory of `sgpa align` (whole process)\n\n`{result['command']}` — {result['machine']}.\n\n"
        f"| input | peak RSS | wall time |\n|---|---:|---:|\n"
        f"| {args.minutes:g} min of speech, {kept} words | {long_run['peak_rss_mib']:.0f} MiB | "
        f"{long_run['wall_seconds']:.0f} s |\n"
        f"| a 2 s clip (the libraries' fixed footprint) | {short_run['peak_rss_mib']:.0f} MiB | "
        f"{short_run['wall_seconds']:.0f} s |\n"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
