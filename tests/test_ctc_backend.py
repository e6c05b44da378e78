"""CTC recogniser backend: the prefix forward algorithm, the per-word chain rule, masking mechanics on the tiny
random model, and (on the project's shipped model, when installed) the temporal-alignment check on TTS speech."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
from conftest_lfm2 import make_segmentation, speechlike_audio

from sgpa.attribution.models.ctc import ctc_prefix_log_probs, word_labels, word_terms
from sgpa.errors import InputError

WORDS = [("turn", 0.10, 0.45), ("the", 0.45, 0.60), ("lights", 0.60, 1.05), ("off", 1.05, 1.40)]
DURATION_S = 1.5


def collapse(path: tuple[int, ...], blank: int = 0) -> list[int]:
    out, previous = [], None
    for label in path:
        if label != previous and label != blank:
            out.append(label)
        previous = label
    return out


def test_prefix_and_total_probabilities_match_brute_force_enumeration():
    import torch

    rng = np.random.default_rng(0)
    n_frames, vocab = 5, 3
    log_probs = torch.log_softmax(torch.tensor(rng.standard_normal((1, n_frames, vocab))), dim=-1)
    labels = [1, 1, 2]  # a repeated label needs a blank between its two emissions
    prefix = np.full(len(labels), -np.inf)
    total = -np.inf
    for path in itertools.product(range(vocab), repeat=n_frames):
        collapsed = collapse(path)
        score = float(sum(log_probs[0, t, s] for t, s in enumerate(path)))
        for j in range(len(labels)):
            if collapsed[: j + 1] == labels[: j + 1]:
                prefix[j] = np.logaddexp(prefix[j], score)
        if collapsed == labels:
            total = np.logaddexp(total, score)
    got_prefix, got_total = ctc_prefix_log_probs(log_probs, labels, blank=0)
    np.testing.assert_allclose(got_prefix[0].numpy(), prefix, atol=1e-10)
    np.testing.assert_allclose(float(got_total[0]), total, atol=1e-10)
    ctc_loss = torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), torch.tensor([labels]), torch.tensor([n_frames]), torch.tensor([3]), reduction="none"
    )
    np.testing.assert_allclose(float(got_total[0]), -float(ctc_loss[0]), atol=1e-9)


def test_word_terms_telescope_and_skip_unspellable_words():
    import torch

    prefix = torch.tensor([[-1.0, -2.0, -3.5, -4.0, -6.0]])
    total = torch.tensor([-7.0])
    labels = [[5, 6], [], [4, 7, 8]]  # second word has no label: constant term 0
    terms = word_terms(prefix, total, labels).numpy()[0]
    np.testing.assert_allclose(terms, [-2.0, 0.0, -5.0])
    assert terms.sum() == pytest.approx(-7.0)


def test_word_labels_put_the_delimiter_before_every_scored_word_but_the_first():
    vocab = {"<pad>": 0, "|": 4, "A": 5, "B": 6, "'": 7}
    assert word_labels(["ab", "%", "b'a"], vocab) == [[5, 6], [], [4, 6, 7, 5]]
    assert word_labels(["%", "ab"], vocab) == [[], [5, 6]]
    assert word_labels(["ab", "ba"], vocab, delimiter=None) == [[5, 6], [6, 5]]


@pytest.fixture(scope="module")
def backend(tiny_ctc_model_dir):
    from sgpa.attribution.models.ctc import CtcBackend

    return CtcBackend.load(tiny_ctc_model_dir)


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return speechlike_audio(DURATION_S, seed=2)


@pytest.fixture(scope="module")
def segmentation(audio):
    return make_segmentation(WORDS, DURATION_S, token_duration_s=0.02, audio=audio)


def all_coalitions(n: int) -> np.ndarray:
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


@pytest.mark.parametrize("masking", ["silence", "noise", "deletion", "embedding"])
def test_per_word_terms_sum_to_the_masked_transcript_log_probability(
    backend, backend_with_mask_vector, audio, segmentation, masking
):
    import torch

    if masking == "embedding":
        backend = backend_with_mask_vector
    game = backend.prepare(audio, segmentation, masking=masking)
    coalitions = all_coalitions(len(WORDS))
    values = game.log_probs(coalitions)
    assert values.shape == (16, 4) and np.isfinite(values).all()
    labels = [label for ids in game.labels for label in ids]
    for row in (0, 5, 15):
        present = coalitions[row]
        if masking == "embedding":
            frames = (game.frame_owner >= 0) & ~present[np.maximum(game.frame_owner, 0)]
            emissions = backend.emissions(backend.input_values(audio[None]), frames[None])
        else:
            emissions = backend.emissions(backend.input_values(game.masked_waveform(present)[None], game.frozen_stats))
        loss = torch.nn.functional.ctc_loss(
            emissions.transpose(0, 1), torch.tensor([labels]), torch.tensor([emissions.shape[1]]),
            torch.tensor([len(labels)]), blank=backend.blank_id, reduction="none",
        )
        np.testing.assert_allclose(values[row].sum(), -float(loss[0]), atol=1e-8)
    # masking matters, and batched evaluation equals one-at-a-time
    assert np.abs(values[0] - values[-1]).max() > 1e-6
    single = np.concatenate([game.log_probs(c[None]) for c in coalitions[:6]])
    np.testing.assert_allclose(values[:6], single, atol=1e-9)


def test_full_coalition_equals_the_unmasked_audio(backend_with_mask_vector, audio, segmentation):
    backend = backend_with_mask_vector
    full = np.ones((1, len(WORDS)), dtype=bool)
    values = [backend.prepare(audio, segmentation, masking=m).log_probs(full) for m in backend.maskings]
    for other in values[1:]:
        np.testing.assert_allclose(other, values[0], atol=1e-9)


def test_bad_inputs(backend, audio, segmentation, tmp_path):
    from sgpa.attribution.models.ctc import CtcBackend

    with pytest.raises(InputError, match="masking"):
        backend.prepare(audio, segmentation, masking="embedding-mean")
    with pytest.raises(InputError, match="mask vector"):
        backend.prepare(audio, segmentation, masking="embedding")
    with pytest.raises(InputError, match="prompt"):
        backend.prepare(audio, segmentation, prompt="What does the speaker want?")
    with pytest.raises(InputError, match="unknown model"):
        CtcBackend.load(str(tmp_path / "missing" / "model"))
    unspellable = make_segmentation([("%%", 0.1, 0.5)], 1.0, token_duration_s=0.02)
    with pytest.raises(InputError, match="vocabulary"):
        backend.prepare(audio, unspellable)


# --- temporal alignment on the shipped model --------------------------------------------------------------------


def shipped_model_dir():
    from sgpa.ctc import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "config.json").is_file() else None


def word_by_segment_shapley(text: str, voice: str) -> np.ndarray:
    """phi[j, i]: contribution of word j's audio segment (exact TTS times) to word i's log-probability term."""
    from sgpa.attribution.estimators import estimate
    from sgpa.attribution.game import Game
    from sgpa.attribution.models.ctc import CtcBackend
    from sgpa.corpus.flite import synthesize

    (utterance,) = synthesize([text], voice=voice)
    times = [(w.text, w.start, w.end) for w in utterance.words]
    segmentation = make_segmentation(times, utterance.duration_s, token_duration_s=0.02, audio=utterance.samples)
    backend = CtcBackend.load(None)
    game = backend.prepare(utterance.samples, segmentation, masking="silence")
    return estimate(Game(game.log_probs, game.n_players, batch_size=game.batch_size), method="exact").phi


def needs_shipped_model_and_flite(test):
    test = pytest.mark.skipif(shipped_model_dir() is None, reason="the shipped CTC model is not installed")(test)
    return pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")(test)


@needs_shipped_model_and_flite
@pytest.mark.parametrize(("text", "voice"), [
    ("please open the window", "kal16"),
    pytest.param("the old man found a small red box", "awb", marks=pytest.mark.xfail(
        strict=True, reason="model v3 (2026-12-02): 'small' ranks its own segment third (rank_of_own "
                            "[0 0 0 0 2 0 0 0]); v2 had every word at most second. A known regression, reported in the "
                            "model card; strict, so that a model that mends it makes this test fail until unmarked")),
])
def test_each_words_own_segment_is_a_leading_contributor_on_the_shipped_model(text, voice):
    phi = word_by_segment_shapley(text, voice)
    n = phi.shape[0]
    own = np.diag(phi)
    rank_of_own = np.array([(phi[:, i] > own[i]).sum() for i in range(n)])
    assert (own > 0).all()  # hearing a word always helps the recogniser read it
    assert (rank_of_own <= 1).all(), rank_of_own  # never worse than second (often the previous word's audio)
    assert (rank_of_own == 0).mean() >= 0.6, rank_of_own


@needs_shipped_model_and_flite
def test_each_word_is_carried_most_by_its_own_segment_on_the_shipped_model():
    """Strict argmax: failed with the first shipped model (plain CTC; 'the' was carried by 'open'), passes since
    the model was trained with time-windowed CTC (sgpa.training.timed_ctc). Not yet for every sentence: in
    "the old man found a small red box" (awb) the one-letter 'a' is still carried most by 'found'."""
    phi = word_by_segment_shapley("please open the window", "kal16")
    assert np.argmax(phi, axis=0).tolist() == list(range(phi.shape[0]))
