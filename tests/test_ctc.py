"""sgpa.ctc: model loading, emissions and forced alignment on planted paths."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpa import ctc
from sgpa.ctc import (
    align_characters,
    label_confidence,
    label_index_of_frames,
    compute_emissions,
    label_sequence,
    load_ctc_model,
    min_frames_needed,
    viterbi_checkpointed,
    viterbi_torchaudio,
)
from sgpa.errors import InputError
from sgpa.text import normalize_transcript

BLANK = 0


def planted_emissions(frame_labels: list[int], vocab_size: int = 6, peak: float = 0.9) -> np.ndarray:
    """Log-probs ``[n_frames, vocab_size]`` where frame ``t`` strongly prefers token ``frame_labels[t]``."""
    probs = np.full((len(frame_labels), vocab_size), (1 - peak) / (vocab_size - 1))
    probs[np.arange(len(frame_labels)), frame_labels] = peak
    return np.log(probs).astype(np.float32)


def path_score(log_probs: np.ndarray, frame_label: np.ndarray, label_ids: np.ndarray) -> float:
    tokens = np.where(frame_label >= 0, label_ids[np.maximum(frame_label, 0)], BLANK)
    return float(log_probs[np.arange(tokens.size), tokens].sum())


@pytest.mark.parametrize("max_cells", [None, 0])  # torchaudio, then the checkpointed numpy Viterbi
def test_planted_path_is_recovered_exactly(max_cells):
    # Labels 1 2 2 3 ("a b b c"): the repeat needs a blank between the two 2s.
    frame_tokens = [0, 0, 1, 1, 1, 0, 2, 2, 0, 2, 0, 0, 3, 3, 0, 0]
    labels = np.array([1, 2, 2, 3])
    result = align_characters(
        planted_emissions(frame_tokens), labels, np.array([0, 0, 1, 1]), BLANK, 0.02, max_trellis_cells=max_cells
    )
    np.testing.assert_array_equal(result.start_frame, [2, 6, 9, 12])
    np.testing.assert_array_equal(result.end_frame, [5, 8, 10, 14])
    np.testing.assert_allclose(result.confidence, 0.9, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_labels=st.integers(1, 12),
    extra_frames=st.integers(0, 30),
    block=st.integers(1, 9),
)
def test_checkpointed_viterbi_matches_torchaudio_score(seed, n_labels, extra_frames, block):
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 5, size=n_labels)
    n_frames = min_frames_needed(labels) + extra_frames
    log_probs = np.log(rng.dirichlet(np.ones(5), size=n_frames)).astype(np.float32)
    reference = viterbi_torchaudio(log_probs, labels, BLANK)
    checkpointed = viterbi_checkpointed(log_probs, labels, BLANK, block_frames=block)
    assert path_score(log_probs, checkpointed, labels) == pytest.approx(path_score(log_probs, reference, labels), abs=1e-3)
    # A valid CTC path visits every label, in order.
    visited = checkpointed[checkpointed >= 0]
    np.testing.assert_array_equal(np.unique(visited), np.arange(n_labels))
    assert np.all(np.diff(visited) >= 0)


def test_checkpointed_viterbi_memory_stays_far_below_the_full_trellis():
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 30, size=1500)
    n_frames = 6000  # two minutes at 20 ms
    log_probs = np.log(rng.dirichlet(np.ones(32), size=n_frames)).astype(np.float32)
    tracemalloc.start()
    align_characters(log_probs, labels, np.zeros_like(labels), BLANK, 0.02, max_trellis_cells=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_trellis_bytes = n_frames * (2 * labels.size + 1)  # one byte per cell for the back-pointers alone
    assert peak < full_trellis_bytes / 2


def test_min_frames_counts_a_blank_between_repeats():
    assert min_frames_needed(np.array([1, 1, 2, 2, 2, 3])) == 9
    assert min_frames_needed(np.array([4])) == 1


def test_audio_too_short_for_its_transcript():
    labels = np.array([1, 1, 1])  # needs 5 frames
    with pytest.raises(InputError, match="too short for its transcript"):
        align_characters(planted_emissions([1, 0, 1, 1]), labels, np.zeros(3, dtype=int), BLANK, 0.02)


def test_loaded_model_exposes_vocabulary_blank_delimiter_and_measured_frame_rate(tiny_acoustic_model):
    model = tiny_acoustic_model
    assert model.frame_duration_s == pytest.approx(0.02)
    assert model.blank_id == 0 and model.word_delimiter == "|"
    assert model.characters == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")
    assert model.revision.startswith("sha256:")


def test_label_sequence_puts_the_delimiter_between_spoken_words(tiny_acoustic_model):
    words = normalize_transcript("go 2 ☃ it", tiny_acoustic_model.characters)
    labels, owners = label_sequence(words, tiny_acoustic_model.vocabulary, tiny_acoustic_model.word_delimiter)
    vocab = {index: token for token, index in tiny_acoustic_model.vocabulary.items()}
    assert "".join(vocab[int(label)] for label in labels) == "GO|TWO|IT"
    np.testing.assert_array_equal(owners, [0, 0, -1, 1, 1, 1, -1, 3, 3])


def test_frame_duration_is_measured_not_assumed(tmp_path, tiny_ctc_model_dir):
    """A wav2vec2 variant with a 640-sample stride has 40 ms frames; the loader must notice."""
    import shutil

    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from conftest import WAV2VEC2_960H_VOCAB

    for path in tiny_ctc_model_dir.iterdir():  # reuse the tiny model's processor files
        if path.suffix == ".json" and path.name != "config.json":
            shutil.copy(path, tmp_path / path.name)
    config = Wav2Vec2Config(
        vocab_size=len(WAV2VEC2_960H_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, conv_dim=(8,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 4),
        conv_kernel=(10, 3, 3, 3, 3, 3, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(tmp_path)
    assert load_ctc_model(tmp_path).frame_duration_s == pytest.approx(0.04)


def test_missing_default_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ctc, "DEFAULT_MODEL_DIR", tmp_path / "sgpa-ctc-en")
    (tmp_path / "sgpa-ctc-en").mkdir()
    with pytest.raises(InputError, match="default acoustic model is not installed"):
        load_ctc_model(None)


def test_unloadable_model_directory_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot load the CTC model"):
        load_ctc_model(tmp_path)


def test_chunked_emissions_cover_the_same_frames_as_one_pass(tiny_acoustic_model):
    waveform = np.random.default_rng(1).normal(scale=0.1, size=16000 * 5).astype(np.float32)
    whole = compute_emissions(tiny_acoustic_model, waveform)
    chunked = compute_emissions(tiny_acoustic_model, waveform, chunk_s=1.3, context_s=0.3)
    assert abs(chunked.shape[0] - whole.shape[0]) <= 1
    assert chunked.shape[1] == whole.shape[1]
    np.testing.assert_allclose(np.exp(chunked).sum(axis=1), 1.0, rtol=1e-4)


def test_log_mel_ctc_model_with_40ms_frames_aligns_through_the_same_path(tmp_path, flite_speech):
    """A Wav2Vec2BertForCTC (log-mel features, adapter stride 2 → 40 ms frames) loads and aligns."""
    import json

    import torch
    from transformers import (
        SeamlessM4TFeatureExtractor,
        Wav2Vec2BertConfig,
        Wav2Vec2BertForCTC,
        Wav2Vec2BertProcessor,
        Wav2Vec2CTCTokenizer,
    )

    from conftest import WAV2VEC2_960H_VOCAB
    from sgpa.pipeline import align

    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(WAV2VEC2_960H_VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), word_delimiter_token="|")
    extractor = SeamlessM4TFeatureExtractor(feature_size=80, num_mel_bins=80, sampling_rate=16000, stride=2)
    Wav2Vec2BertProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(tmp_path)
    config = Wav2Vec2BertConfig(
        vocab_size=len(WAV2VEC2_960H_VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, feature_projection_input_dim=160, pad_token_id=0, add_adapter=True,
        adapter_stride=2, num_adapter_layers=1, output_hidden_size=32, conv_depthwise_kernel_size=3,
    )
    torch.manual_seed(0)
    Wav2Vec2BertForCTC(config).save_pretrained(tmp_path)
    model = load_ctc_model(tmp_path)
    assert model.frame_duration_s == pytest.approx(0.04)
    path, text = flite_speech
    segmentation = align(path, text, model)
    assert [w.text for w in segmentation.words] == text.split()
    assert segmentation.model.frame_duration_s == pytest.approx(0.04)
    # Raw CTC edges fall on the model's 40 ms frame grid.
    assert all(abs(w.ctc_start / 0.04 - round(w.ctc_start / 0.04)) < 1e-6 for w in segmentation.words)


def test_restricted_frames_keep_every_label_inside_the_allowed_region():
    rng = np.random.default_rng(0)
    n_frames, vocab = 40, 6
    log_probs = np.log(rng.dirichlet(np.ones(vocab), size=n_frames))
    # Plant label 3 at frame 2, well before the allowed region [10, 30).
    log_probs[2] = np.log(np.r_[0.01, 0.01, 0.01, 0.95, 0.01, 0.01])
    label_ids = np.array([3, 4, 5])
    restricted = ctc.restrict_to_frames(log_probs, blank_id=0, first_frame=10, end_frame=30)
    alignment = align_characters(restricted, label_ids, np.zeros(3, dtype=np.int64), 0, 0.02)
    assert alignment.start_frame.min() >= 10 and alignment.end_frame.max() <= 30
    np.testing.assert_array_equal(restricted[10:30], log_probs[10:30])  # inside: untouched


def _label_walk_reference(tokens: np.ndarray, blank_id: int) -> np.ndarray:
    """The frame-by-frame walk the vectorised :func:`label_index_of_frames` replaces."""
    frame_label = np.full(tokens.size, -1, dtype=np.int64)
    current, previous = -1, blank_id
    for frame, token in enumerate(tokens):
        if token != blank_id:
            if token != previous:
                current += 1
            frame_label[frame] = current
        previous = token
    return frame_label


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_labels=st.integers(1, 12), extra_frames=st.integers(0, 30))
def test_label_walk_and_confidence_equal_the_frame_by_frame_loops(seed, n_labels, extra_frames):
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 5, size=n_labels)
    n_frames = min_frames_needed(labels) + extra_frames
    log_probs = np.log(rng.dirichlet(np.ones(5), size=n_frames)).astype(np.float32)
    tokens = rng.integers(0, 3, size=n_frames)  # any token sequence, repeats and blanks included
    np.testing.assert_array_equal(label_index_of_frames(tokens, BLANK), _label_walk_reference(tokens, BLANK))
    frame_label = viterbi_torchaudio(log_probs, labels, BLANK)
    starts = [int(np.flatnonzero(frame_label == k)[0]) for k in range(n_labels)]
    ends = [int(np.flatnonzero(frame_label == k)[-1]) + 1 for k in range(n_labels)]
    expected = [np.exp(log_probs[a:b, label]).mean() for a, b, label in zip(starts, ends, labels)]
    np.testing.assert_allclose(label_confidence(log_probs, labels, frame_label), expected, rtol=1e-6)
