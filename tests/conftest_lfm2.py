"""Fixtures for the explain tests: tiny real models saved to and loaded from temporary folders, and
segmentations with known word times (the tiny CTC model is ``tiny_ctc_model_dir`` in conftest.py). Import the fixtures you use into a test module
(``from conftest_lfm2 import tiny_lfm2_dir``); nothing here touches the network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from sgpa.segmentation import (
    AudioInfo,
    ContextSpan,
    ModelInfo,
    Quality,
    Segmentation,
    TokenGrid,
    TranscriptInfo,
    WordSegment,
)


@pytest.fixture(scope="session")
def tiny_lfm2_dir(tmp_path_factory) -> Path:
    """A 2.8 M-parameter LFM2-Audio checkpoint (random weights) built from liquid-audio's config classes."""
    import torch

    from sgpa.attribution.models.lfm2_tiny import save_random_lfm2_audio

    torch.set_num_threads(1)
    return save_random_lfm2_audio(tmp_path_factory.mktemp("tiny-lfm2-audio"), seed=0)


def make_segmentation(
    word_times: list[tuple[str, float, float]],
    duration_s: float,
    *,
    token_duration_s: float = 0.08,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Segmentation:
    """A Segmentation with the given word times, mapped to a grid by token-centre ownership (context = -1)."""
    n_tokens = int(np.ceil(duration_s / token_duration_s - 1e-9))
    centres = (np.arange(n_tokens) + 0.5) * token_duration_s
    owner = np.full(n_tokens, -1)
    words = []
    for i, (text, start, end) in enumerate(word_times):
        inside = np.flatnonzero((centres >= start) & (centres < end))
        owner[inside] = i
        words.append(
            WordSegment(
                index=i, text=text, normalized=text.lower(), start=start, end=end, ctc_start=start, ctc_end=end,
                start_refined=True, end_refined=True, confidence=1.0,
                token_start=int(inside[0]) if len(inside) else 0,
                token_end=int(inside[-1]) + 1 if len(inside) else 0,
            )
        )
    sha = hashlib.sha256(np.asarray(audio, dtype=np.float32).tobytes()).hexdigest() if audio is not None else "0" * 64
    context = []
    if word_times and word_times[0][1] > 0:
        context.append(ContextSpan("leading", 0.0, word_times[0][1]))
    if word_times and word_times[-1][2] < duration_s:
        context.append(ContextSpan("trailing", word_times[-1][2], duration_s))
    return Segmentation(
        audio=AudioInfo("test.wav", sha, sample_rate, duration_s, sample_rate, 1),
        transcript=TranscriptInfo(" ".join(w for w, _, _ in word_times), " ".join(w.lower() for w, _, _ in word_times)),
        model=ModelInfo("test", None, 0.02),
        parameters={},
        words=words,
        context=context,
        grid=TokenGrid("lfm2-audio" if token_duration_s == 0.08 else "test", token_duration_s, 0.0, n_tokens,
                       owner.tolist(), 0),
        quality=Quality(max(0, len(words) - 1), 0.0, 1.0, 1.0, 0, 0),
    )


def speechlike_audio(duration_s: float, seed: int = 0, sample_rate: int = 16000) -> np.ndarray:
    """Noise bursts with a pitch-like carrier: enough structure for a random model to react to masking."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    signal = envelope * (0.3 * np.sin(2 * np.pi * 140 * t) + 0.1 * rng.standard_normal(len(t)))
    return signal.astype(np.float32)
