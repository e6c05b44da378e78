"""Shared fixtures: tiny real models built offline, real synthesised speech.

``tiny_ctc_model_dir`` is session-scoped and meant for every test that needs a CTC model: a
randomly initialised Wav2Vec2ForCTC (same convolutional front end as wav2vec2-base, so 20 ms
frames) with the character vocabulary of facebook/wav2vec2-base-960h, saved with
``save_pretrained`` so it loads through the same ``from_pretrained`` path as a real model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

#: The character vocabulary of facebook/wav2vec2-base-960h, in its order.
WAV2VEC2_960H_VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]


@pytest.fixture(scope="session")
def tiny_ctc_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny random Wav2Vec2ForCTC and its processor (about 0.1 M parameters)."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    directory = tmp_path_factory.mktemp("tiny_ctc_model")
    vocab_path = directory / "vocab.json"
    vocab_path.write_text(json.dumps({token: index for index, token in enumerate(WAV2VEC2_960H_VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_path), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|", do_lower_case=False
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    config = Wav2Vec2Config(
        vocab_size=len(WAV2VEC2_960H_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
        do_stable_layer_norm=False,
        feat_extract_norm="group",
        mask_time_prob=0.0,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_acoustic_model(tiny_ctc_model_dir: Path):
    """The tiny CTC model loaded once through :func:`sgpa.ctc.load_ctc_model`."""
    import torch

    torch.set_num_threads(1)
    from sgpa.ctc import load_ctc_model

    return load_ctc_model(tiny_ctc_model_dir)


def synthesise_flite(text: str, path: Path, voice: str = "kal16") -> Path:
    """Speak ``text`` with flite into a 16 kHz wav file."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def flite_speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A short utterance of real synthetic speech: (wav path at 16 kHz, transcript)."""
    text = "the quick brown fox jumps over the lazy dog"
    path = synthesise_flite(text, tmp_path_factory.mktemp("speech") / "fox.wav")
    return path, text


def tone(duration_s: float, sample_rate: int = 16000, frequency_hz: float = 220.0, amplitude: float = 0.3):
    """A sine tone, float32 ``[n_samples]``: a cheap stand-in for a voiced sound."""
    times = np.arange(int(duration_s * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * times)).astype(np.float32)


@pytest.fixture(scope="session")
def backend_with_mask_vector(tiny_ctc_model_dir: Path):
    """The tiny CTC model as an explanation backend, with a SpecAugment mask vector (created when
    ``mask_time_prob > 0``), so that embedding masking is available too."""
    import dataclasses

    from transformers import Wav2Vec2ForCTC

    from sgpa.attribution.models.ctc import CtcBackend
    from sgpa.ctc import load_ctc_model

    acoustic_model = load_ctc_model(tiny_ctc_model_dir)
    model = Wav2Vec2ForCTC.from_pretrained(tiny_ctc_model_dir, mask_time_prob=0.05).eval()
    return CtcBackend(dataclasses.replace(acoustic_model, model=model))

