"""LFM2-Audio backend on a tiny randomly initialised model built from liquid-audio's own config classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest_lfm2 import make_segmentation, speechlike_audio, tiny_lfm2_dir  # noqa: F401

from sgpa.attribution.masking import token_keep_mask, token_owner
from sgpa.errors import InputError

DURATION_S = 2.0
WORDS = [("turn", 0.16, 0.62), ("the", 0.62, 0.85), ("lights", 0.85, 1.40), ("off", 1.40, 1.84)]


@pytest.fixture(scope="module")
def backend(tiny_lfm2_dir):  # noqa: F811
    from sgpa.attribution.models.lfm2_audio import Lfm2AudioBackend

    return Lfm2AudioBackend.load(Path(tiny_lfm2_dir), max_new_tokens=6)


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return speechlike_audio(DURATION_S, seed=1)


@pytest.fixture(scope="module")
def segmentation(audio):
    return make_segmentation(WORDS, DURATION_S, audio=audio)


@pytest.fixture(scope="module")
def game(backend, audio, segmentation):
    return backend.prepare(audio, segmentation, masking="embedding")


def all_coalitions(n: int) -> np.ndarray:
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


def reference_log_probs(backend, audio: np.ndarray, prompt: str, response_ids: list[int]) -> np.ndarray:
    """Unmasked teacher-forced log-probs through liquid-audio's own input assembly (ChatState + _prefill)."""
    import torch
    from liquid_audio import ChatState

    chat = ChatState(backend.processor, dtype=torch.float32)
    chat.new_turn("system")
    chat.add_text(prompt)
    chat.end_turn()
    chat.new_turn("user")
    chat.add_audio(torch.from_numpy(audio)[None], 16000)
    chat.end_turn()
    chat.new_turn("assistant")
    model = backend.model
    with torch.no_grad():
        prefix = model._prefill(**chat)
        response = model.lfm.embed_tokens(torch.tensor(response_ids))[None]
        hidden = model.lfm(inputs_embeds=torch.cat([prefix, response], dim=1), use_cache=False).last_hidden_state
        logits = torch.nn.functional.linear(hidden[0], model.lfm.embed_tokens.weight).float()
        log_probs = torch.log_softmax(logits, dim=-1)
    start = prefix.shape[1] - 1
    rows = torch.arange(start, start + len(response_ids))
    return log_probs[rows, torch.tensor(response_ids)].double().numpy()


def test_one_audio_token_per_80_ms_and_grid_tail_is_context(game, segmentation):
    # 2.0 s -> 201 mel frames -> ceil(201 / 8) = 26 tokens; the grid has 25, the 26th is padding = context
    assert game.details["audio_tokens"] == 26
    assert game.owner.tolist() == segmentation.grid.owner + [-1]


def test_empty_coalition_masks_every_word_token_and_nothing_else(game):
    empty = np.zeros((1, game.n_players), dtype=bool)
    (rows, masked), = game.audio_embeddings(empty)
    full = game.full_embeddings[0]
    changed = (masked[0] != full).any(dim=-1).numpy()
    word_tokens = game.owner >= 0
    assert np.array_equal(changed, word_tokens)
    assert (masked[0][word_tokens] == 0).all()
    assert (masked[0][~word_tokens] == full[~word_tokens]).all()


def test_embedding_masking_touches_only_the_absent_words_positions(game):
    for absent in range(game.n_players):
        present = np.ones((1, game.n_players), dtype=bool)
        present[0, absent] = False
        (_, masked), = game.audio_embeddings(present)
        changed = (masked[0] != game.full_embeddings[0]).any(dim=-1).numpy()
        assert changed.any()
        assert np.array_equal(changed, game.owner == absent)


def test_token_keep_mask_keeps_context_always():
    owner = np.array([-1, 0, 0, 1, -1])
    keep = token_keep_mask(np.array([[False, False], [True, False]]), owner)
    assert keep.tolist() == [[True, False, False, False, True], [True, True, True, False, True]]


def test_full_coalition_reproduces_unmasked_log_probs_exactly(backend, game, audio):
    full = game.log_probs(np.ones((1, game.n_players), dtype=bool))[0]
    reference = reference_log_probs(backend, audio, game.details["prompt"], game.response.token_ids)
    np.testing.assert_allclose(full, reference, rtol=0, atol=1e-6)
    # greedy reference response: each token is the argmax under the full input, so it is likely, not arbitrary
    assert np.all(full > np.log(1.0 / 256))


def test_masking_changes_the_value(game):
    values = game.log_probs(np.array([[False] * 4, [True] * 4]))
    assert np.abs(values[0] - values[1]).max() > 1e-6


def test_batched_equals_one_at_a_time_and_prefix_cache_is_exact(backend, audio, segmentation):
    coalitions = all_coalitions(len(WORDS))
    for masking in ("embedding", "noise", "deletion"):
        game = backend.prepare(audio, segmentation, masking=masking, batch_size=16)
        batched = game.log_probs(coalitions)
        single = np.concatenate([game.log_probs(c[None]) for c in coalitions])
        np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5, err_msg=masking)
    backend.reuse_prefix_cache = False
    try:
        uncached = backend.prepare(audio, segmentation, masking="embedding").log_probs(coalitions)
    finally:
        backend.reuse_prefix_cache = True
    cached = backend.prepare(audio, segmentation, masking="embedding").log_probs(coalitions)
    np.testing.assert_allclose(cached, uncached, rtol=0, atol=1e-5)


def test_waveform_full_coalition_equals_unmasked(backend, audio, segmentation, game):
    full = np.ones((1, len(WORDS)), dtype=bool)
    for masking in ("silence", "noise", "deletion"):
        waveform_game = backend.prepare(audio, segmentation, masking=masking)
        np.testing.assert_allclose(waveform_game.log_probs(full), game.log_probs(full), rtol=0, atol=1e-6)


def test_exact_attributions_satisfy_efficiency(game):
    from sgpa.attribution.estimators import estimate
    from sgpa.attribution.game import Game

    result = estimate(Game(game.log_probs, game.n_players, batch_size=game.batch_size), method="exact")
    assert result.phi.shape == (game.n_players, game.response.n_tokens)
    np.testing.assert_allclose(result.phi.sum(axis=0), result.v_full - result.v_empty, rtol=0, atol=1e-6)
    assert result.n_evaluations == 2**game.n_players


def test_bad_inputs_raise_input_errors(backend, audio, segmentation, tmp_path):
    from sgpa.attribution.models.lfm2_audio import Lfm2AudioBackend

    with pytest.raises(InputError, match="masking"):
        backend.prepare(audio, segmentation, masking="blur")
    ctc_grid = make_segmentation(WORDS, DURATION_S, token_duration_s=0.02)
    with pytest.raises(InputError, match="80 ms"):
        backend.prepare(audio, ctc_grid)
    with pytest.raises(InputError, match="do not match"):
        backend.prepare(audio[:8000], segmentation)
    with pytest.raises(InputError, match="unknown model"):
        Lfm2AudioBackend.load(tmp_path / "no-such-model")
    with pytest.raises(InputError, match="config.json"):
        Lfm2AudioBackend.load(tmp_path)


def test_token_owner_pads_and_truncates():
    seg = make_segmentation([("a", 0.0, 0.16)], 0.24)
    assert token_owner(seg, 4).tolist() == [0, 0, -1, -1]
    assert token_owner(seg, 2).tolist() == [0, 0]


def test_prompt_words_as_players_joint_audio_text_game(backend, audio, segmentation, game):
    from sgpa.attribution.explanation import audio_share
    from sgpa.attribution.models.lfm2_audio import prompt_word_tokens

    prompt = "What does the speaker want?"
    words, owner = prompt_word_tokens(backend.processor.text, prompt)
    assert words == ["What", "does", "the", "speaker", "want?"]
    assert owner.max() == 4 and (owner[owner >= 0] == np.sort(owner[owner >= 0])).all()

    joint = backend.prepare(audio, segmentation, prompt=prompt, text_players=True)
    plain = backend.prepare(audio, segmentation, prompt=prompt)
    n_audio = len(WORDS)
    assert joint.player_names == [w for w, _, _ in WORDS] + words and joint.cache is None
    audio_part = all_coalitions(n_audio)
    with_all_text = np.concatenate([audio_part, np.ones((len(audio_part), len(words)), dtype=bool)], axis=1)
    np.testing.assert_allclose(joint.log_probs(with_all_text), plain.log_probs(audio_part), rtol=0, atol=1e-5)

    # an absent prompt word zeroes exactly its own tokens of the system turn
    import torch

    embeddings = backend.assemble(joint.layout, joint.full_embeddings, joint.response.token_ids)
    present = np.ones((1, joint.n_players), dtype=bool)
    present[0, n_audio + 3] = False  # "speaker"
    masked = joint.mask_prompt(embeddings, present)
    changed = torch.nonzero((masked != embeddings).any(dim=-1)[0]).flatten().numpy()
    prompt_positions = np.arange(joint.layout.prompt_start, joint.layout.prompt_end)
    assert np.array_equal(changed, prompt_positions[owner == 3])

    assert audio_share(np.array([1.0, -1.0, 2.0]), [True, True, False]) == pytest.approx(0.5)


def test_reference_response_is_liquid_audios_own_greedy_generation(backend, audio, game):
    import torch
    from liquid_audio import ChatState

    chat = ChatState(backend.processor, dtype=torch.float32)
    chat.new_turn("system")
    chat.add_text(game.details["prompt"])
    chat.end_turn()
    chat.new_turn("user")
    chat.add_audio(torch.from_numpy(audio)[None], 16000)
    chat.end_turn()
    chat.new_turn("assistant")
    theirs = []
    for token in backend.model.generate_sequential(**chat, max_new_tokens=backend.max_new_tokens):
        theirs.append(int(token[0]))
        if theirs[-1] in (7, 128):  # end of turn, or the switch to audio output: the text response ends
            break
    assert game.response.token_ids == theirs
