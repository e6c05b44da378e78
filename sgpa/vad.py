"""Where the speech is: the speech detector behind stage 1's speech gate and stage 3's pauses.

Two detectors, one interface (:func:`quiet_frames`): ``"energy"`` — frames whose RMS is below 5 % of the
utterance's 95th-percentile RMS (cheap; fooled by breaths, clicks and room noise) — and ``"silero"`` — Silero VAD,
a small neural voice-activity detector whose wheel ships its model (runs offline; about 40 ms per second of audio
on 2 CPU cores).
"""

from __future__ import annotations

import functools

import numpy as np

from sgpa.audio import frame_rms
from sgpa.errors import InputError

SPEECH_DETECTORS = ("energy", "silero")
ENERGY_THRESHOLD_RATIO = 0.05
#: Hop and window of the detector's frames (the speech gate's, the pauses' and stage 2's energy frames).
FRAME_HOP_S = 0.005
FRAME_WINDOW_S = 0.02


@functools.lru_cache(maxsize=1)
def _silero_model():
    from silero_vad import load_silero_vad

    return load_silero_vad()


def silero_speech_s(waveform: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
    """Speech regions ``[(start_s, end_s), ...]`` found by Silero VAD (its defaults; 16 kHz mono input)."""
    import torch
    from silero_vad import get_speech_timestamps

    if sample_rate != 16000:
        raise InputError(f"the silero speech detector needs 16 kHz audio, got {sample_rate} Hz")
    with torch.no_grad():
        stamps = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)),
                                       _silero_model(), sampling_rate=sample_rate, return_seconds=False)
    return [(stamp["start"] / sample_rate, stamp["end"] / sample_rate) for stamp in stamps]


def quiet_frames(
    waveform: np.ndarray,
    sample_rate: int,
    detector: str = "energy",
    hop_s: float = FRAME_HOP_S,
    window_s: float = FRAME_WINDOW_S,
    threshold_ratio: float = ENERGY_THRESHOLD_RATIO,
    rms: np.ndarray | None = None,
) -> np.ndarray:
    """bool ``[1 + n_samples // hop]``: the frames (centred every ``hop_s``) that hold no speech — for ``"energy"``,
    RMS below ``threshold_ratio`` times the utterance's 95th-percentile RMS.

    ``rms``: the frames' RMS (:func:`sgpa.audio.frame_rms` at this hop and window) when the caller has it already.
    """
    hop_length = max(1, round(hop_s * sample_rate))
    if detector == "energy":
        if rms is None:
            rms = frame_rms(waveform, max(hop_length, round(window_s * sample_rate)), hop_length)
        return rms < threshold_ratio * np.percentile(rms, 95)
    if detector == "silero":
        centres_s = np.arange(1 + len(waveform) // hop_length) * hop_length / sample_rate
        quiet = np.ones(centres_s.size, dtype=bool)
        for start, end in silero_speech_s(waveform, sample_rate):
            quiet[(centres_s >= start) & (centres_s < end)] = False
        return quiet
    raise InputError(f"unknown speech detector {detector!r}; choose one of {', '.join(SPEECH_DETECTORS)}")
