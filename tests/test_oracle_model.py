"""The shipped oracle LFM2-Audio model (sgpa/models/sgpa-lfm2-oracle), loaded offline like a hub checkpoint, on
utterances of voices it was never trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import sgpa
from sgpa.api import read_waveform
from sgpa.corpus.tasks import slot_prompt, slot_word, yes_no_prompt

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
# held-out-voice task utterances shipped with the samples (festival's slt voice and espeak-ng's f3). They were
# picked among held-out utterances the model gets right (its held-out slot accuracy is 0.792, the model card says
# which voices fail): these tests pin that behaviour and the explanation's mechanics, not the accuracy. The slt one
# was re-picked for the stage-3 model, which answers `none` to the earlier "they painted the room green": the first
# natural-sounding held-out slt colour sentence (heldout_00047 of work_data/tasks/heldout) it answers right.
TASK_SAMPLES = ("slt_task_0000", "espeak_f3_task_0000")


def sample(name: str) -> tuple[np.ndarray, str]:
    waveform, _ = read_waveform(SAMPLES / f"{name}.wav")
    return waveform, (SAMPLES / f"{name}.txt").read_text().strip()


@pytest.fixture(scope="module")
def backend():
    import torch

    torch.set_num_threads(2)
    return sgpa.load_backend(None, "lfm2-audio")


def test_the_default_lfm2_audio_model_is_the_shipped_oracle(backend):
    from sgpa.attribution.models.lfm2_audio import DEFAULT_MODEL_NAME

    assert Path(backend.model_id).name == DEFAULT_MODEL_NAME and len(backend.revision) >= 12
    config = json.loads((Path(backend.model_id) / "config.json").read_text())
    assert config["architectures"] == ["LFM2AudioModel"] and config["encoder"]["subsampling_factor"] == 8
    assert (Path(backend.model_id) / "model.safetensors").stat().st_size <= 30 * 2**20
    assert (Path(backend.model_id) / "README.md").is_file()  # the model card


@pytest.mark.parametrize("name", TASK_SAMPLES)
def test_answers_questions_about_a_held_out_voice(backend, name):
    waveform, text = sample(name)
    _, word, category = slot_word(text)
    assert backend.answer(waveform, slot_prompt(category)) == word
    assert backend.answer(waveform, yes_no_prompt(word)) == "yes"
    other = next(c for c in ("colour", "animal", "city") if c != category)
    assert backend.answer(waveform, slot_prompt(other)) == "none"
    assert backend.answer(waveform, "Say the word banana.") == "banana"  # the audio is irrelevant here


@pytest.mark.parametrize("name", TASK_SAMPLES)
def test_the_slot_word_is_the_top_player_of_the_exact_explanation(backend, name):
    waveform, text = sample(name)
    index, word, category = slot_word(text)
    explanation = sgpa.explain(waveform, text, backend=backend, prompt=slot_prompt(category), sample_rate=16000)
    assert explanation.method == "exact" and explanation.response["text"] == f" {word}<|im_end|>"
    phi = np.asarray(explanation.phi_total)
    assert int(np.argmax(phi)) == index
    assert abs(phi[index]) / np.abs(phi).sum() > 0.3
    assert np.allclose(phi.sum(), explanation.v_full_total - explanation.v_empty_total, atol=1e-6)


@pytest.fixture(scope="module")
def game(backend):
    waveform, text = sample(TASK_SAMPLES[0])
    _, _, category = slot_word(text)
    words = sgpa.align(waveform, text, grid="lfm2-audio", sample_rate=16000)
    return backend, waveform, category, backend.prepare(waveform, words, prompt=slot_prompt(category))


def test_batched_coalitions_score_as_one_at_a_time(game):
    _, _, _, prepared = game
    n = prepared.n_players
    coalitions = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
    batched = prepared.log_probs(coalitions)
    prepared.batch_size, saved = 1, prepared.batch_size
    try:
        single = prepared.log_probs(coalitions[::7])
    finally:
        prepared.batch_size = saved
    assert np.allclose(batched[::7], single, atol=1e-4)
    assert np.ptp(batched[:, 0]) > 1.0  # the answer's log-probability does depend on which words are heard


def test_the_full_coalition_reproduces_the_greedy_answer_log_probs(game):
    import torch

    backend, waveform, category, prepared = game
    # greedy decoding with the LFM2 cache, token by token, keeping each chosen token's log-probability
    embeddings = backend.encode_mel(backend.log_mel(waveform[None]))
    layout = backend.chat_layout(slot_prompt(category), int(embeddings.shape[1]))
    inputs, cache, chosen, log_probs = backend.assemble(layout, embeddings, []), None, [], []
    with torch.no_grad():
        for _ in range(len(prepared.response.token_ids)):
            out = backend.model.lfm(inputs_embeds=inputs, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = torch.nn.functional.linear(out.last_hidden_state[0, -1], backend.model.lfm.embed_tokens.weight)
            step = torch.log_softmax(logits.float(), -1)
            chosen.append(int(step.argmax()))
            log_probs.append(float(step.max()))
            inputs = backend.model.lfm.embed_tokens(torch.tensor([[chosen[-1]]]))
    assert chosen == prepared.response.token_ids
    full = prepared.log_probs(np.ones((1, prepared.n_players), dtype=bool))[0]
    assert np.allclose(full, log_probs, atol=1e-4)
