"""Vocabulary, processor and architecture of the project's CTC model.

The vocabulary copies facebook/wav2vec2-base-960h's layout (special tokens, ``|`` as word delimiter, upper-case
letters, apostrophe) so that the rest of sgpa treats our model and the hub checkpoints the same way.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

SAMPLE_RATE = 16_000
BLANK_ID = 0  # "<pad>" doubles as the CTC blank, as in wav2vec2-base-960h
WORD_DELIMITER = "|"


#: Upper-case letters and apostrophe in facebook/wav2vec2-base-960h's order, so label ids match that model's.
LETTERS_960H = "ETAONIHSRDLUMWCFGYPBVK'XJQZ"


def character_vocabulary() -> dict[str, int]:
    """Token -> id map of wav2vec2-base-960h: ``<pad> <s> </s> <unk> |`` then the letters and ``'`` (32 entries)."""
    tokens = ["<pad>", "<s>", "</s>", "<unk>", WORD_DELIMITER, *LETTERS_960H]
    return {token: index for index, token in enumerate(tokens)}


ARCHITECTURES = ("wav2vec2", "wav2vec2-bert")


def ctc_training_settings(mask_feature_prob: float) -> dict:
    """Regularisation, SpecAugment and CTC-loss settings both architectures share.

    Light regularisation: an hour-long CPU budget underfits long before it overfits.
    """
    return dict(
        hidden_dropout=0.05,
        activation_dropout=0.05,
        attention_dropout=0.05,
        feat_proj_dropout=0.0,
        final_dropout=0.05,
        layerdrop=0.0,
        apply_spec_augment=True,
        mask_time_prob=0.05,
        mask_time_length=5,
        mask_feature_prob=mask_feature_prob,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        add_adapter=False,
    )


def build_tokenizer():
    """A ``Wav2Vec2CTCTokenizer`` over :func:`character_vocabulary`."""
    from transformers import Wav2Vec2CTCTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = Path(tmp) / "vocab.json"
        vocab_path.write_text(json.dumps(character_vocabulary()), encoding="utf-8")
        tokenizer = Wav2Vec2CTCTokenizer(
            str(vocab_path),
            unk_token="<unk>",
            pad_token="<pad>",
            bos_token="<s>",
            eos_token="</s>",
            word_delimiter_token=WORD_DELIMITER,
            do_lower_case=False,
        )
    return tokenizer


def build_processor(arch: str = "wav2vec2"):
    """Tokenizer and feature extractor in one processor object, as ``AutoProcessor`` loads them back.

    ``wav2vec2``: raw 16 kHz samples, normalised per utterance (``Wav2Vec2Processor``).
    ``wav2vec2-bert``: 80 log-mel bins every 10 ms, two frames stacked into one 160-dim vector every 20 ms,
    normalised per utterance and bin (``SeamlessM4TFeatureExtractor`` in a ``Wav2Vec2BertProcessor``).
    """
    from transformers import (
        SeamlessM4TFeatureExtractor,
        Wav2Vec2BertProcessor,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    tokenizer = build_tokenizer()
    if arch == "wav2vec2-bert":
        feature_extractor = SeamlessM4TFeatureExtractor(
            feature_size=80, num_mel_bins=80, sampling_rate=SAMPLE_RATE, stride=2, padding_value=0.0
        )
        return Wav2Vec2BertProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    if arch != "wav2vec2":
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    return Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)


def _shared_config(hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int) -> dict:
    """Config fields both architectures share: the character vocabulary's special ids and the transformer size."""
    vocab = character_vocabulary()
    return dict(
        vocab_size=len(vocab),
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
    )


def build_bert_config(
    hidden_size: int = 192,
    num_layers: int = 6,
    num_heads: int = 4,
    intermediate_size: int = 768,
    conv_kernel: int = 15,
):
    """A small from-scratch ``Wav2Vec2BertConfig``: conformer blocks over 20 ms log-mel frames, no subsampling.

    The output frame rate equals the input's (one frame per 20 ms), what the alignment needs. Rotary position
    embeddings keep the model free of a maximum length.
    """
    from transformers import Wav2Vec2BertConfig

    return Wav2Vec2BertConfig(
        **_shared_config(hidden_size, num_layers, num_heads, intermediate_size),
        feature_projection_input_dim=160,
        hidden_act="swish",
        conv_depthwise_kernel_size=conv_kernel,
        position_embeddings_type="rotary",
        conformer_conv_dropout=0.05,
        mask_feature_length=10,
        **ctc_training_settings(mask_feature_prob=0.05),
    )


def build_model(arch: str, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int):
    """A randomly initialised CTC model of architecture ``arch`` (see :data:`ARCHITECTURES`)."""
    if arch == "wav2vec2-bert":
        from transformers import Wav2Vec2BertForCTC

        return Wav2Vec2BertForCTC(build_bert_config(hidden_size, num_layers, num_heads, intermediate_size))
    from transformers import Wav2Vec2ForCTC

    return Wav2Vec2ForCTC(build_config(hidden_size, num_layers, num_heads, intermediate_size))


def build_config(
    hidden_size: int = 256,
    num_layers: int = 6,
    num_heads: int = 4,
    intermediate_size: int = 1024,
    conv_channels: tuple[int, ...] = (128, 256),
    conv_kernels: tuple[int, ...] = (80, 16),
    conv_strides: tuple[int, ...] = (20, 16),
):
    """A small from-scratch ``Wav2Vec2Config`` with a 20 ms output frame (total conv stride 320 samples).

    The convolutional front end is two layers instead of wav2vec2's seven 512-channel ones: a 5 ms learned
    filter bank every 1.25 ms, then a 20 ms window every 20 ms, so the front end costs a small fraction of the
    original per second of audio on a CPU. Layer norm in every conv layer and pre-norm transformer
    blocks (``do_stable_layer_norm``) make training from random weights stable.
    """
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        **_shared_config(hidden_size, num_layers, num_heads, intermediate_size),
        hidden_act="gelu",
        conv_dim=tuple(conv_channels),
        conv_kernel=tuple(conv_kernels),
        conv_stride=tuple(conv_strides),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
        use_weighted_layer_sum=False,
        **ctc_training_settings(mask_feature_prob=0.0),
    )


def frame_stride_samples(config) -> int:
    """Samples between consecutive output frames (the product of the conv strides)."""
    stride = 1
    for s in config.conv_stride:
        stride *= s
    return stride
