"""The CTC training code: labels, batching, decoding, the training loop end to end on real flite speech."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sgpa.training.data import duration_batches, transcript_to_labels
from sgpa.training.metrics import character_error_rate, edit_distance, greedy_decode
from sgpa.training.model import character_vocabulary

from conftest import synthesise_flite

TINY = ["--hidden-size", "32", "--layers", "1", "--heads", "2", "--intermediate-size", "64"]


def test_labels_spell_numerals_and_separate_words():
    vocab = character_vocabulary()
    id_to_token = {i: t for t, i in vocab.items()}
    labels = transcript_to_labels("Nora kept 25 boxes", vocab)
    assert "".join(id_to_token[i] for i in labels) == "NORA|KEPT|TWENTY|FIVE|BOXES"


def test_greedy_decode_collapses_repeats_but_not_across_blanks():
    vocab = character_vocabulary()
    id_to_token = {i: t for t, i in vocab.items()}
    e, l, blank, bar = vocab["E"], vocab["L"], 0, vocab["|"]
    frames = np.array([blank, e, e, blank, l, l, blank, l, bar, bar, e, blank])
    assert greedy_decode(frames, id_to_token) == "ELL E"


def test_character_error_rate_counts_edits_over_reference_length():
    assert edit_distance("KITTEN", "SITTING") == 3
    assert character_error_rate(["AB", "CD"], ["AB", "XD"]) == pytest.approx(0.25)


def test_duration_batches_cover_every_utterance_once_within_budget():
    rng = np.random.default_rng(0)
    durations = rng.uniform(0.5, 6.0, size=200)
    batches = duration_batches(durations, max_batch_s=12.0, rng=rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(200))
    for batch in batches:
        assert len(batch) == 1 or durations[batch].max() * len(batch) <= 12.0


@pytest.mark.parametrize("arch", ["wav2vec2", "wav2vec2-bert"])
def test_both_architectures_emit_one_frame_per_20_ms(arch):
    import torch

    from sgpa.training.model import build_model, build_processor

    processor = build_processor(arch)
    model = build_model(arch, 32, 1, 2, 64).eval()
    lengths = []
    for seconds in (1, 3):
        inputs = processor.feature_extractor(np.zeros(16000 * seconds, np.float32), sampling_rate=16000, return_tensors="pt")
        with torch.inference_mode():
            lengths.append(model(**inputs).logits.shape[1])
    assert (lengths[1] - lengths[0]) == 100


def test_tiny_model_overfits_one_utterance(tmp_path):
    import torch

    from sgpa.training.data import TrainingUtterance, collate, precompute_features
    from sgpa.training.model import build_model, build_processor
    from sgpa.training.train_ctc import batch_loss

    torch.manual_seed(0)
    text = "red box"
    wav = synthesise_flite(text, tmp_path / "x.wav")
    import soundfile

    samples, _ = soundfile.read(wav, dtype="float32")
    utt = TrainingUtterance("x", text, samples, transcript_to_labels(text), "train")
    processor = build_processor("wav2vec2-bert")
    precompute_features([utt], processor.feature_extractor)
    model = build_model("wav2vec2-bert", 64, 1, 2, 128)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = collate([utt], processor)
    losses = []
    for _ in range(60):
        loss, _ = batch_loss(model, batch, frame_duration_s=0.02, timed=False)  # no word times: plain CTC
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def _tiny_corpus(folder: Path) -> Path:
    texts = ["the red box", "call me at 5", "a small dog ran", "near the river"]
    with open(folder / "manifest.jsonl", "w") as manifest:
        for index, text in enumerate(texts):
            synthesise_flite(text, folder / f"u{index}.wav", voice="kal16")
            manifest.write(json.dumps({"id": f"u{index}", "audio": f"u{index}.wav", "text": text, "split": "train"}) + "\n")
        manifest.write(json.dumps({"id": "h", "audio": "u0.wav", "text": "the red box", "split": "heldout"}) + "\n")
    return folder


def test_training_run_saves_a_loadable_model_and_resumes(tmp_path):
    import torch
    from transformers import AutoModelForCTC, AutoProcessor

    from sgpa.training.train_ctc import main

    torch.set_num_threads(1)
    corpus = _tiny_corpus(tmp_path)
    out, work = tmp_path / "model", tmp_path / "work"
    common = ["--arch", "wav2vec2-bert", "--corpus", str(corpus), "--out", str(out), "--work-dir", str(work), "--dev-fraction", "0.25", *TINY]
    main([*common, "--max-steps", "2", "--batch-seconds", "3", "--threads", "1"])
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 2
    assert summary["train_utterances"] == 3 and summary["dev_utterances"] == 1  # held-out split never read

    model = AutoModelForCTC.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert processor.tokenizer.get_vocab() == character_vocabulary()
    assert model.config.vocab_size == 32
    assert not getattr(model.config, "sgpa_delimiter_in_gap", False)  # no word times in this corpus: plain CTC

    main([*common, "--max-steps", "4", "--batch-seconds", "3", "--threads", "1", "--resume"])
    assert json.loads((out / "training_summary.json").read_text())["steps"] == 4


def test_init_copies_a_saved_model_and_refuses_another_size(tmp_path):
    import torch

    from sgpa.errors import InputError
    from sgpa.training.model import build_model
    from sgpa.training.train_ctc import init_from

    sizes = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    saved = build_model("wav2vec2", **sizes)
    saved.save_pretrained(tmp_path / "saved")
    fresh = build_model("wav2vec2", **sizes)
    name = "lm_head.weight"
    assert not torch.equal(fresh.state_dict()[name], saved.state_dict()[name])
    init_from(fresh, tmp_path / "saved")
    for key, value in saved.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    with pytest.raises(InputError, match="same --arch"):
        init_from(build_model("wav2vec2", **{**sizes, "hidden_size": 64}), tmp_path / "saved")
