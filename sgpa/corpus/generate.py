"""Generate a corpus of synthetic utterances with exact word times.

    python -m sgpa.corpus.generate --out DIR --n 4000 --seed 0 --voices train --augment 0.5

writes, for each utterance, ``<id>.wav`` (16 kHz mono, 16-bit) and ``<id>.json``::

    {"id", "text", "engine", "voice", "sample_rate", "duration_s",
     "words": [{"text", "start", "end"}], "phones": [{"phone", "start", "end"}],
     "augmentations": [...], "seed", "index", "split"}

and ``manifest.jsonl`` with one line per utterance ``{"id", "audio", "text", "json", "engine",
"voice", "split", "duration_s"}`` (paths relative to the manifest's folder).

Everything is a function of ``--seed``: utterance ``i`` draws its voice (weighted by engine, see
:data:`ENGINE_WEIGHTS`), sentence and augmentations from ``numpy.random.default_rng([seed, i, ...])``, so the
result does not depend on the number of worker processes or their scheduling.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgpa.corpus.utterance import Utterance
from sgpa.errors import InputError

SAMPLE_RATE = 16000

# (engine, voice) pairs. Held out for evaluation: the slt speaker in both engines (festival's
# HTS voice and flite's clunit voice are the same woman) and one espeak variant.
TRAIN_VOICES = (
    ("festival", "kal_diphone"),
    ("flite", "kal"),
    ("flite", "kal16"),
    ("flite", "awb"),
    ("flite", "rms"),
)
HELDOUT_VOICES = (
    ("festival", "cmu_us_slt_arctic_hts"),
    ("flite", "slt"),
)
_MAX_ATTEMPTS = 4
# How often each training voice is drawn, by engine. espeak has eleven cheap, robotic variants;
# weighting each down keeps espeak to about a quarter of the training speech. Held-out voices
# are drawn equally often, so that each gets a fair share of an evaluation set.
ENGINE_WEIGHTS = {"festival": 2.0, "flite": 1.5, "espeak": 0.3}


def _espeak_voices() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    import ctypes.util

    from sgpa.corpus import espeak

    if ctypes.util.find_library("espeak-ng") is None:
        raise OSError("libespeak-ng is not installed")
    return (
        tuple(("espeak", v) for v in espeak.TRAIN_VOICES),
        tuple(("espeak", v) for v in espeak.HELDOUT_VOICES),
    )


def all_voices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(training voices, held-out voices) as (engine, voice) pairs, espeak included if available."""
    train, heldout = list(TRAIN_VOICES), list(HELDOUT_VOICES)
    try:
        espeak_train, espeak_heldout = _espeak_voices()
    except (ImportError, OSError):
        return train, heldout
    return train + list(espeak_train), heldout + list(espeak_heldout)


def split_of(engine: str, voice: str) -> str:
    """``"heldout"`` for voices kept out of training, else ``"train"``."""
    _, heldout = all_voices()
    return "heldout" if (engine, voice) in heldout else "train"


def parse_voices(spec: str) -> list[tuple[str, str]]:
    """``"train"``, ``"heldout"``, ``"all"`` or a comma list of ``engine:voice``."""
    train, heldout = all_voices()
    if spec == "train":
        return train
    if spec == "heldout":
        return heldout
    if spec == "all":
        return train + heldout
    voices = []
    known = set(train + heldout)
    for item in spec.split(","):
        engine, _, voice = item.strip().partition(":")
        if (engine, voice) not in known:
            names = ", ".join(f"{e}:{v}" for e, v in sorted(known))
            raise InputError(f"unknown voice {item!r}; known voices: {names}")
        voices.append((engine, voice))
    return voices


def synthesizer(engine: str) -> Callable[[list[str], str], list[Utterance | None]]:
    """The ``synthesize(texts, voice)`` function of an engine."""
    if engine == "festival":
        from sgpa.corpus.festival import synthesize
    elif engine == "flite":
        from sgpa.corpus.flite import synthesize
    elif engine == "espeak":
        from sgpa.corpus.espeak import synthesize
    else:
        raise InputError(f"unknown engine {engine!r}")
    return synthesize


def to_json_dict(utt: Utterance, utt_id: str, **extra) -> dict:
    """The per-utterance JSON record (times rounded to microseconds)."""
    return {
        "id": utt_id,
        "text": utt.text,
        "engine": utt.engine,
        "voice": utt.voice,
        "sample_rate": utt.sample_rate,
        "duration_s": round(utt.duration_s, 6),
        "words": [{"text": w.text, "start": round(w.start, 6), "end": round(w.end, 6)} for w in utt.words],
        "phones": [{"phone": p.phone, "start": round(p.start, 6), "end": round(p.end, 6)} for p in utt.phones],
        "augmentations": utt.augmentations,
        **extra,
    }


def write_utterance(utt: Utterance, out_dir: Path, utt_id: str, split: str, **extra) -> dict:
    """Write ``<id>.wav`` and ``<id>.json`` atomically; return the manifest row."""
    import soundfile

    from sgpa.io import atomic_write, atomic_write_text

    if utt.sample_rate != SAMPLE_RATE:
        raise ValueError(f"expected {SAMPLE_RATE} Hz audio, got {utt.sample_rate}")
    wav_path, json_path = out_dir / f"{utt_id}.wav", out_dir / f"{utt_id}.json"
    atomic_write(wav_path, lambda tmp: soundfile.write(tmp, utt.samples, utt.sample_rate, subtype="PCM_16", format="WAV"))
    record = to_json_dict(utt, utt_id, split=split, **extra)
    atomic_write_text(json_path, json.dumps(record, indent=1) + "\n")
    return {
        "id": utt_id,
        "audio": wav_path.name,
        "text": utt.text,
        "json": json_path.name,
        "engine": utt.engine,
        "voice": utt.voice,
        "split": split,
        "duration_s": record["duration_s"],
    }


@dataclass(frozen=True)
class Job:
    """A batch of utterances for one voice, synthesised by one engine call."""

    engine: str
    voice: str
    indices: tuple[int, ...]
    seed: int
    augment_fraction: float
    out_dir: str
    id_prefix: str
    sentences: str = "general"
    voice_fraction: float = 0.0


SENTENCE_KINDS = ("general", "tasks")


def _sentence(seed: int, index: int, attempt: int, kind: str = "general") -> str:
    """``general``: varied templates (:mod:`sgpa.corpus.sentences`); ``tasks``: one slot word per sentence
    (:mod:`sgpa.corpus.tasks`, the oracle model's data)."""
    rng = np.random.default_rng([seed, index, attempt])
    if kind == "tasks":
        from sgpa.corpus.tasks import make_task_sentence

        return make_task_sentence(rng)
    from sgpa.corpus.sentences import make_sentence

    return make_sentence(rng)


def babble_bank(seed: int, n_talkers: int = 8) -> list[np.ndarray]:
    """Clean utterances from training voices, used as the talkers of babble noise."""
    from sgpa.corpus import flite

    from sgpa.corpus.sentences import make_sentence

    voices = ["kal16", "awb", "rms", "kal"]
    bank = []
    for k in range(n_talkers):
        text = make_sentence(np.random.default_rng([seed, 1_000_000_007, k]))
        (utt,) = flite.synthesize([text], voices[k % len(voices)])
        if utt is not None:
            bank.append(utt.samples)
    return bank


def run_job(job: Job, babble: list[np.ndarray]) -> list[dict]:
    """Synthesise, augment and write one batch; return its manifest rows."""
    from sgpa.corpus.augment import random_chain, random_voice

    synthesize = synthesizer(job.engine)
    split = split_of(job.engine, job.voice)
    out_dir = Path(job.out_dir)
    rows = []
    pending = list(job.indices)
    for attempt in range(_MAX_ATTEMPTS):
        if not pending:
            break
        texts = [_sentence(job.seed, i, attempt, job.sentences) for i in pending]
        failed = []
        for index, utt in zip(pending, synthesize(texts, job.voice)):
            if utt is None:
                failed.append(index)
                continue
            # its own stream, so that turning voice conversion on leaves every other draw unchanged
            voice_rng = np.random.default_rng([job.seed, index, 98])
            if voice_rng.random() < job.voice_fraction:
                utt = random_voice(utt, voice_rng)
            rng = np.random.default_rng([job.seed, index, 99])
            if rng.random() < job.augment_fraction:
                utt = random_chain(utt, rng, babble)
            utt_id = f"{job.id_prefix}{index:05d}"
            rows.append(write_utterance(utt, out_dir, utt_id, split, seed=job.seed, index=index))
        pending = failed
    return rows


def plan_jobs(
    n: int, seed: int, voices: list[tuple[str, str]], augment_fraction: float, out_dir: Path,
    id_prefix: str = "utt", batch_size: int = 16, sentences: str = "general", voice_fraction: float = 0.0,
) -> list[Job]:
    """Utterance ``i`` gets a voice drawn from ``rng([seed, i])`` (training voices weighted by
    :data:`ENGINE_WEIGHTS`, held-out voices equally);
    each voice's indices are cut into batches."""
    weights = np.array(
        [ENGINE_WEIGHTS.get(engine, 1.0) if split_of(engine, voice) == "train" else 1.0 for engine, voice in voices]
    )
    by_voice: dict[tuple[str, str], list[int]] = {v: [] for v in voices}
    for index in range(n):
        choice = np.random.default_rng([seed, index]).choice(len(voices), p=weights / weights.sum())
        by_voice[voices[choice]].append(index)
    jobs = []
    for (engine, voice), indices in by_voice.items():
        for start in range(0, len(indices), batch_size):
            jobs.append(
                Job(engine, voice, tuple(indices[start : start + batch_size]), seed, augment_fraction, str(out_dir), id_prefix,
                    sentences, voice_fraction)
            )
    return jobs


def _worker(args: tuple[Job, list[np.ndarray]]) -> list[dict]:
    return run_job(*args)


def generate(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    voices: list[tuple[str, str]] | None = None,
    augment_fraction: float = 0.0,
    workers: int = 2,
    id_prefix: str = "utt",
    progress: bool = True,
    sentences: str = "general",
    voice_fraction: float = 0.0,
) -> list[dict]:
    """Generate ``n`` utterances into ``out_dir`` and write ``manifest.jsonl``; return its rows.

    Parameters
    ----------
    voices : list of (engine, voice)
        Default: all training voices.
    augment_fraction : float
        Probability in [0, 1] that an utterance gets a random augmentation chain.
    workers : int
        Processes in the pool (1 runs in this process).
    sentences : str
        ``general`` (varied templates) or ``tasks`` (one slot word per sentence, see :mod:`sgpa.corpus.tasks`).
    voice_fraction : float
        Probability in [0, 1] that an utterance is resynthesised as another apparent speaker
        (:func:`sgpa.corpus.augment.random_voice`, before any other augmentation).
    """
    from tqdm import tqdm

    from sgpa.io import atomic_write_text

    if n < 1:
        raise InputError("--n must be at least 1")
    if not 0.0 <= augment_fraction <= 1.0:
        raise InputError("--augment must be a fraction between 0 and 1")
    if not 0.0 <= voice_fraction <= 1.0:
        raise InputError("--voice-conversion must be a fraction between 0 and 1")
    if sentences not in SENTENCE_KINDS:
        raise InputError(f"--sentences must be one of {', '.join(SENTENCE_KINDS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    voices = voices or all_voices()[0]
    babble = babble_bank(seed) if augment_fraction > 0 else []
    jobs = plan_jobs(n, seed, voices, augment_fraction, out_dir, id_prefix, sentences=sentences,
                     voice_fraction=voice_fraction)
    rows: list[dict] = []
    bar = tqdm(total=n, unit="utt", disable=not progress, file=sys.stderr)
    if workers <= 1:
        results = map(_worker, [(job, babble) for job in jobs])
        for job, job_rows in zip(jobs, results):
            rows += job_rows
            bar.update(len(job.indices))
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for job_rows in pool.imap_unordered(_worker, [(job, babble) for job in jobs]):
                rows += job_rows
                bar.update(len(job_rows))
    bar.close()
    rows.sort(key=lambda row: row["id"])
    atomic_write_text(out_dir / "manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    if len(rows) < n:
        print(f"warning: {n - len(rows)} utterance(s) could not be given exact times and were skipped", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sgpa.corpus.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, required=True, help="number of utterances")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voices", default="train", help="train | heldout | all | engine:voice,engine:voice,...")
    parser.add_argument("--augment", type=float, default=0.0, help="fraction of utterances to augment (0-1)")
    parser.add_argument("--voice-conversion", type=float, default=0.0,
                        help="fraction of utterances resynthesised as another apparent speaker (0-1; mostly female)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--id-prefix", default="utt")
    parser.add_argument("--sentences", default="general", choices=SENTENCE_KINDS,
                        help="general: varied templates; tasks: one slot word per sentence (oracle model data)")
    args = parser.parse_args(argv)
    try:
        generate(args.out, args.n, args.seed, parse_voices(args.voices), args.augment, args.workers, args.id_prefix,
                 sentences=args.sentences, voice_fraction=args.voice_conversion)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
