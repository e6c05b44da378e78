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
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": make_task_sentence(rng), "split": "train",
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
