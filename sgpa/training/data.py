"""Reading a training corpus into memory and cutting it into padded batches.

A corpus folder holds ``manifest.jsonl`` (one JSON object per utterance with at least ``id``, the transcript
under ``text`` and ``split`` = ``train`` / ``heldout``) and ``<id>.wav`` files next to it (or at the path the
manifest names under ``audio`` or ``wav``, relative to the manifest), or sub-folders that each hold one. Extra manifest fields (``voice``, ``engine``, ...) are kept for reporting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sgpa.errors import InputError
from sgpa.text import normalize_transcript
from sgpa.training.model import SAMPLE_RATE, WORD_DELIMITER, character_vocabulary


@dataclass
class TrainingUtterance:
    """One utterance ready for CTC training.

    Attributes
    ----------
    samples : np.ndarray, shape (n_samples,), float32
        Mono waveform at 16 kHz.
    labels : np.ndarray, shape (n_labels,), int64
        Character ids of the transcript, words separated by the ``|`` id.
    features : np.ndarray, shape (n_frames, n_features), float32, or None
        Precomputed model input features (log-mel front ends); None for raw-waveform models.
    """

    id: str
    text: str
    samples: np.ndarray
    labels: np.ndarray
    split: str
    meta: dict = field(default_factory=dict)
    features: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def transcript_to_labels(text: str, vocab: dict[str, int] | None = None) -> np.ndarray:
    """Spell ``text`` with the model's characters and return its label ids, ``|`` between words.

    Numerals and symbols are expanded to words first ("57" -> FIFTY SEVEN), so a corpus may keep digits.
    """
    vocab = vocab or character_vocabulary()
    characters = {token for token in vocab if len(token) == 1 and token != WORD_DELIMITER}
    spelled = [word.normalized for word in normalize_transcript(text, characters) if word.normalized]
    sub_words = " ".join(spelled).split()
    ids: list[int] = []
    for index, sub_word in enumerate(sub_words):
        if index:
            ids.append(vocab[WORD_DELIMITER])
        ids.extend(vocab[char] for char in sub_word)
    return np.asarray(ids, dtype=np.int64)


def manifest_paths(corpus_dir: str | Path) -> list[Path]:
    """``corpus_dir/manifest.jsonl`` if present, else the manifests of its sub-folders (``train/``, ``real/``...)."""
    corpus_dir = Path(corpus_dir)
    if (corpus_dir / "manifest.jsonl").is_file():
        return [corpus_dir / "manifest.jsonl"]
    paths = sorted(corpus_dir.glob("*/manifest.jsonl"))
    if not paths:
        raise InputError(f"no manifest.jsonl in {corpus_dir} or its sub-folders")
    return paths


def read_manifest(corpus_dir: str | Path) -> list[dict]:
    """The entries of every manifest of the corpus, each with an absolute ``wav`` path."""
    entries = []
    for manifest in manifest_paths(corpus_dir):
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            wav = Path(entry.get("wav") or entry.get("audio") or f"{entry['id']}.wav")
            entry["wav"] = str(wav if wav.is_absolute() else manifest.parent / wav)
            entries.append(entry)
    return entries


def load_utterances(entries: list[dict], max_duration_s: float = 20.0) -> list[TrainingUtterance]:
    """Read the audio of ``entries`` into memory; skip utterances longer than ``max_duration_s``."""
    import soundfile

    from sgpa.audio import resample

    vocab = character_vocabulary()
    utterances = []
    for entry in entries:
        samples, sample_rate = soundfile.read(entry["wav"], dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
        if sample_rate != SAMPLE_RATE:
            samples = resample(samples, sample_rate, SAMPLE_RATE).astype(np.float32)
        if len(samples) > max_duration_s * SAMPLE_RATE:
            continue
        labels = transcript_to_labels(entry["text"], vocab)
        if len(labels) == 0:
            continue
        meta = {k: v for k, v in entry.items() if k not in ("id", "text", "wav", "split")}
        utterances.append(TrainingUtterance(entry["id"], entry["text"], samples, labels, entry.get("split", "train"), meta))
    return utterances


def precompute_features(utterances: list[TrainingUtterance], feature_extractor) -> None:
    """Fill ``features`` of every utterance once, so that training epochs skip the front end."""
    for utt in utterances:
        out = feature_extractor(utt.samples, sampling_rate=SAMPLE_RATE, return_tensors="np")
        utt.features = out["input_features"][0].astype(np.float32)


def duration_batches(
    durations_s: np.ndarray, max_batch_s: float, rng: np.random.Generator, bucket_size: int = 64
) -> list[np.ndarray]:
    """Shuffle utterance indices into batches whose padded length stays under ``max_batch_s`` seconds.

    Indices are shuffled, then sorted by duration inside buckets of ``bucket_size`` so that a batch holds
    utterances of similar length (little padding) while the epoch order stays random.

    Returns
    -------
    list of np.ndarray of int
        Each array indexes ``durations_s``; every index appears exactly once.
    """
    order = rng.permutation(len(durations_s))
    batches: list[np.ndarray] = []
    for start in range(0, len(order), bucket_size):
        bucket = order[start : start + bucket_size]
        bucket = bucket[np.argsort(durations_s[bucket], kind="stable")]
        current: list[int] = []
        for index in bucket:
            longest = max([durations_s[i] for i in current] + [durations_s[index]])
            if current and longest * (len(current) + 1) > max_batch_s:
                batches.append(np.asarray(current))
                current = []
            current.append(int(index))
        if current:
            batches.append(np.asarray(current))
    return [batches[i] for i in rng.permutation(len(batches))]


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``samples`` plus white Gaussian noise at ``snr_db`` decibels below the signal's mean power."""
    power = float(np.mean(samples**2)) + 1e-12
    noise = rng.standard_normal(len(samples)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return samples + noise


def collate(utterances: list[TrainingUtterance], processor, augment_rng: np.random.Generator | None = None) -> dict:
    """Pad a list of utterances into model inputs.

    Returns
    -------
    dict
        ``input_values`` (batch, max_samples) float32 for raw-waveform models, or ``input_features``
        (batch, max_frames, n_features) when the utterances carry precomputed features; ``attention_mask`` over
        the same time axis; ``labels`` (batch, max_labels) int64 padded with -100 (ignored by the CTC loss).
    """
    import torch

    max_labels = max(len(utt.labels) for utt in utterances)
    labels = torch.full((len(utterances), max_labels), -100, dtype=torch.long)
    for row, utt in enumerate(utterances):
        labels[row, : len(utt.labels)] = torch.from_numpy(utt.labels)
    if utterances[0].features is not None:
        max_frames = max(len(utt.features) for utt in utterances)
        features = torch.zeros((len(utterances), max_frames, utterances[0].features.shape[1]))
        mask = torch.zeros((len(utterances), max_frames), dtype=torch.long)
        for row, utt in enumerate(utterances):
            features[row, : len(utt.features)] = torch.from_numpy(utt.features)
            mask[row, : len(utt.features)] = 1
        return {"input_features": features, "attention_mask": mask, "labels": labels}

    waveforms = []
    for utt in utterances:
        samples = utt.samples
        if augment_rng is not None and augment_rng.random() < 0.3:
            samples = add_noise(samples, float(augment_rng.uniform(10.0, 40.0)), augment_rng)
        waveforms.append(samples)
    features = processor.feature_extractor(
        waveforms, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
    )
    return {"input_values": features["input_values"], "attention_mask": features["attention_mask"], "labels": labels}
