"""Plain data for one synthesised or recorded utterance with known word (and phone) times."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sgpa.audio import resample

#: Every corpus waveform is written at this rate.
SAMPLE_RATE_16K = 16000


@dataclass(frozen=True)
class TimedWord:
    """A transcript word and the span of the waveform that speaks it, in seconds."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class TimedPhone:
    """A phone label (the engine's own phone set) and its span in seconds."""

    phone: str
    start: float
    end: float


@dataclass
class Utterance:
    """A waveform with its transcript and exact word / phone times.

    Attributes
    ----------
    text : str
        The transcript; ``text.split()`` matches ``words`` one-to-one and in order.
    samples : np.ndarray, shape (n_samples,), float32 in [-1, 1]
        Mono waveform.
    sample_rate : int
        Samples per second of ``samples``.
    words, phones : list
        Times in seconds relative to the first sample. Pauses are not phones.
    engine, voice : str
        Who produced the speech (``"festival"``, ``"flite"``, ``"espeak"``, ``"asterisk"``, ...).
    augmentations : list of dict
        What was applied after synthesis, in order, with its parameters.
    """

    text: str
    samples: np.ndarray
    sample_rate: int
    words: list[TimedWord]
    phones: list[TimedPhone] = field(default_factory=list)
    engine: str = ""
    voice: str = ""
    augmentations: list[dict] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load_16k(path: str | Path) -> np.ndarray:
    """A wav file as mono float32 at 16 kHz, clipped to [-1, 1], shape ``[n_samples]``."""
    import soundfile

    samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    samples = resample(samples.mean(axis=1), rate, SAMPLE_RATE_16K)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)
