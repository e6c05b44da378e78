"""Regenerate the few utterances shipped in ``data_samples/``.

    python -m sgpa.corpus.samples --out data_samples

Each sample is ``<id>.wav`` (16 kHz mono), ``<id>.txt`` (the transcript) and ``<id>.json`` (word and
phone times: exact for synthetic speech, pocketsphinx's silver alignment for the real clip), listed
in ``manifest.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sgpa.corpus.generate import split_of, write_utterance

# (id, engine, voice, transcript)
SYNTHETIC = (
    ("slt_0000", "festival", "cmu_us_slt_arctic_hts", "the old man found a small red box near the river"),
    ("slt_0001", "festival", "cmu_us_slt_arctic_hts", "please call me at 5 pm"),
    ("kal_0000", "festival", "kal_diphone", "Anna bought 25 red boxes in Boston yesterday"),
    ("awb_0000", "flite", "awb", "the train to Paris leaves at 7 45"),
    ("espeak_f3_0000", "espeak", "en-us+f3", "do you know where the blue car went"),
    # task sentences (sgpa.corpus.tasks: one slot word) in held-out voices, for the oracle LFM2-Audio model
    ("slt_task_0000", "festival", "cmu_us_slt_arctic_hts", "she visited a green field last evening"),
    ("espeak_f3_task_0000", "espeak", "en-us+f3", "we saw a sheep in the picture"),
)
REAL_CLIP = "librivox_sense_and_sensibility_01_austen_64kb-0880"


def write_samples(out_dir: Path) -> list[dict]:
    from sgpa.corpus import real
    from sgpa.corpus.generate import synthesizer
    from sgpa.io import atomic_write_text

    rows = []
    for sample_id, engine, voice, text in SYNTHETIC:
        (utt,) = synthesizer(engine)([text], voice)
        if utt is None:
            raise RuntimeError(f"{engine}:{voice} could not time {text!r}")
        rows.append(write_utterance(utt, out_dir, sample_id, split_of(engine, voice)))
    clip = next(c for c in real.testdata_clips() if c.id == REAL_CLIP)
    utt = real.load_recording(clip, real.make_aligner())
    rows.append(write_utterance(utt, out_dir, "librivox_0000", "heldout", reference="pocketsphinx", source_path=str(clip.path)))
    for row in rows:
        atomic_write_text(out_dir / f"{row['id']}.txt", row["text"] + "\n")
        row["transcript"] = f"{row['id']}.txt"
    atomic_write_text(out_dir / "manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sgpa.corpus.samples", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data_samples")
    args = parser.parse_args(argv)
    for row in write_samples(Path(args.out)):
        print(f"{row['id']}: {row['engine']}:{row['voice']} {row['duration_s']:.2f} s  {row['text']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
