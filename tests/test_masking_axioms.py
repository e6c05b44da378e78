"""Masking that keeps the Shapley axioms: null players get exactly zero, noise is keyed per word, and the front
end's normalisation is frozen to the full utterance (issue: attribution correctness).

Real tiny models (a random Wav2Vec2ForCTC and a random LFM2-Audio, built offline) on speech-like audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest_lfm2 import make_segmentation, speechlike_audio, tiny_lfm2_dir  # noqa: F401

from sgpa.attribution.explanation import explain
from sgpa.attribution.masking import mask_waveform, noise_track, word_sample_spans

DURATION_S = 2.0
# "the" has an empty span: no sample, no frame, no token belongs to it
WORDS_WITH_A_NULL = [("turn", 0.16, 0.62), ("the", 0.62, 0.62), ("lights", 0.62, 1.40), ("off", 1.40, 1.84)]


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return speechlike_audio(DURATION_S, seed=3)


@pytest.fixture(scope="module")
def ctc_backend(backend_with_mask_vector):
    return backend_with_mask_vector


@pytest.fixture(scope="module")
def lfm2_backend(tiny_lfm2_dir):  # noqa: F811
    from sgpa.attribution.models.lfm2_audio import Lfm2AudioBackend

    return Lfm2AudioBackend.load(Path(tiny_lfm2_dir), max_new_tokens=4)


@pytest.mark.parametrize("masking", ["silence", "noise", "deletion", "embedding"])
def test_a_word_with_no_audio_gets_exactly_zero_on_the_ctc_model(ctc_backend, audio, masking):
    segmentation = make_segmentation(WORDS_WITH_A_NULL, DURATION_S, token_duration_s=0.02, audio=audio)
    explanation = explain(ctc_backend, audio, segmentation, masking=masking, method="exact")
    assert explanation.parameters["null_players"] == [1]
    assert np.abs(explanation.phi[1]).max() <= 1e-9
    assert np.abs(explanation.phi[[0, 2, 3]]).max() > 1e-6  # the other words do matter
    assert explanation.cost.n_evaluations == 2**3  # coalitions differing only in the null player cost one evaluation
    assert explanation.efficiency_gap_total < 1e-6


@pytest.mark.parametrize("masking", ["embedding", "embedding-mean", "encoder-input", "silence", "noise", "deletion"])
def test_a_word_with_no_audio_gets_exactly_zero_on_lfm2_audio(lfm2_backend, audio, masking):
    segmentation = make_segmentation(WORDS_WITH_A_NULL, DURATION_S, audio=audio)
    for method in ("exact", "permutation", "kernel"):
        explanation = explain(lfm2_backend, audio, segmentation, masking=masking, method=method,
                              budget=None if method == "exact" else 12)
        assert explanation.parameters["null_players"] == [1]
        assert np.abs(explanation.phi[1]).max() <= 1e-9, method


def test_noise_is_drawn_once_per_word_so_coalitions_differ_only_where_their_players_do(audio):
    segmentation = make_segmentation(WORDS_WITH_A_NULL, DURATION_S, audio=audio)
    spans = word_sample_spans(segmentation, 16000, len(audio))
    noise = noise_track(spans, len(audio), noise_rms=0.01, seed=7)
    rng = np.random.default_rng(0)
    for _ in range(20):
        present = rng.random(4) < 0.5
        player = int(rng.integers(4))
        other = present.copy()
        other[player] = not other[player]
        difference = mask_waveform(audio, spans, present, "noise", noise=noise) != mask_waveform(
            audio, spans, other, "noise", noise=noise
        )
        start, end = spans[player]
        assert not difference[:start].any() and not difference[end:].any()
    np.testing.assert_array_equal(noise, noise_track(spans, len(audio), noise_rms=0.01, seed=7))  # seeded
    assert not np.array_equal(noise, noise_track(spans, len(audio), noise_rms=0.01, seed=8))


def test_frozen_normalisation_leaves_a_lone_word_as_it_is_in_the_full_utterance(ctc_backend, audio):
    segmentation = make_segmentation(WORDS_WITH_A_NULL, DURATION_S, token_duration_s=0.02, audio=audio)
    spans = word_sample_spans(segmentation, 16000, len(audio))
    lone = np.array([False, False, True, False])  # only "lights" present
    start, end = spans[2]
    full_inputs = ctc_backend.input_values(audio[None])[0]
    for normalization, rescaled in (("frozen", False), ("per-input", True)):
        game = ctc_backend.prepare(audio, segmentation, masking="silence", normalization=normalization)
        inputs = ctc_backend.input_values(game.masked_waveform(lone)[None], game.frozen_stats)[0]
        same = np.allclose(inputs[start:end], full_inputs[start:end], atol=1e-5)
        assert same != rescaled, normalization
        assert game.details["normalization"] == normalization
    # the full coalition is the unmasked input under either normalisation
    frozen = ctc_backend.prepare(audio, segmentation, masking="silence", normalization="frozen")
    full = np.ones((1, 4), dtype=bool)
    np.testing.assert_allclose(frozen.log_probs(full), ctc_backend.prepare(
        audio, segmentation, masking="silence", normalization="per-input").log_probs(full), atol=1e-4)


def test_frozen_log_mel_normalisation_on_lfm2_audio(lfm2_backend, audio):
    segmentation = make_segmentation(WORDS_WITH_A_NULL, DURATION_S, audio=audio)
    stats = lfm2_backend.mel_statistics(audio)
    full = lfm2_backend.log_mel(audio[None])
    np.testing.assert_allclose(lfm2_backend.log_mel(audio[None], stats).numpy(), full.numpy(), atol=1e-4)
    spans = word_sample_spans(segmentation, 16000, len(audio))
    lone = mask_waveform(audio, spans, np.array([True, False, False, False]), "silence")
    frozen, fresh = lfm2_backend.log_mel(lone[None], stats), lfm2_backend.log_mel(lone[None])
    frames = slice(20, 55)  # inside "turn" (0.16-0.62 s), away from the silenced audio
    np.testing.assert_allclose(frozen[0, :, frames].numpy(), full[0, :, frames].numpy(), atol=1e-3)
    assert np.abs(fresh[0, :, frames].numpy() - full[0, :, frames].numpy()).max() > 0.05


def test_encoder_input_masking_zeroes_the_words_log_mel_frames_and_re_encodes(lfm2_backend, audio):
    words = [("turn", 0.16, 0.62), ("the", 0.62, 0.85), ("lights", 0.85, 1.40), ("off", 1.40, 1.84)]
    segmentation = make_segmentation(words, DURATION_S, audio=audio)
    game = lfm2_backend.prepare(audio, segmentation, masking="encoder-input")
    coalitions = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(bool)
    values = game.log_probs(coalitions)
    embedding_game = lfm2_backend.prepare(audio, segmentation, masking="embedding")
    np.testing.assert_allclose(values[-1], embedding_game.log_probs(coalitions[-1:])[0], atol=1e-5)
    assert np.abs(values[0] - values[-1]).max() > 1e-4
    single = np.concatenate([game.log_probs(c[None]) for c in coalitions[:5]])
    np.testing.assert_allclose(values[:5], single, atol=1e-5)
    # an absent word changes the kept tokens too: the conformer attends over the whole utterance
    (_, masked), = game.audio_embeddings(np.array([[False, True, True, True]]))
    kept = game.owner >= 1
    assert (masked[0][kept] != game.full_embeddings[0][kept]).any()


def test_a_spelled_out_numeral_keeps_its_inner_delimiter_in_the_ctc_value():
    from sgpa.attribution.models.ctc import word_labels

    vocab = {"<pad>": 0, "|": 4, "F": 5, "O": 6, "R": 7, "T": 8, "Y": 9, "W": 10, "A": 11}
    assert word_labels(["FORTY TWO", "A"], vocab) == [[5, 6, 7, 8, 9, 4, 8, 10, 6], [4, 11]]
