"""Whisper, Qwen2-Audio and Voxtral backends on tiny randomly initialised models built offline from transformers' config
classes, saved and loaded back from a folder (feature extractor, tokenizer and processor included)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sgpa
from sgpa.api import read_waveform
from sgpa.attribution.models import detect_backend, load_backend
from sgpa.attribution.models.hf_tiny import save_random_qwen2_audio, save_random_voxtral, save_random_whisper
from sgpa.errors import InputError

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
AUDIO = SAMPLES / "slt_task_0000.wav"
TRANSCRIPT = "they painted the room green"
try:
    import mistral_common  # noqa: F401  (Voxtral's tokenizer)

    BACKENDS = ("whisper", "qwen2-audio", "voxtral")
except ImportError:  # the voxtral extra is not installed
    BACKENDS = ("whisper", "qwen2-audio")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    folders = {"whisper": save_random_whisper(root / "whisper"), "qwen2-audio": save_random_qwen2_audio(root / "qwen")}
    if "voxtral" in BACKENDS:
        folders["voxtral"] = save_random_voxtral(root / "voxtral")
    return folders


@pytest.fixture(scope="module")
def loaded(folders):
    waveform, _ = read_waveform(AUDIO)
    result = {}
    for name, folder in folders.items():
        backend = load_backend(folder)
        segmentation = sgpa.align(waveform, TRANSCRIPT, grid=name, sample_rate=16000)
        result[name] = (backend, segmentation)
    return waveform, result


def own_log_probs(backend, waveform, game) -> np.ndarray:
    """The unmasked model's own forward (its processor's features, its own merge): log p of the response."""
    import torch

    ids = game.response.token_ids
    with torch.no_grad():
        if backend.name == "whisper":
            features = backend.feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")
            decoder = torch.tensor([game.prompt_ids + ids[:-1]])
            logits = backend.model(input_features=features["input_features"], decoder_input_ids=decoder).logits
            first = len(game.prompt_ids) - 1
        else:
            inputs = model_inputs(backend, waveform, game.prompt)
            full = torch.cat([inputs.pop("input_ids"), torch.tensor([ids])], dim=1)
            inputs.pop("attention_mask", None)
            logits = backend.model(input_ids=full, **inputs).logits
            first = full.shape[1] - len(ids) - 1
    log_probs = torch.log_softmax(logits.float(), dim=-1)[0, first : first + len(ids)]
    return log_probs.gather(-1, torch.tensor(ids)[:, None])[:, 0].double().numpy()


def model_inputs(backend, waveform, prompt) -> dict:
    """The processor's own inputs for the unmasked audio (what a user of the model would feed it)."""
    import base64
    import io

    import soundfile

    if backend.name == "qwen2-audio":
        conversation = [{"role": "user", "content": [{"type": "audio", "audio_url": "a"}, {"type": "text", "text": prompt}]}]
        text = backend.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        return dict(backend.processor(text=text, audio=[waveform], sampling_rate=16000, return_tensors="pt"))
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, 16000, format="WAV")
    conversation = [{"role": "user", "content": [{"type": "audio", "base64": base64.b64encode(buffer.getvalue()).decode()},
                                                 {"type": "text", "text": prompt}]}]
    return dict(backend.processor.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                                      return_tensors="pt"))


def test_checkpoints_are_detected_from_their_config(folders, tmp_path):
    assert detect_backend(folders["whisper"]) == "whisper"
    assert detect_backend(folders["qwen2-audio"]) == "qwen2-audio"
    assert detect_backend("openai/whisper-small") == "whisper"
    assert detect_backend("Qwen/Qwen2-Audio-7B-Instruct") == "qwen2-audio"
    assert detect_backend("mistralai/Voxtral-Mini-3B-2507") == "voxtral"
    if "voxtral" in folders:
        assert detect_backend(folders["voxtral"]) == "voxtral"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="'bert' checkpoint is not a model sgpa explains"):
        detect_backend(tmp_path)


def test_each_models_audio_positions_match_its_grid(loaded):
    """Seconds per audio position, measured from the models' own feature extractor and encoder strides."""
    import torch

    from sgpa.tokens import GRID_PRESETS

    waveform, backends = loaded
    whisper, _ = backends["whisper"]
    states = whisper.encode(whisper.features(np.zeros((1, 16000 * 30), dtype=np.float32)))
    assert 30.0 / states.shape[1] == pytest.approx(GRID_PRESETS["whisper"])
    qwen, _ = backends["qwen2-audio"]
    chat = qwen.chat_input("hi", 16000 * 2)
    features = qwen.features(np.zeros((1, 16000 * 2), dtype=np.float32))
    embeddings = qwen.input_embeddings(chat, features)
    assert embeddings.shape[1] == chat.input_ids.shape[1] and isinstance(embeddings, torch.Tensor)
    assert 2.0 / len(chat.audio_positions) == pytest.approx(GRID_PRESETS["qwen2-audio"])
    if "voxtral" in backends:  # Voxtral fills the whole 30 s window with audio embeddings
        voxtral, _ = backends["voxtral"]
        assert 30.0 / len(voxtral.chat_input("hi", 16000 * 2).audio_positions) == pytest.approx(GRID_PRESETS["voxtral"])


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("masking", ["embedding", "silence", "deletion"])
def test_the_full_coalition_is_the_models_own_log_probs_and_batching_changes_nothing(loaded, name, masking):
    waveform, backends = loaded
    backend, segmentation = backends[name]
    game = backend.prepare(waveform, segmentation, masking=masking, normalization="per-input")
    assert len(game.response.token_ids) >= 1
    full = game.log_probs(np.ones((1, game.n_players), dtype=bool))[0]
    assert np.max(np.abs(full - own_log_probs(backend, waveform, game))) <= 1e-5
    coalitions = np.random.default_rng(0).random((7, game.n_players)) < 0.5
    batched = game.log_probs(coalitions)
    one_at_a_time = np.concatenate([game.log_probs(row[None]) for row in coalitions])
    assert np.max(np.abs(batched - one_at_a_time)) <= 1e-6
    empty = game.log_probs(np.zeros((1, game.n_players), dtype=bool))[0]
    assert np.max(np.abs(empty - full)) > 1e-4  # masking every word changes the value


def test_the_greedy_response_is_the_models_own_greedy_output(loaded):
    import torch

    waveform, backends = loaded
    for name in [b for b in BACKENDS if b != "whisper"]:
        backend, segmentation = backends[name]
        game = backend.prepare(waveform, segmentation)
        inputs = model_inputs(backend, waveform, game.prompt)
        with torch.no_grad():
            generated = backend.model.generate(**inputs, do_sample=False, max_new_tokens=backend.max_new_tokens)
        assert generated[0, inputs["input_ids"].shape[1]:].tolist() == game.response.token_ids, name

    whisper, segmentation = backends["whisper"]
    game = whisper.prepare(waveform, segmentation)
    features = whisper.feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_features"]
    ids = list(game.prompt_ids)
    config = whisper.model.generation_config
    for step in range(whisper.max_new_tokens):  # greedy without the cache, from the model's plain forward
        with torch.no_grad():
            logits = whisper.model(input_features=features, decoder_input_ids=torch.tensor([ids])).logits[0, -1]
        if step == 0:
            logits[config.begin_suppress_tokens] = -float("inf")
        ids.append(int(logits.argmax()))
        if ids[-1] == config.eos_token_id:
            break
    assert ids[len(game.prompt_ids):] == game.response.token_ids


@pytest.mark.parametrize("name", BACKENDS)
def test_embedding_masking_changes_exactly_the_mapped_audio_positions(loaded, name):
    waveform, backends = loaded
    backend, segmentation = backends[name]
    game = backend.prepare(waveform, segmentation, masking="embedding")
    empty = np.zeros((1, game.n_players), dtype=bool)
    if name == "whisper":
        masked, full = game.encoder_states(empty)[0], game.full_states[0]
        positions = np.arange(full.shape[0])
    else:
        masked, full = game.input_embeddings(empty)[0][1][0], game.full_embeddings[0]
        positions = game.chat.audio_positions
    changed = (masked != full).any(dim=-1).numpy()
    owned = np.zeros(full.shape[0], dtype=bool)
    owned[positions[game.owner >= 0]] = True
    assert changed.tolist() == owned.tolist() and owned.sum() > 0
    assert (masked[owned] == 0).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_exact_explanations_are_efficient_and_null_players_get_zero(loaded, name):
    waveform, backends = loaded
    backend, segmentation = backends[name]
    explanation = sgpa.explain(waveform, segmentation, backend=backend, estimator="exact", sample_rate=16000)
    assert explanation.model["backend"] == name and explanation.method == "exact"
    assert explanation.efficiency_gap_total <= 1e-6
    assert explanation.cost.n_evaluations == 2**segmentation.n_words


def test_frozen_normalisation_keeps_present_words_features_and_per_input_is_the_feature_extractor(loaded):
    import torch

    from sgpa.attribution.masking import mask_waveform, word_sample_spans
    from sgpa.attribution.models.whisper_frontend import log_mel

    waveform, backends = loaded
    whisper, segmentation = backends["whisper"]
    extractor = whisper.feature_extractor
    own = extractor(waveform, sampling_rate=16000, return_tensors="pt")["input_features"]
    mine, full_max = log_mel(extractor, waveform[None])
    assert torch.max(torch.abs(mine - own)) <= 1e-4
    spans = word_sample_spans(segmentation, 16000, len(waveform))
    loudest = int(np.argmax([np.abs(waveform[a:b]).max() for a, b in spans]))
    present = np.ones(len(spans), dtype=bool)
    present[loudest] = False
    silenced = mask_waveform(waveform, spans, present, "silence")[None]
    frozen, _ = log_mel(extractor, silenced, full_max)
    far = np.ones(mine.shape[-1], dtype=bool)  # frames whose 25 ms window does not reach the silenced word
    start, end = spans[loudest] // 160
    far[max(0, start - 2): end + 3] = False
    assert torch.max(torch.abs(frozen[0][:, far] - mine[0][:, far])) <= 1e-5


def test_bad_input_gives_one_clear_error(loaded, folders):
    waveform, backends = loaded
    whisper, segmentation = backends["whisper"]
    too_long = np.tile(waveform, int(31 / (len(waveform) / 16000)) + 1)
    with pytest.raises(InputError, match="at most 30 s"):
        whisper.prepare(too_long, segmentation)
    with pytest.raises(InputError, match="task"):
        whisper.prepare(waveform, segmentation, prompt="transcribe translate")
    with pytest.raises(InputError, match="language 'xx'"):
        whisper.prepare(waveform, segmentation, prompt="transcribe xx")
    with pytest.raises(InputError, match="--grid whisper"):
        whisper.prepare(waveform, backends["qwen2-audio"][1])
    qwen, segmentation = backends["qwen2-audio"]
    with pytest.raises(InputError, match="shorten the prompt"):
        qwen.prepare(waveform, segmentation, prompt="word " * 2000)
    with pytest.raises(InputError, match="prompt with words"):
        qwen.prepare(waveform, segmentation, prompt=" ", text_players=True)
    with pytest.raises(InputError, match="no prompt words"):
        whisper.prepare(waveform, backends["whisper"][1], text_players=True)
    with pytest.raises(InputError, match="no shipped model"):
        load_backend(None, "whisper")


@pytest.mark.parametrize("name", BACKENDS)
def test_sgpa_explain_runs_each_backend_end_to_end(folders, name, tmp_path):
    command = [sys.executable, "-m", "sgpa.cli.main", "explain", str(AUDIO), "-t", TRANSCRIPT, "--model",
               str(folders[name]), "--estimator", "exact", "-o", str(tmp_path), "-q"]
    if name != "whisper":
        command += ["--prompt", "Which colour was mentioned?"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    explanation = json.loads((tmp_path / "slt_task_0000.explanation.json").read_text())
    assert explanation["model"]["backend"] == name and len(explanation["players"]) == 5
    assert (tmp_path / "slt_task_0000.explanation.png").is_file()

    long_audio = tmp_path / "long.wav"
    import soundfile

    soundfile.write(long_audio, np.zeros(16000 * 31, dtype=np.float32) + 0.01 * np.sin(np.arange(16000 * 31)), 16000)
    failed = subprocess.run([sys.executable, "-m", "sgpa.cli.main", "explain", str(long_audio), "-t", "a b c",
                             "--model", str(folders[name]), "-o", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=300)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and failed.stderr.startswith("sgpa: error:")
    assert not (tmp_path / "out" / "long.explanation.json").exists()


@pytest.mark.parametrize("name", BACKENDS)
def test_sgpa_bench_runs_each_backend(folders, name, tmp_path):
    import shutil

    shutil.copy(AUDIO, tmp_path / AUDIO.name)
    manifest = tmp_path / "manifest.jsonl"
    row = {"audio": AUDIO.name, "transcript": TRANSCRIPT}
    if name != "whisper":
        row["prompt"] = "Which colour was mentioned?"  # a Whisper prompt is a task, its default: transcribe
    manifest.write_text(json.dumps(row) + "\n")
    result = subprocess.run([sys.executable, "-m", "sgpa.cli.main", "bench", "--manifest", str(manifest),
                             "--quick", "-o", str(tmp_path / "bench"), "--model",
                             str(folders[name]), "--player-sets", "words,windows", "--masking", "embedding", "-q"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "bench" / "utterances.jsonl").read_text().splitlines()[0])
    assert set(record["player_sets"]) == {"words", "windows"} and record["words"] == TRANSCRIPT.split()
    assert (tmp_path / "bench" / "report.md").is_file()


@pytest.mark.parametrize("name", [b for b in BACKENDS if b != "whisper"])
def test_text_players_mask_exactly_their_prompt_tokens_and_report_the_audio_share(loaded, name):
    import torch

    waveform, backends = loaded
    backend, segmentation = backends[name]
    prompt = "Which colour was mentioned?"
    game = backend.prepare(waveform, segmentation, prompt=prompt, text_players=True, masking="embedding")
    assert game.player_names == TRANSCRIPT.split() + prompt.split() and not game.null_players.any()
    owned = game.text_owner >= 0
    chat_ids = game.chat.input_ids[0].tolist()
    assert backend.processor.tokenizer.decode([chat_ids[i] for i in np.flatnonzero(owned)]) == prompt
    embeddings = game.full_embeddings.clone()
    present = np.ones((1, 4), dtype=bool)
    present[0, 1] = False  # drop "colour"
    masked = game.mask_prompt(embeddings, present)[0]
    changed = (masked != game.full_embeddings[0]).any(dim=-1).numpy()
    assert changed.tolist() == (game.text_owner == 1).tolist() and changed.sum() >= 1
    assert torch.all(masked[changed] == 0)
    coalitions = np.random.default_rng(1).random((6, game.n_players)) < 0.5
    batched = game.log_probs(coalitions)
    assert np.max(np.abs(batched - np.concatenate([game.log_probs(row[None]) for row in coalitions]))) <= 1e-6
    explanation = sgpa.explain(waveform, segmentation, backend=backend, prompt=prompt, text_players=True,
                               estimator="kernel", budget=64, sample_rate=16000)  # efficiency is enforced exactly
    assert [p.kind for p in explanation.players] == ["word"] * 5 + ["text"] * 4
    assert 0 < explanation.details["audio_share"] < 1 and explanation.efficiency_gap_total <= 1e-6


@pytest.mark.parametrize("masking", ["embedding", "embedding-mean"])
def test_whispers_cross_attention_shortcut_equals_re_projecting_the_masked_encoder_states(loaded, masking):
    waveform, backends = loaded
    whisper, segmentation = backends["whisper"]
    game = whisper.prepare(waveform, segmentation, masking=masking)
    assert game.cross_full is not None
    coalitions = np.random.default_rng(2).random((8, game.n_players)) < 0.5
    shortcut = game.log_probs(coalitions)
    game.cross_full = None  # the plain path: mask the encoder states, let every layer project them
    assert np.max(np.abs(shortcut - game.log_probs(coalitions))) <= 1e-5
