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

from sgpa.ctc import label_sequence
from sgpa.errors import InputError
from sgpa.text import normalize_transcript
from sgpa.training.model import SAMPLE_RATE, WORD_DELIMITER, character_vocabulary
from sgpa.training.timed_ctc import label_windows_s, word_edges


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
    label_windows_s : np.ndarray, shape (n_labels, 2), float64, or None
        ``[earliest, latest]`` seconds at which each label may be emitted, already widened by the tolerance of
        the utterance's time reference (see :mod:`sgpa.training.timed_ctc`); None when the corpus has no times.
    """

    id: str
    text: str
    samples: np.ndarray
    labels: np.ndarray
    split: str
    meta: dict = field(default_factory=dict)
    features: np.ndarray | None = None
    label_windows_s: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def spell_transcript(text: str, vocab: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spell ``text`` with the model's characters: label ids, ``|`` between words, and the word of each label.

    Numerals and symbols are expanded to words first ("57" -> FIFTY SEVEN), so a corpus may keep digits.

    Returns
    -------
    label_ids, word_of_label : np.ndarray, shape (n_labels,), int64
        ``word_of_label`` indexes the whitespace-separated words of ``text``; a delimiter between two of them
        has ``-1``, a delimiter inside one (a numeral spelled as several words) that word's index.
    """
    vocab = vocab or character_vocabulary()
    characters = {token for token in vocab if len(token) == 1 and token != WORD_DELIMITER}
    return label_sequence(normalize_transcript(text, characters), vocab, WORD_DELIMITER)


def transcript_to_labels(text: str, vocab: dict[str, int] | None = None) -> np.ndarray:
    """The label ids of :func:`spell_transcript`."""
    return spell_transcript(text, vocab)[0]


def label_windows_for(
    entry: dict, word_of_label: np.ndarray, exact_tolerance_s: float, silver_tolerance_s: float
) -> np.ndarray | None:
    """Widened emission windows of each label from the word/phone times in the JSON next to ``entry['wav']``.

    Times from a forced aligner (``reference`` set, e.g. pocketsphinx) get the wider ``silver_tolerance_s``.
    None when there is no JSON, its words do not match the transcript, or a label window cannot be built.
    """
    sidecar = Path(entry["wav"]).with_suffix(".json")
    if not sidecar.is_file():
        return None
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    words = record.get("words") or []
    if not words or len(words) != len(entry["text"].split()) or len(word_of_label) == 0:
        return None
    # Words without any spelling would leave a delimiter without a neighbour: keep plain CTC there.
    if set(range(len(words))) - set(word_of_label[word_of_label >= 0].tolist()):
        return None
    tolerance_s = silver_tolerance_s if record.get("reference") else exact_tolerance_s
    windows = label_windows_s(word_of_label, word_edges(words, record.get("phones") or []))
    return windows + np.array([-tolerance_s, tolerance_s])


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


def load_utterances(
    entries: list[dict],
    max_duration_s: float = 20.0,
    exact_tolerance_s: float = 0.02,
    silver_tolerance_s: float = 0.05,
) -> list[TrainingUtterance]:
    """Read the audio of ``entries`` into memory; skip utterances longer than ``max_duration_s``.

    Label emission windows (for :func:`sgpa.training.timed_ctc.timed_ctc_loss`) come from the word and phone
    times next to each wav, widened by ``exact_tolerance_s`` (synthesis times) or ``silver_tolerance_s``
    (times from a forced aligner).
    """
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
        labels, word_of_label = spell_transcript(entry["text"], vocab)
        if len(labels) == 0:
            continue
        meta = {k: v for k, v in entry.items() if k not in ("id", "text", "wav", "split")}
        windows = label_windows_for(entry, word_of_label, exact_tolerance_s, silver_tolerance_s)
        split = entry.get("split", "train")
        utterances.append(
            TrainingUtterance(entry["id"], entry["text"], samples, labels, split, meta, label_windows_s=windows)
        )
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


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster by linear interpolation: pitch and formants rise by ``factor``.

    A time ``t`` in the input is at ``t / factor`` in the output. Raising formants this way mimics a shorter
    vocal tract, which is what the (mostly male) training voices lack against female speakers.
    """
    n_out = max(1, int(round(len(samples) / factor)))
    return np.interp(np.arange(n_out) * factor, np.arange(len(samples)), samples).astype(np.float32)


FREE_WINDOW_S = (-1e9, 1e9)  # a label with this window may be emitted at any frame


def collate(
    utterances: list[TrainingUtterance],
    processor,
    augment_rng: np.random.Generator | None = None,
    speed_range: tuple[float, float] | None = None,
    speed_probability: float = 0.5,
) -> dict:
    """Pad a list of utterances into model inputs.

    With ``augment_rng``, 30 % of the waveforms get white noise (10-40 dB SNR) and, when ``speed_range`` is
    given, ``speed_probability`` of them a speed factor drawn uniformly from it (label windows follow).

    Returns
    -------
    dict
        ``input_values`` (batch, max_samples) float32 for raw-waveform models, or ``input_features``
        (batch, max_frames, n_features) when the utterances carry precomputed features; ``attention_mask`` over
        the same time axis; ``labels`` (batch, max_labels) int64 padded with -100 (ignored by the CTC loss);
        ``label_windows_s`` (batch, max_labels, 2) float64, each label's emission window in seconds
        (``FREE_WINDOW_S`` where the corpus gave no times).
    """
    import torch

    max_labels = max(len(utt.labels) for utt in utterances)
    labels = torch.full((len(utterances), max_labels), -100, dtype=torch.long)
    windows = torch.tensor(FREE_WINDOW_S, dtype=torch.float64).repeat(len(utterances), max_labels, 1)
    for row, utt in enumerate(utterances):
        labels[row, : len(utt.labels)] = torch.from_numpy(utt.labels)
        if utt.label_windows_s is not None:
            windows[row, : len(utt.labels)] = torch.from_numpy(utt.label_windows_s)
    if utterances[0].features is not None:
        max_frames = max(len(utt.features) for utt in utterances)
        features = torch.zeros((len(utterances), max_frames, utterances[0].features.shape[1]))
        mask = torch.zeros((len(utterances), max_frames), dtype=torch.long)
        for row, utt in enumerate(utterances):
            features[row, : len(utt.features)] = torch.from_numpy(utt.features)
            mask[row, : len(utt.features)] = 1
        return {"input_features": features, "attention_mask": mask, "labels": labels, "label_windows_s": windows}

    waveforms = []
    for row, utt in enumerate(utterances):
        samples = utt.samples
        if augment_rng is not None and speed_range is not None and augment_rng.random() < speed_probability:
            factor = float(augment_rng.uniform(*speed_range))
            samples = change_speed(samples, factor)
            if utt.label_windows_s is not None:
                windows[row, : len(utt.labels)] /= factor
        if augment_rng is not None and augment_rng.random() < 0.3:
            samples = add_noise(samples, float(augment_rng.uniform(10.0, 40.0)), augment_rng)
        waveforms.append(samples)
    features = processor.feature_extractor(
        waveforms, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
    )
    return {
        "input_values": features["input_values"],
        "attention_mask": features["attention_mask"],
        "labels": labels,
        "label_windows_s": windows,
    }
