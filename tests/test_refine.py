"""sgpa.refine: cuts must land in planted silent gaps, and fall back where there is no dip."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tone
from sgpa.audio import frame_rms
from sgpa.refine import (
    RefinementParameters,
    acoustic_features,
    refine_boundaries,
    spectral_flux,
)

RATE = 16000


def words_with_gaps(word_spans_s: list[tuple[float, float]], duration_s: float, seed: int = 0) -> np.ndarray:
    """Harmonic tone bursts at ``word_spans_s`` over a -70 dB noise floor: words with planted silent gaps."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(scale=3e-4, size=int(duration_s * RATE)).astype(np.float32)
    for number, (start, end) in enumerate(word_spans_s):
        burst = tone(end - start, frequency_hz=150.0 + 40 * number) + tone(end - start, frequency_hz=900.0, amplitude=0.1)
        first = int(start * RATE)
        audio[first : first + burst.size] += burst
    return audio


TRUE_WORDS = [(0.30, 0.62), (0.70, 1.05), (1.20, 1.50)]


def test_cuts_land_inside_planted_gaps_from_jittered_raw_spans():
    audio = words_with_gaps(TRUE_WORDS, 1.9)
    # CTC-like raw spans: peaky, shrunk inside the words and shifted by tens of ms.
    raw = [(0.33, 0.58), (0.74, 1.00), (1.23, 1.44)]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True))
    assert refined.tolist() == [True, True, True, True]
    assert 0.62 <= cuts[1] <= 0.70
    assert 1.05 <= cuts[2] <= 1.20
    assert cuts[0] == pytest.approx(0.30, abs=0.012)
    assert cuts[3] == pytest.approx(1.50, abs=0.012)


def test_cut_is_found_even_when_the_raw_gap_misses_the_true_gap_by_less_than_the_padding():
    audio = words_with_gaps(TRUE_WORDS, 1.9)
    raw = [(0.33, 0.55), (0.58, 1.00), (1.23, 1.44)]  # raw gap [0.55, 0.58] lies before the true one
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(padding_s=0.06, refine_interior=True))
    assert refined[1]
    assert 0.62 <= cuts[1] <= 0.70


def test_no_energy_dip_falls_back_to_the_raw_gap_midpoint():
    audio = tone(1.2, frequency_hz=200.0) + np.random.default_rng(0).normal(scale=1e-3, size=19200).astype(np.float32)
    raw = [(0.1, 0.5), (0.56, 1.1)]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True))
    assert not refined[1]
    assert cuts[1] == pytest.approx(0.53)


def test_fixed_words_keep_their_raw_edges_unrefined():
    audio = words_with_gaps(TRUE_WORDS, 1.9)
    raw = [(0.33, 0.58), (0.74, 1.00), (1.23, 1.44)]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True), fixed=[False, True, False])
    assert refined.tolist() == [True, False, False, True]
    assert cuts[1] == pytest.approx((0.58 + 0.74) / 2)
    assert cuts[2] == pytest.approx((1.00 + 1.23) / 2)


def test_cuts_never_decrease():
    audio = words_with_gaps(TRUE_WORDS, 1.9)
    raw = [(0.33, 0.70), (0.60, 1.00), (0.95, 1.44)]  # overlapping raw spans (e.g. interpolated words)
    cuts, _ = refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True))
    assert np.all(np.diff(cuts) >= 0)


def test_features_have_a_five_millisecond_hop_and_known_values():
    audio = np.zeros(RATE, dtype=np.float32)
    audio[8000:] = tone(0.5, amplitude=0.5)
    parameters = RefinementParameters(refine_interior=True)
    features = acoustic_features(audio, RATE, parameters)
    assert features.hop_s == pytest.approx(0.005)
    assert features.rms.size == 1 + RATE // 80
    assert features.rms[50] == 0.0
    assert features.rms[150] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert features.cost[50] < features.cost[150]


def test_spectral_flux_peaks_at_an_onset_and_vanishes_on_a_steady_tone():
    audio = np.zeros(RATE, dtype=np.float32)
    audio[8000:] = tone(0.5, amplitude=0.5)
    flux = spectral_flux(audio, hop_length=80, frame_length=320)
    onset_frame = 8000 // 80
    assert onset_frame - 3 <= int(np.argmax(flux)) <= onset_frame + 3
    assert np.median(flux[120:180]) < 0.1 * flux.max()


def test_spectral_flux_in_float32_blocks_equals_a_float64_reference(monkeypatch):
    from sgpa import refine
    from sgpa.audio import frame_signal

    audio = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * np.linspace(0, 1, RATE)
    frames = frame_signal(audio, 320, 80)
    magnitude = np.log1p(100.0 * np.abs(np.fft.rfft(frames * np.hanning(320), axis=1)))
    reference = np.r_[0.0, np.sqrt(np.sum(np.diff(magnitude, axis=0) ** 2, axis=1))]
    np.testing.assert_allclose(spectral_flux(audio, 80, 320), reference, rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(refine, "FRAME_BLOCK", 7)  # differences across block boundaries too
    np.testing.assert_allclose(spectral_flux(audio, 80, 320), reference, rtol=1e-4, atol=1e-4)


def test_frame_rms_of_a_constant_signal():
    np.testing.assert_allclose(frame_rms(np.full(1600, 0.25), frame_length=320, hop_length=80)[3:-3], 0.25)


def test_speech_extent_finds_a_tone_between_silences():
    from sgpa.refine import speech_extent_s

    rate = 16000
    waveform = np.concatenate([np.zeros(int(0.3 * rate)), tone(0.5, rate), np.zeros(int(0.4 * rate))]).astype(np.float32)
    onset_s, offset_s = speech_extent_s(waveform, rate, margin_s=0.05)
    assert onset_s == pytest.approx(0.25, abs=0.015)  # 0.3 s minus the margin
    assert offset_s == pytest.approx(0.85, abs=0.015)  # 0.8 s plus the margin


def test_cuts_between_words_stay_at_the_gap_midpoint_by_default():
    audio = np.concatenate([tone(0.3), np.zeros(int(0.2 * RATE), dtype=np.float32), tone(0.3)])
    raw = [(0.0, 0.32), (0.40, 0.8)]  # the true pause is [0.3, 0.5]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters())
    assert cuts[1] == pytest.approx(0.36) and not refined[1]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True))
    assert 0.3 <= cuts[1] <= 0.5 and refined[1]


def test_stage_one_anchor_replaces_the_midpoint_and_is_the_fallback_of_a_rejected_search():
    audio = np.concatenate([tone(0.3), tone(0.5, frequency_hz=300.0)])  # no pause: nothing to refine
    raw = [(0.0, 0.26), (0.40, 0.8)]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(), anchors_s=[0.31])
    assert cuts[1] == pytest.approx(0.31) and not refined[1]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True), anchors_s=[0.31])
    assert cuts[1] == pytest.approx(0.31) and not refined[1]
    cuts, _ = refine_boundaries(audio, RATE, raw, RefinementParameters(), anchors_s=[None])
    assert cuts[1] == pytest.approx(0.33)
    cuts, _ = refine_boundaries(audio, RATE, raw, RefinementParameters(), fixed=[True, False], anchors_s=[0.31])
    assert cuts[1] == pytest.approx(0.33)  # an interpolated word's cut is never anchored


def test_offset_follows_the_energy_past_the_search_window_when_the_last_character_fired_early():
    audio = np.concatenate([np.zeros(int(0.1 * RATE), np.float32), tone(0.6), np.zeros(int(0.3 * RATE), np.float32)])
    raw = [(0.12, 0.45)]  # the word really ends at 0.70 s, 250 ms after its last character
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters())
    assert cuts[-1] == pytest.approx(0.70, abs=0.015) and refined[-1]
    cuts, refined = refine_boundaries(audio, RATE, raw, RefinementParameters(offset_extension_s=0.0))
    assert cuts[-1] == pytest.approx(0.45) and not refined[-1]  # window edge still loud: raw end kept


def test_default_refinement_skips_the_spectral_flux_and_cuts_exactly_as_with_it(monkeypatch):
    from sgpa import refine

    audio = words_with_gaps(TRUE_WORDS, 1.9)
    raw = [(0.33, 0.58), (0.74, 1.00), (1.23, 1.44)]
    parameters = RefinementParameters()  # interior cuts not searched: only the outer edges, from the energy
    with_flux = acoustic_features(audio, RATE, parameters)
    monkeypatch.setattr(refine, "acoustic_features", lambda *a, **k: with_flux)
    expected = refine_boundaries(audio, RATE, raw, parameters)
    monkeypatch.undo()

    def no_flux(*args, **kwargs):
        raise AssertionError("the spectral flux was computed")

    monkeypatch.setattr(refine, "spectral_flux", no_flux)
    cuts, refined = refine_boundaries(audio, RATE, raw, parameters)
    np.testing.assert_array_equal(cuts, expected[0])
    np.testing.assert_array_equal(refined, expected[1])
    with pytest.raises(AssertionError, match="spectral flux"):
        refine_boundaries(audio, RATE, raw, RefinementParameters(refine_interior=True))


@pytest.mark.parametrize("n_samples", [1, 79, 80, 321, 16_000, 16_037, 700_001])
def test_frame_rms_from_hop_blocks_equals_squaring_every_frame(n_samples):
    from sgpa.audio import frame_signal

    rng = np.random.default_rng(n_samples)
    audio = (rng.normal(size=n_samples) * np.r_[np.full(n_samples // 2, 1e-4), np.ones(n_samples - n_samples // 2)])
    audio = audio.astype(np.float32)  # quiet then loud: a silent frame's energy must survive next to loud ones
    reference = np.sqrt(np.mean(np.square(frame_signal(audio, 320, 80)), axis=1))
    np.testing.assert_allclose(frame_rms(audio, 320, 80), reference, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(frame_rms(audio, 300, 80), np.sqrt(np.mean(np.square(frame_signal(audio, 300, 80)), axis=1)))
