"""Augmentations keep word times exact: a speed change scales them, nothing else moves them."""

from __future__ import annotations

import numpy as np
import pytest

from sgpa.corpus import augment
from sgpa.corpus.utterance import TimedPhone, TimedWord, Utterance

RATE = 16000


def _bursts_utterance(seed: int = 0, tone_hz: float = 220.0) -> Utterance:
    """Three tone bursts (the "words") separated by exact silences: 0.2-0.5, 0.8-1.0, 1.3-1.7 s."""
    rng = np.random.default_rng(seed)
    samples = np.zeros(2 * RATE, dtype=np.float32)
    spans = [(0.2, 0.5), (0.8, 1.0), (1.3, 1.7)]
    for start, end in spans:
        n = int((end - start) * RATE)
        tone = np.sin(2 * np.pi * tone_hz * np.arange(n) / RATE)
        samples[int(start * RATE) : int(start * RATE) + n] = 0.3 * tone + 0.05 * rng.standard_normal(n)
    words = [TimedWord(w, a, b) for w, (a, b) in zip(["one", "two", "three"], spans)]
    phones = [TimedPhone("x", a, b) for a, b in spans]
    return Utterance("one two three", samples, RATE, words, phones, "test", "bursts")


def _onsets_s(samples: np.ndarray, threshold: float = 0.02) -> list[float]:
    """Times where the 5 ms envelope rises above ``threshold`` after silence."""
    hop = RATE // 200
    envelope = np.array([np.max(np.abs(samples[i : i + hop])) for i in range(0, len(samples) - hop, hop)])
    loud = envelope > threshold
    return [i * hop / RATE for i in range(1, len(loud)) if loud[i] and not loud[i - 1]]


def test_speed_divides_times_and_length_by_the_factor():
    utt = _bursts_utterance()
    fast = augment.change_speed(utt, 1.1)
    assert fast.augmentations == [{"type": "speed", "factor": 1.1}]
    assert abs(len(fast.samples) - len(utt.samples) / 1.1) <= 1
    for before, after in zip(utt.words, fast.words):
        assert after.start == pytest.approx(before.start / 1.1, abs=1e-9)
        assert after.end == pytest.approx(before.end / 1.1, abs=1e-9)
    assert fast.phones[1].start == pytest.approx(0.8 / 1.1)
    # The bursts really moved there in the waveform.
    assert np.allclose(_onsets_s(fast.samples), [w.start for w in fast.words], atol=0.006)
    slow = augment.change_speed(utt, 0.9)
    assert slow.words[2].end == pytest.approx(1.7 / 0.9)
    assert np.allclose(_onsets_s(slow.samples), [w.start for w in slow.words], atol=0.006)


@pytest.mark.parametrize("kind", ["white", "babble"])
@pytest.mark.parametrize("target_db", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_requested_snr_and_times_stay(kind, target_db):
    utt = _bursts_utterance()
    rng = np.random.default_rng(1)
    if kind == "white":
        noisy = augment.add_white_noise(utt, target_db, rng)
    else:
        talkers = [_bursts_utterance(seed, hz).samples[::-1].copy() for seed, hz in ((2, 330), (3, 470), (4, 610))]
        noisy = augment.add_babble(utt, target_db, talkers, rng)
    # Undo the anti-clipping scale (if any) before measuring.
    scale = np.dot(noisy.samples, utt.samples) / np.dot(utt.samples, utt.samples)
    noise = noisy.samples / scale - utt.samples
    assert augment.snr_db(utt.samples, noise) == pytest.approx(target_db, abs=0.5)
    assert noisy.words == utt.words and len(noisy.samples) == len(utt.samples)
    assert noisy.augmentations[-1]["snr_db"] == target_db


def test_reverb_keeps_length_and_onsets_and_adds_a_tail():
    utt = _bursts_utterance()
    wet = augment.add_reverb(utt, 0.5, np.random.default_rng(0))
    assert len(wet.samples) == len(utt.samples) and wet.words == utt.words
    for word in utt.words:
        before = wet.samples[int((word.start - 0.01) * RATE) : int((word.start - 0.002) * RATE)]
        after = wet.samples[int(word.start * RATE) : int((word.start + 0.01) * RATE)]
        assert np.max(np.abs(before)) < 0.1 * np.max(np.abs(after))
    # Energy now spills into the silence after the first word, decaying.
    gap = slice(int(0.52 * RATE), int(0.78 * RATE))
    assert np.max(np.abs(utt.samples[gap])) == 0.0
    assert np.max(np.abs(wet.samples[gap])) > 0.005


def test_synthetic_rir_direct_path_is_at_lag_zero():
    rir = augment.synthetic_rir(0.4, RATE, np.random.default_rng(0))
    assert rir[0] == 1.0 and np.argmax(np.abs(rir)) == 0
    assert np.all(rir[1 : int(0.002 * RATE)] == 0.0)


def test_gain_scales_and_never_clips():
    utt = _bursts_utterance()
    quieter = augment.apply_gain(utt, -6.0)
    assert np.allclose(quieter.samples, utt.samples * 10 ** (-6 / 20), atol=1e-6)
    louder = augment.apply_gain(utt, 20.0)
    assert np.max(np.abs(louder.samples)) <= 0.99 + 1e-6
    assert louder.augmentations[-1]["gain_db"] < 20.0  # what was really applied is recorded


def test_pitch_shift_keeps_length_and_times():
    utt = _bursts_utterance()
    shifted = augment.shift_pitch(utt, 2.0)
    assert len(shifted.samples) == len(utt.samples) and shifted.words == utt.words
    spectrum = np.abs(np.fft.rfft(shifted.samples[int(0.25 * RATE) : int(0.45 * RATE)]))
    peak_hz = np.argmax(spectrum) * RATE / (0.2 * RATE)
    assert peak_hz == pytest.approx(220 * 2 ** (2 / 12), rel=0.03)


def test_random_chain_is_deterministic_and_always_records_something():
    utt = _bursts_utterance()
    talkers = [_bursts_utterance(seed).samples for seed in (5, 6, 7)]
    for seed in range(6):
        a = augment.random_chain(utt, np.random.default_rng(seed), talkers)
        b = augment.random_chain(utt, np.random.default_rng(seed), talkers)
        assert a.augmentations and a.augmentations == b.augmentations
        assert np.array_equal(a.samples, b.samples)
        speed = [x["factor"] for x in a.augmentations if x["type"] == "speed"]
        factor = speed[0] if speed else 1.0
        assert a.words[2].end == pytest.approx(1.7 / factor)


def _vowel(f0_hz: float = 110.0, formants_hz=(700.0, 1200.0, 2600.0), duration_s: float = 1.0) -> np.ndarray:
    """A synthetic sustained vowel: a glottal pulse train at ``f0_hz`` through one resonator per formant."""
    from scipy.signal import lfilter

    n = int(duration_s * RATE)
    source = np.zeros(n)
    source[np.arange(0, n, RATE / f0_hz).astype(int)] = 1.0
    radius = np.exp(-np.pi * 80.0 / RATE)  # 80 Hz bandwidth
    for formant in formants_hz:
        theta = 2 * np.pi * formant / RATE
        source = lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], source)
    return (0.3 * source / np.max(np.abs(source))).astype(np.float32)


def _formants_hz(samples: np.ndarray, n: int = 3) -> np.ndarray:
    """The first ``n`` spectral-envelope peaks of the middle half second (LPC of order 12)."""
    import librosa
    from scipy.signal import find_peaks, freqz

    middle = samples[RATE // 4 : 3 * RATE // 4].astype(np.float64)
    coefficients = librosa.lpc(middle * np.hanning(len(middle)), order=12)
    frequencies, response = freqz(1, coefficients, worN=4096, fs=RATE)
    return frequencies[find_peaks(np.abs(response))[0][:n]]


def _median_f0_hz(samples: np.ndarray) -> float:
    import librosa

    return float(np.median(librosa.yin(samples.astype(np.float64), fmin=60, fmax=500, sr=RATE)))


@pytest.mark.parametrize(("ratio", "median_hz"), [(1.2, 220.0), (1.1, 110.0), (0.9, 90.0)])
def test_voice_change_moves_pitch_and_formants_independently_and_keeps_times(ratio, median_hz):
    samples = _vowel(110.0)
    utt = Utterance("a", samples, RATE, [TimedWord("a", 0.0, 1.0)], [], "test", "vowel")
    changed = augment.change_voice(utt, ratio, median_hz)
    assert len(changed.samples) == len(samples) and changed.words == utt.words
    assert changed.augmentations == [
        {"type": "voice", "formant_ratio": ratio, "pitch_median_hz": median_hz, "pitch_range_factor": 1.0}]
    assert _median_f0_hz(changed.samples) == pytest.approx(median_hz, rel=0.03)
    assert _formants_hz(changed.samples) / _formants_hz(samples) == pytest.approx([ratio] * 3, rel=0.04)


def test_voice_change_keeps_word_onsets():
    utt = _bursts_utterance(tone_hz=150.0)
    changed = augment.change_voice(utt, 1.15, 210.0)
    assert np.allclose(_onsets_s(changed.samples), _onsets_s(utt.samples), atol=0.011)


def test_random_voice_draws_female_and_male_targets_deterministically():
    utt = _bursts_utterance(tone_hz=150.0)
    records = [augment.random_voice(utt, np.random.default_rng(seed)).augmentations[0] for seed in range(20)]
    assert records[3] == augment.random_voice(utt, np.random.default_rng(3)).augmentations[0]
    female = [r for r in records if r["formant_ratio"] >= 1.08]
    assert 8 <= len(female) <= 19  # 70 % expected
    assert all(165 <= r["pitch_median_hz"] <= 255 for r in female)
    assert all(85 <= r["pitch_median_hz"] <= 150 for r in records if r not in female)
