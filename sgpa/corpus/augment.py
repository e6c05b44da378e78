"""Augmentations that keep word and phone times exact.

Every function takes an :class:`Utterance` and returns a new one with the change appended to
``augmentations``. Only a speed change moves time: it resamples the waveform so that it lasts
``1 / factor`` as long and divides every time by ``factor``. Pitch shift keeps the length;
noise, reverberation and gain are added or applied in place without delay (a synthetic room
impulse response starts with its direct path at lag 0), so they leave times untouched; so does a voice
conversion (PSOLA resynthesis at the same duration).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from sgpa.corpus.utterance import TimedPhone, TimedWord, Utterance

_PEAK = 0.99


def _with(utt: Utterance, samples: np.ndarray, record: dict, time_scale: float = 1.0) -> Utterance:
    words, phones = utt.words, utt.phones
    if time_scale != 1.0:
        words = [TimedWord(w.text, w.start * time_scale, w.end * time_scale) for w in words]
        phones = [TimedPhone(p.phone, p.start * time_scale, p.end * time_scale) for p in phones]
    return dataclasses.replace(
        utt,
        samples=samples.astype(np.float32),
        words=words,
        phones=phones,
        augmentations=[*utt.augmentations, record],
    )


def _limit_peak(samples: np.ndarray) -> np.ndarray:
    """Scale the whole signal down if it would clip (scaling keeps any SNR unchanged)."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    return samples * (_PEAK / peak) if peak > _PEAK else samples


def power(samples: np.ndarray) -> float:
    """Mean square of a signal."""
    return float(np.mean(np.square(samples, dtype=np.float64)))


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB, both powers taken over the whole utterance."""
    return 10.0 * np.log10(power(clean) / power(noise))


def change_speed(utt: Utterance, factor: float) -> Utterance:
    """Play ``factor`` times faster (pitch rises with it, like tape); times are divided by ``factor``.

    ``factor`` is rounded to a ratio with denominator at most 100 (1.1 -> 11/10), and the times are
    scaled by that exact ratio.
    """
    from scipy.signal import resample_poly

    ratio = Fraction(factor).limit_denominator(100)
    # Resampling to rate / factor and playing at the original rate shortens by 1/factor.
    samples = resample_poly(utt.samples, ratio.denominator, ratio.numerator)
    return _with(utt, samples, {"type": "speed", "factor": float(ratio)}, time_scale=1.0 / float(ratio))


def shift_pitch(utt: Utterance, semitones: float) -> Utterance:
    """Raise (or lower) pitch by ``semitones`` with the length, and so the times, unchanged."""
    import warnings

    import librosa

    with warnings.catch_warnings():
        # librosa's own pitch_shift passes arguments its phase vocoder deprecates, and its numba
        # phasor warns about a cast although the output is finite (checked below).
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        samples = librosa.effects.pitch_shift(utt.samples, sr=utt.sample_rate, n_steps=semitones)
    if not np.all(np.isfinite(samples)):
        raise FloatingPointError("pitch shift produced non-finite samples")
    return _with(utt, _limit_peak(samples), {"type": "pitch", "semitones": float(semitones)})


def change_voice(utt: Utterance, formant_ratio: float, pitch_median_hz: float, pitch_range_factor: float = 1.0) -> Utterance:
    """Another apparent speaker: formants scaled by ``formant_ratio``, the pitch contour moved to a median of
    ``pitch_median_hz`` and its range scaled by ``pitch_range_factor``; length and times unchanged.

    Praat's "Change gender" (PSOLA resynthesis, through parselmouth): a male voice with ``formant_ratio`` ~1.1-1.2
    and a median of ~200 Hz sounds like a woman's. Unlike a pitch shift by resampling (:func:`shift_pitch`), the
    pitch and the formants move independently, as they do between speakers.
    """
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(utt.samples.astype(np.float64), sampling_frequency=utt.sample_rate)
    # pitch floor/ceiling 75-600 Hz: Praat's range for adult speech; duration factor 1 keeps every time
    converted = call(sound, "Change gender", 75.0, 600.0, float(formant_ratio), float(pitch_median_hz),
                     float(pitch_range_factor), 1.0)
    samples = np.asarray(converted.values[0])
    if len(samples) != len(utt.samples):  # resynthesis may round the last frame; times stay exact either way
        samples = np.resize(samples, len(utt.samples)) if len(samples) > len(utt.samples) else np.pad(
            samples, (0, len(utt.samples) - len(samples)))
    if not np.all(np.isfinite(samples)):
        raise FloatingPointError("voice conversion produced non-finite samples")
    record = {"type": "voice", "formant_ratio": float(formant_ratio), "pitch_median_hz": float(pitch_median_hz),
              "pitch_range_factor": float(pitch_range_factor)}
    return _with(utt, _limit_peak(samples), record)


def random_voice(utt: Utterance, rng: np.random.Generator, female_share: float = 0.7) -> Utterance:
    """:func:`change_voice` towards a random speaker: with probability ``female_share`` a typical adult female
    voice (formants x1.08-1.25, pitch median 165-255 Hz), else another male one (formants x0.92-1.05, median
    85-150 Hz); pitch range x0.7-1.5. The ranges are textbook adult values (female F0 ~165-255 Hz, male ~85-150 Hz;
    female formants ~10-20 % above male), not fitted to any evaluation voice.
    """
    if rng.random() < female_share:
        ratio, median = rng.uniform(1.08, 1.25), rng.uniform(165.0, 255.0)
    else:
        ratio, median = rng.uniform(0.92, 1.05), rng.uniform(85.0, 150.0)
    return change_voice(utt, round(float(ratio), 3), round(float(median), 1), round(float(rng.uniform(0.7, 1.5)), 2))


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, target_snr_db: float) -> np.ndarray:
    """``clean + k * noise`` with ``k`` chosen so that the SNR is exactly ``target_snr_db``.

    ``noise`` is tiled or cut to the length of ``clean``.
    """
    noise = np.resize(noise, clean.shape).astype(np.float64)
    scale = np.sqrt(power(clean) / (power(noise) * 10.0 ** (target_snr_db / 10.0)))
    return clean + scale * noise


def add_white_noise(utt: Utterance, target_snr_db: float, rng: np.random.Generator) -> Utterance:
    """Add Gaussian white noise at ``target_snr_db`` (powers over the whole utterance)."""
    noise = rng.standard_normal(len(utt.samples))
    samples = _limit_peak(mix_at_snr(utt.samples, noise, target_snr_db))
    return _with(utt, samples, {"type": "white_noise", "snr_db": float(target_snr_db)})


def make_babble(sources: list[np.ndarray], n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of all ``sources`` (other utterances, same sample rate), each at a random offset and
    equal power, cut or tiled to ``n_samples``."""
    babble = np.zeros(n_samples)
    for source in sources:
        source = np.asarray(source, dtype=np.float64)
        source = np.roll(np.resize(source, n_samples), int(rng.integers(n_samples)))
        babble += source / np.sqrt(max(power(source), 1e-12))
    return babble


def add_babble(
    utt: Utterance, target_snr_db: float, sources: list[np.ndarray], rng: np.random.Generator
) -> Utterance:
    """Add babble made from ``sources`` (other speech) at ``target_snr_db``."""
    babble = make_babble(sources, len(utt.samples), rng)
    samples = _limit_peak(mix_at_snr(utt.samples, babble, target_snr_db))
    return _with(
        utt, samples, {"type": "babble", "snr_db": float(target_snr_db), "n_talkers": len(sources)}
    )


def synthetic_rir(rt60_s: float, sample_rate: int, rng: np.random.Generator, direct_to_reverb_db: float = 6.0) -> np.ndarray:
    """A room impulse response: a unit direct path at lag 0, then exponentially decaying noise.

    The tail starts 2 ms after the direct path and decays by 60 dB in ``rt60_s``; its energy is
    ``direct_to_reverb_db`` below the direct path's.
    """
    n_samples = int(rt60_s * sample_rate)
    t_s = np.arange(n_samples) / sample_rate
    tail = rng.standard_normal(n_samples) * 10.0 ** (-3.0 * t_s / rt60_s)
    tail[: int(0.002 * sample_rate)] = 0.0
    tail *= np.sqrt(10.0 ** (-direct_to_reverb_db / 10.0) / max(np.sum(tail**2), 1e-12))
    tail[0] = 1.0
    return tail


def add_reverb(utt: Utterance, rt60_s: float, rng: np.random.Generator) -> Utterance:
    """Convolve with :func:`synthetic_rir`, keep the original length; times do not move because
    the direct path has zero delay."""
    from scipy.signal import fftconvolve

    rir = synthetic_rir(rt60_s, utt.sample_rate, rng)
    samples = fftconvolve(utt.samples, rir)[: len(utt.samples)]
    return _with(utt, _limit_peak(samples), {"type": "reverb", "rt60_s": float(rt60_s)})


def apply_gain(utt: Utterance, gain_db: float) -> Utterance:
    """Multiply by ``10 ** (gain_db / 20)``, lowered where needed so that nothing clips; the gain
    actually applied is recorded."""
    samples = utt.samples * 10.0 ** (gain_db / 20.0)
    samples = _limit_peak(samples)
    applied_db = 20.0 * np.log10(max(np.max(np.abs(samples)), 1e-12) / max(np.max(np.abs(utt.samples)), 1e-12))
    return _with(utt, samples, {"type": "gain", "gain_db": round(float(applied_db), 3)})


def random_chain(utt: Utterance, rng: np.random.Generator, babble_sources: list[np.ndarray]) -> Utterance:
    """A random mix of augmentations, each drawn with its own probability and parameters.

    Speed (0.9-1.1), pitch (+-2 semitones), reverberation (RT60 0.2-0.7 s), then one noise
    (white 10-30 dB SNR or babble of 3-5 talkers at 5-20 dB), then gain (-12 to +6 dB).
    """
    if rng.random() < 0.5:
        utt = change_speed(utt, round(float(rng.uniform(0.9, 1.1)), 2))
    if rng.random() < 0.3:
        utt = shift_pitch(utt, round(float(rng.uniform(-2.0, 2.0)), 1))
    if rng.random() < 0.3:
        utt = add_reverb(utt, round(float(rng.uniform(0.2, 0.7)), 2), rng)
    noise = rng.random()
    if noise < 0.35:
        utt = add_white_noise(utt, round(float(rng.uniform(10.0, 30.0)), 1), rng)
    elif noise < 0.6 and len(babble_sources) >= 3:
        talkers = int(rng.integers(3, min(5, len(babble_sources)) + 1))
        chosen = rng.choice(len(babble_sources), size=talkers, replace=False)
        utt = add_babble(utt, round(float(rng.uniform(5.0, 20.0)), 1), [babble_sources[i] for i in chosen], rng)
    if rng.random() < 0.5:
        utt = apply_gain(utt, round(float(rng.uniform(-12.0, 6.0)), 1))
    if not utt.augmentations:
        utt = apply_gain(utt, round(float(rng.uniform(-12.0, 0.0)), 1))
    return utt
