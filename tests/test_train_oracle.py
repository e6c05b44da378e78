"""The oracle model's training loop, run for a few steps on a tiny corpus of real wav files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest_lfm2 import speechlike_audio

from sgpa.corpus.tasks import make_task_sentence


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    import soundfile

    folder = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        audio = speechlike_audio(1.0 + 0.2 * i, seed=i)
        soundfile.write(folder / f"u{i}.wav", audio, 16000, subtype="PCM_16")
        text = make_task_sentence(rng)
        words = text.split()
        step_s = len(audio) / 16000 / len(words)  # made-up word times tiling the clip, with short gaps
        timed = [{"text": w, "start": k * step_s + 0.01, "end": (k + 1) * step_s - 0.01} for k, w in enumerate(words)]
        (folder / f"u{i}.json").write_text(json.dumps({"words": timed}))
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "json": f"u{i}.json", "text": text, "split": "train",
                     "engine": "test", "voice": "test"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def train(corpus: Path, out: Path, *extra: str) -> None:
    from sgpa.training.train_oracle import main

    main(["--corpus", str(corpus), "--out", str(out), "--batch-utterances", "3", "--dev-fraction", "0.25",
          "--max-dev", "2", "--threads", "1", "--eval-minutes", "100", *extra])


def test_trains_saves_float16_weights_that_load_like_a_hub_checkpoint_and_resumes(corpus, tmp_path):
    import safetensors
    import torch

    from sgpa.attribution.models.lfm2_audio import Lfm2AudioBackend

    out = tmp_path / "oracle"
    train(corpus, out, "--max-steps", "3")
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 3 and summary["train_utterances"] == 6 and summary["dev_utterances"] == 2
    with safetensors.safe_open(str(out / "model.safetensors"), "pt") as weights:
        dtypes = {weights.get_tensor(k).dtype for k in weights.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes

    backend = Lfm2AudioBackend.load(out, max_new_tokens=3)
    best = torch.load(out.with_name("oracle.work") / "best.pt", weights_only=True)
    loaded = backend.model.state_dict()
    name = "lfm.embed_tokens.weight"
    assert torch.equal(loaded[name], best[name].half().float())  # what was trained, rounded to float16
    assert isinstance(backend.answer(speechlike_audio(1.0, seed=9), "Which colour was mentioned?"), str)

    train(corpus, out, "--max-steps", "5", "--resume")
    assert json.loads((out / "training_summary.json").read_text())["steps"] == 5
    history = json.loads((out.with_name("oracle.work") / "history.json").read_text())
    assert [h["step"] for h in history] == [3, 5]  # the resumed run continued the first one's history

    # a saved model folder (as shipped) is a starting point: with no step taken, the same weights come out
    restarted = tmp_path / "restarted"
    train(corpus, restarted, "--max-steps", "0", "--init", str(out))
    with safetensors.safe_open(str(out / "model.safetensors"), "pt") as before, \
            safetensors.safe_open(str(restarted / "model.safetensors"), "pt") as after:
        assert set(before.keys()) == set(after.keys())
        assert all(torch.equal(before.get_tensor(k), after.get_tensor(k)) for k in before.keys())


def test_word_segments_in_mel_frames_tile_short_gaps_and_leave_pauses_out():
    from sgpa.training.train_oracle import word_mel_frames

    times = [(0.10, 0.30), (0.34, 0.60), (1.00, 1.20)]  # 40 ms gap (split), then a 400 ms pause (kept out)
    frames = word_mel_frames(times, n_frames=125, min_pause_s=0.2)
    np.testing.assert_array_equal(frames, [[10, 32], [32, 60], [100, 120]])
    assert word_mel_frames([(0.0, 2.0)], n_frames=150, min_pause_s=0.2).tolist() == [[0, 150]]  # clipped to the audio


def test_masked_words_are_zeroed_where_each_masking_removes_them_and_answers_follow(corpus):
    import torch

    from liquid_audio import LFM2AudioProcessor

    from sgpa.corpus.tasks import slot_word, task_vocabulary
    from sgpa.training.oracle_model import oracle_config, save_word_tokenizer
    from sgpa.training.train_oracle import OracleTrainer, load_task_utterances, zero_absent_tokens

    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    vocabulary = task_vocabulary()
    tokenizer_dir = corpus.parent / "masking_tokenizer"
    vocab_size = save_word_tokenizer(tokenizer_dir, vocabulary)
    (tokenizer_dir / "config.json").write_text(json.dumps(oracle_config(vocab_size)))
    processor = LFM2AudioProcessor.from_pretrained(tokenizer_dir, device="cpu")
    (u,) = load_task_utterances(rows[:1], corpus, processor, {w: i for i, w in enumerate(vocabulary)})
    assert u.word_frames is not None and len(u.word_frames) == len(u.text.split())

    class Recorder:  # stands in for the conformer: returns what it was given
        _feat_out = 4

        def __call__(self, mel, lengths):
            self.mel = mel
            return mel[:, :4, ::8].mT.contiguous().mT, lengths

    model = type("M", (), {"conformer": Recorder()})()
    trainer = OracleTrainer(model, processor.text, len(vocabulary), 2, 0.3, word_mask_fraction=1.0)
    slot, _, _ = slot_word(u.text)
    absent = [(frozenset({slot}), "encoder-input")]
    trainer.encode([u], None, absent)
    start, end = u.word_frames[slot]
    mel = model.conformer.mel[0].numpy()
    assert np.all(mel[:, start:end] == 0) and np.array_equal(mel[:, :start], u.mel[:, :start].astype(np.float32))
    pairs = trainer.examples([u], np.random.default_rng(0), tasks=["slot", "yes", "control"], absent=absent)
    assert [e.answer for _, e in pairs][:2] == ["none", "no"]

    embeddings = torch.ones(u.n_audio, 3)
    zeroed = zero_absent_tokens(embeddings, u, frozenset({slot}), "embedding")
    gone = (zeroed == 0).all(dim=1).numpy()
    inside = np.arange(u.n_audio) * 8 + 4  # each token's middle mel frame
    assert gone.any() and np.all(gone <= ((inside >= start - 4) & (inside < end + 4)))
    assert torch.equal(zero_absent_tokens(embeddings, u, frozenset({slot}), "encoder-input"), embeddings)

    draws = trainer.draw_absent([u] * 200, np.random.default_rng(1))
    sizes = np.array([len(a) for a, _ in draws])
    assert sizes.min() == 1 and sizes.max() == len(u.word_frames)  # every coalition size occurs
    assert {m for _, m in draws} == {"encoder-input", "embedding"}


def test_training_with_masked_words_runs(corpus, tmp_path):
    out = tmp_path / "masked"
    train(corpus, out, "--max-steps", "2", "--word-mask-fraction", "1.0")
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["args"]["word_mask_fraction"] == 1.0
    # the checkpoint is chosen on dev questions heard whole and with words masked: both scored, score their mean
    (last,) = summary["history"]
    whole = [last[t] for t in ("slot", "none", "yes", "no", "control")]
    masked = [last[f"masked {t}"] for t in ("slot", "none", "yes", "no", "control")]
    assert last["score"] == pytest.approx(np.mean(whole + masked), abs=1e-4)
