"""Randomly initialised LFM2-Audio checkpoints built offline from liquid-audio's own config classes.

Tests and benchmarks need a real ``LFM2AudioModel`` without the model hub: :func:`save_random_lfm2_audio`
builds one from ``LFM2AudioConfig`` (tiny, or the full 1.5 B architecture), and writes what
``LFM2AudioModel.from_pretrained`` / ``LFM2AudioProcessor.from_pretrained`` read from a local folder:
``config.json``, ``model.safetensors`` and a small character-level tokenizer that knows the special
tokens of the chat template. Timings taken on the full-size architecture are valid without the real weights;
the responses are not meaningful.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Ids the liquid-audio generation loop hard-codes (7 ends a turn, 128 starts audio output, 130 ends text
# in interleaved mode); the tiny tokenizer puts its special tokens at the same ids as LFM2's tokenizer.
SPECIAL_TOKEN_IDS = {
    "<|pad|>": 0,
    "<|startoftext|>": 1,
    "<|endoftext|>": 2,
    "<|im_start|>": 6,
    "<|im_end|>": 7,
    "<|audio_start|>": 128,
    "<|text_end|>": 130,
}
TINY_VOCAB_SIZE = 256


def preprocessor_config() -> dict[str, Any]:
    """LFM2-Audio's log-mel front end: 128 bins every 10 ms at 16 kHz."""
    return {
        "sample_rate": 16000,
        "normalize": "per_feature",
        "window_size": 0.025,
        "window_stride": 0.01,
        "window": "hann",
        "features": 128,
        "n_fft": 512,
        "log": True,
        "frame_splicing": 1,
        "dither": 1e-05,
        "pad_to": 0,
        "pad_value": 0.0,
    }


def encoder_config(full_size: bool) -> dict[str, Any]:
    """FastConformer with 8x subsampling (one output frame per 80 ms)."""
    return {
        "feat_in": 128,
        "feat_out": -1,
        "n_layers": 17 if full_size else 1,
        "d_model": 512 if full_size else 32,
        "subsampling": "dw_striding",
        "subsampling_factor": 8,
        "subsampling_conv_channels": 256 if full_size else 16,
        "causal_downsampling": False,
        "reduction": None,
        "reduction_position": None,
        "reduction_factor": 1,
        "ff_expansion_factor": 4 if full_size else 2,
        "self_attention_model": "rel_pos",
        "n_heads": 8 if full_size else 2,
        "att_context_size": [-1, -1],
        "xscaling": False,
        "untie_biases": True,
        "pos_emb_max_len": 5000,
        "conv_kernel_size": 9,
        "conv_norm_type": "batch_norm",
        "conv_context_size": None,
        "dropout": 0.0,
        "dropout_pre_encoder": 0.0,
        "dropout_emb": 0.0,
        "dropout_att": 0.0,
    }


def lfm_config(full_size: bool) -> dict[str, Any]:
    """The LFM2 backbone: at full size the LFM2-1.2B text model LFM2-Audio-1.5B builds on (16 layers, 6 of them
    attention, hidden size 2048; transformers' ``Lfm2Config()`` defaults describe a larger model)."""
    from transformers import Lfm2Config

    if full_size:
        attention_layers = {2, 5, 8, 10, 12, 14}
        config = Lfm2Config(
            vocab_size=65536,
            hidden_size=2048,
            intermediate_size=12288,  # adjusted by block_auto_adjust_ff_dim to 8192, as in LFM2-1.2B
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            layer_types=["full_attention" if i in attention_layers else "conv" for i in range(16)],
            max_position_embeddings=128000,
            rope_theta=1000000.0,
            conv_L_cache=3,
            block_auto_adjust_ff_dim=True,
            block_ffn_dim_multiplier=1.0,
            block_multiple_of=256,
        )
    else:
        config = Lfm2Config(
            vocab_size=TINY_VOCAB_SIZE,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            layer_types=["conv", "full_attention"],
            max_position_embeddings=4096,
        )
    return config.to_dict()


def lfm2_audio_config(full_size: bool = False) -> dict[str, Any]:
    """The whole ``config.json`` of an LFM2-Audio checkpoint."""
    return {
        "architectures": ["LFM2AudioModel"],
        "codebooks": 8,
        "tie_audio_embeddings": False,
        "semantic_codebook_factor": 100,
        "codebook_weight": "log",
        "interleaved_n_text": 6,
        "interleaved_n_audio": 12,
        "preprocessor": preprocessor_config(),
        "encoder": encoder_config(full_size),
        "lfm": lfm_config(full_size),
        "depthformer": {"layers": 6 if full_size else 1, "dim": 1024 if full_size else 32, "tie": True},
    }


def save_character_tokenizer(directory: Path, vocab_size: int) -> None:
    """A character-level tokenizer (``tokenizer.json``) with LFM2's special tokens at LFM2's ids.

    Printable ASCII characters fill the free ids; anything else becomes ``<|unk|>``.
    """
    from tokenizers import Tokenizer, decoders, models

    vocab: dict[str, int] = dict(SPECIAL_TOKEN_IDS)
    vocab["<|unk|>"] = 3
    free_ids = (i for i in range(vocab_size) if i not in vocab.values())
    for character in [chr(c) for c in range(32, 127)] + ["\n", "\t"]:
        vocab[character] = next(free_ids)
    for i in free_ids:
        vocab[f"<|reserved_{i}|>"] = i
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|unk|>"))
    tokenizer.decoder = decoders.Fuse()  # characters join without spaces
    save_chat_tokenizer(tokenizer, directory)


def save_chat_tokenizer(tokenizer: Any, directory: Path) -> None:
    """Save a ``tokenizers.Tokenizer`` as a transformers fast tokenizer with LFM2's chat special tokens."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|startoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token="<|unk|>",
        additional_special_tokens=[t for t in SPECIAL_TOKEN_IDS if t not in {"<|pad|>", "<|startoftext|>", "<|im_end|>"}],
    )
    fast.save_pretrained(str(directory))


def config_object(config: dict[str, Any]) -> Any:
    """``LFM2AudioConfig`` from a ``config.json`` dictionary, the way ``from_pretrained`` builds it."""
    from liquid_audio.model.conformer.encoder import ConformerEncoderConfig
    from liquid_audio.model.lfm2_audio import DepthformerConfig, LFM2AudioConfig
    from liquid_audio.processor import PreprocessorConfig
    from transformers import Lfm2Config

    nested = {"preprocessor", "encoder", "lfm", "depthformer"}
    return LFM2AudioConfig(
        **{k: v for k, v in config.items() if k not in nested},
        preprocessor=PreprocessorConfig(**config["preprocessor"]),
        encoder=ConformerEncoderConfig(**config["encoder"]),
        lfm=Lfm2Config(**config["lfm"]),
        depthformer=DepthformerConfig(**config["depthformer"]),
    )


def save_random_lfm2_audio(directory: str | Path, *, full_size: bool = False, seed: int = 0) -> Path:
    """Build an ``LFM2AudioModel`` with random weights and save it as a local checkpoint folder.

    Parameters
    ----------
    directory : folder to write ``config.json``, ``model.safetensors`` and the tokenizer files into.
    full_size : the LFM2-Audio-1.5B architecture (about 1.45 B parameters, 5.8 GB on disk) instead of a
        2.8 M-parameter toy.
    seed : torch seed for the random weights.

    Returns
    -------
    The folder, as a ``pathlib.Path`` (liquid-audio treats a plain string as a hub id).
    """
    import safetensors.torch
    import torch
    from liquid_audio import LFM2AudioModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = lfm2_audio_config(full_size)
    torch.manual_seed(seed)
    model = LFM2AudioModel(config_object(config))
    (directory / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    safetensors.torch.save_model(model, str(directory / "model.safetensors"), metadata={"format": "pt"})
    save_character_tokenizer(directory, vocab_size=config["lfm"]["vocab_size"])
    return directory
