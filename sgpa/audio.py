"""Reading and validating audio: any file soundfile reads, any rate and channel count, to mono float32.

Every way an audio input can be unusable (unreadable, empty, silent, non-finite, too long) becomes an
:class:`~sgpa.errors.InputError` with a message that names the file and the problem.
"""

from __future__ import annotations

import hashlib
from math import gcd
from pathlib import Path

import numpy as np

from sgpa.errors import InputError
from sgpa.segmentation import AudioInfo

#: Peak amplitude (full scale = 1.0) below which a recording counts as silence only: -60 dBFS.
SILENCE_PEAK = 1e-3
#: Longest audio accepted by default, in seconds. Alignment memory is linear in the duration, but
#: an hour-long file is almost always a mistake (or wants splitting into utterances first).
MAX_DURATION_S = 1200.0
#: Shortest audio accepted, in seconds: below this no word fits, and the acoustic models' convolutions (a 25 ms
#: receptive field for wav2vec2, 9 mel frames for LFM2-Audio's conformer) fail on it.
MIN_DURATION_S = 0.1


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes, so a segmentation can be matched to the exact audio it describes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def downmix(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``samples`` (shape ``[n_samples, n_channels]``) into ``[n_samples]``."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1)


def resample(waveform: np.ndarray, orig_sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Polyphase resampling of a mono waveform (shape ``[n_samples]``) between integer rates."""
    if orig_sample_rate == target_sample_rate:
        return waveform
    from scipy.signal import resample_poly

    divisor = gcd(orig_sample_rate, target_sample_rate)
    up, down = target_sample_rate // divisor, orig_sample_rate // divisor
    return resample_poly(waveform, up, down).astype(np.float32)


def validate_waveform(
    waveform: np.ndarray, sample_rate: int, name: str = "audio", max_duration_s: float | None = MAX_DURATION_S
) -> None:
    """Raise :class:`InputError` unless ``waveform`` (``[n_samples]``) is usable speech input.

    Checks, in order: one channel, not empty, finite samples, not shorter than :data:`MIN_DURATION_S`, not longer
    than ``max_duration_s``, and not silence only (peak below :data:`SILENCE_PEAK` once any DC offset is removed:
    a constant offset is not sound).
    """
    if waveform.ndim != 1:
        raise InputError(f"{name}: expected a mono waveform of shape [n_samples], got shape {waveform.shape}")
    if waveform.size == 0:
        raise InputError(f"{name}: the audio is empty (0 samples)")
    if not np.all(np.isfinite(waveform)):
        n_bad = int(np.count_nonzero(~np.isfinite(waveform)))
        raise InputError(f"{name}: the audio has {n_bad} NaN or infinite samples")
    duration_s = waveform.size / sample_rate
    if duration_s < MIN_DURATION_S:
        raise InputError(
            f"{name}: the audio is {duration_s * 1000:.0f} ms long, shorter than {MIN_DURATION_S * 1000:.0f} ms: "
            "too short to hold a word"
        )
    if max_duration_s is not None and duration_s > max_duration_s:
        raise InputError(
            f"{name}: the audio is {duration_s:.0f} s long, more than the limit of {max_duration_s:.0f} s; "
            "split it into utterances or raise the limit"
        )
    peak = float(np.max(np.abs(waveform - np.mean(waveform, dtype=np.float64))))
    if peak < SILENCE_PEAK:
        raise InputError(f"{name}: the audio is silence only (peak amplitude {peak:.1e} is below -60 dBFS)")


def load_audio(
    path: str | Path, sample_rate: int = 16000, max_duration_s: float | None = MAX_DURATION_S
) -> tuple[np.ndarray, AudioInfo]:
    """Read an audio file as a mono float32 waveform at ``sample_rate`` Hz.

    Parameters
    ----------
    path
        Any format libsndfile reads (wav, flac, ogg, mp3, ...).
    sample_rate
        Target rate in Hz; the file is resampled to it when it differs.
    max_duration_s
        Longest accepted duration in seconds (``None``: no limit).

    Returns
    -------
    waveform : np.ndarray, float32, shape ``[n_samples]``
        Channels averaged, resampled to ``sample_rate``.
    info : AudioInfo
        Path, SHA-256 of the file, rate and duration after resampling, original rate and channels.

    Raises
    ------
    InputError
        The file is missing, unreadable or corrupt, empty, silent, has NaN/inf samples, or is too long.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    try:
        samples, original_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile reports corrupt and unknown formats in many ways
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InputError(f"{path}: cannot read audio ({reason})") from None
    n_channels = samples.shape[1]
    waveform = downmix(samples)
    # Validate before resampling: resampling NaNs or an empty array would fail less clearly.
    validate_waveform(waveform, original_rate, name=str(path), max_duration_s=max_duration_s)
    waveform = np.ascontiguousarray(resample(waveform, original_rate, sample_rate), dtype=np.float32)
    info = AudioInfo(
        path=str(path),
        sha256=file_sha256(path),
        sample_rate=sample_rate,
        duration_s=waveform.size / sample_rate,
        original_sample_rate=int(original_rate),
        original_channels=int(n_channels),
    )
    return waveform, info


def frame_signal(
    waveform: np.ndarray, frame_length: int, hop_length: int, center: bool = True, dtype: type = np.float64
) -> np.ndarray:
    """Frames of a waveform, ``[n_frames, frame_length]``, ``hop_length`` samples apart.

    ``center=True``: frame ``k`` is centred on sample ``k * hop_length`` (zero-padded at both ends), and
    ``n_frames = 1 + n_samples // hop_length``, as librosa's centred frames. ``center=False``: frame ``k`` starts at
    sample ``k * hop_length`` and only whole frames are kept; audio shorter than one frame is one (shorter) frame.
    ``dtype``: of the frames (float32 halves the memory traffic of the spectral features).
    """
    waveform = np.asarray(waveform, dtype=dtype)
    if not center:
        if waveform.size < frame_length:
            return waveform[None]
        return np.lib.stride_tricks.sliding_window_view(waveform, frame_length)[::hop_length]
    half = frame_length // 2
    padded = np.pad(waveform, (half, half + hop_length))
    n_frames = 1 + waveform.size // hop_length
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length][:n_frames]


#: Frames processed at a time by the frame-wise features, so that minutes of audio never materialise every frame
#: at once (15 min at a 5 ms hop would be 180,000 frames x 320 samples x 8 bytes = 460 MB per intermediate).
FRAME_BLOCK = 8192


def frame_rms(waveform: np.ndarray, frame_length: int, hop_length: int, center: bool = True) -> np.ndarray:
    """Root-mean-square amplitude of each frame of :func:`frame_signal`, shape ``[n_frames]`` (0 for empty audio)."""
    if np.size(waveform) == 0:
        return np.zeros(1)
    if center and frame_length % hop_length == 0:
        return _centred_rms_from_hops(np.asarray(waveform), frame_length, hop_length)
    frames = frame_signal(waveform, frame_length, hop_length, center)  # a strided view: no copy yet
    return np.concatenate([np.sqrt(np.mean(np.square(frames[start : start + FRAME_BLOCK]), axis=1))
                           for start in range(0, len(frames), FRAME_BLOCK)])


def _centred_rms_from_hops(waveform: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """:func:`frame_rms` of centred frames whose length is a whole number ``k`` of hops: each sample is squared once
    (per hop-long block), and a frame's energy is the sum of its ``k`` blocks — a quarter of the work of squaring
    every frame at the default 20 ms window and 5 ms hop. The ``k`` blocks are added directly, not as differences of
    a running sum, which would lose a silent frame's energy next to loud ones to rounding."""
    half = frame_length // 2
    padded = np.pad(waveform, (half, half + hop_length))
    n_frames = 1 + waveform.size // hop_length
    per_frame = frame_length // hop_length
    n_blocks = n_frames + per_frame - 1
    energies = np.empty(n_blocks)
    for start in range(0, n_blocks, FRAME_BLOCK):
        stop = min(start + FRAME_BLOCK, n_blocks)
        blocks = padded[start * hop_length : stop * hop_length].reshape(-1, hop_length).astype(np.float64)
        energies[start:stop] = np.einsum("ij,ij->i", blocks, blocks)
    frame_energy = sum(energies[offset : offset + n_frames] for offset in range(per_frame))
    return np.sqrt(frame_energy / frame_length)


def waveform_info(waveform: np.ndarray, sample_rate: int, name: str = "<array>") -> AudioInfo:
    """An :class:`AudioInfo` for an in-memory waveform; its sha256 hashes the float32 samples."""
    digest = hashlib.sha256(np.ascontiguousarray(waveform, dtype=np.float32).tobytes()).hexdigest()
    return AudioInfo(
        path=name,
        sha256=digest,
        sample_rate=sample_rate,
        duration_s=waveform.size / sample_rate,
        original_sample_rate=sample_rate,
        original_channels=1,
    )
