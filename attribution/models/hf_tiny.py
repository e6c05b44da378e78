"""Randomly initialised Whisper, Qwen2-Audio and Voxtral checkpoints built offline from transformers' config classes.

Tests and benchmarks need real ``WhisperForConditionalGeneration`` / ``Qwen2AudioForConditionalGeneration`` /
``VoxtralForConditionalGeneration`` models without the model hub. Each builder writes what ``from_pretrained``
reads from a local folder: ``config.json``, ``model.safetensors``, ``generation_config.json``, the log-mel front end
(``WhisperFeatureExtractor``) and a small tokenizer holding the model's special tokens: character-level for Whisper
and Qwen2-Audio (with Qwen2-Audio's processor and chat template), a byte-level tekken tokenizer for Voxtral
(mistral-common's format, with [AUDIO] at id 24 as ``VoxtralProcessor`` expects). ``full_size=True`` gives the real
architecture (random weights) for timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Whisper's special tokens the backend uses (a real checkpoint has ~1,600 of them; the rest play no part here).
WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|fr|>", "<|transcribe|>",
                    "<|translate|>", "<|notimestamps|>"]
QWEN2_AUDIO_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]


def character_tokenizer(specials: list[str], eos_token: str, pad_token: str) -> Any:
    """A transformers fast tokenizer: ``specials`` at ids 0, 1, …, then printable ASCII one character per token."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(specials)}
    for character in [chr(c) for c in range(32, 127)] + ["\n"]:
        vocab[character] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tokenizer.decoder = decoders.Fuse()  # characters join without spaces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos_token, pad_token=pad_token,
                                   additional_special_tokens=[t for t in specials if t not in (eos_token, pad_token)])


def random_whisper(*, full_size: bool = False, seed: int = 0) -> tuple[Any, Any, Any]:
    """``(model, feature_extractor, tokenizer)``: a ``WhisperForConditionalGeneration`` with random weights (tiny, or
    whisper-large-v3's architecture) and a generation config naming the decoder prompt tokens."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    tokenizer = character_tokenizer(WHISPER_SPECIALS, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in WHISPER_SPECIALS}
    n_mels = 128 if full_size else 80
    size = dict(d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
                decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120) if full_size else \
        dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
             encoder_ffn_dim=32, decoder_ffn_dim=32)
    config = WhisperConfig(
        vocab_size=51866 if full_size else len(tokenizer), num_mel_bins=n_mels, max_source_positions=1500,
        max_target_positions=448 if full_size else 64, decoder_start_token_id=ids["<|startoftranscript|>"],
        pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
        **size,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], is_multilingual=True, no_timestamps_token_id=ids["<|notimestamps|>"],
        lang_to_id={"<|en|>": ids["<|en|>"], "<|fr|>": ids["<|fr|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        suppress_tokens=[], begin_suppress_tokens=[tokenizer.convert_tokens_to_ids(" "), ids["<|endoftext|>"]],
    )
    return model.eval(), WhisperFeatureExtractor(feature_size=n_mels), tokenizer


def save_random_whisper(directory: str | Path, *, full_size: bool = False, seed: int = 0) -> Path:
    """:func:`random_whisper` saved as a local checkpoint folder (model, feature extractor, tokenizer)."""
    directory = Path(directory)
    for part in random_whisper(full_size=full_size, seed=seed):
        part.save_pretrained(directory)
    return directory


def random_qwen2_audio(*, full_size: bool = False, seed: int = 0) -> tuple[Any, Any]:
    """``(model, processor)``: a ``Qwen2AudioForConditionalGeneration`` with random weights (tiny, or Qwen2-Audio-7B's
    architecture) and a ``Qwen2AudioProcessor`` (Whisper log-mel front end, tokenizer, the default chat template)."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = character_tokenizer(QWEN2_AUDIO_SPECIALS, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    n_mels = 128 if full_size else 80
    audio = dict(num_mel_bins=n_mels, max_source_positions=1500)
    audio.update(dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120) if full_size
                 else dict(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32))
    text = dict(model_type="qwen2", vocab_size=156032 if full_size else len(tokenizer), max_position_embeddings=8192)
    text.update(dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=32) if full_size else
                dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2))
    config = Qwen2AudioConfig(audio_config=audio, text_config=text,
                              audio_token_id=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                            tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    processor = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=n_mels), tokenizer=tokenizer)
    return model.eval(), processor


def save_random_qwen2_audio(directory: str | Path, *, full_size: bool = False, seed: int = 0) -> Path:
    """:func:`random_qwen2_audio` saved as a local checkpoint folder (model and processor)."""
    directory = Path(directory)
    for part in random_qwen2_audio(full_size=full_size, seed=seed):
        part.save_pretrained(directory)
    return directory


#: Voxtral's tekken special tokens, in their ranks: [AUDIO] must be 24 (``VoxtralProcessor`` hard-codes it).
VOXTRAL_SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
                    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
                    "[ARGS]", "[CALL_ID]", "<SPECIAL_22>", "<SPECIAL_23>", "[AUDIO]", "[BEGIN_AUDIO]", "[TRANSCRIBE]"]
VOXTRAL_NUM_SPECIAL = 32
#: tiktoken's split pattern for tekken tokenizers (as in Mistral's own tekken.json files)
TEKKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
                  r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def write_tekken_tokenizer(directory: Path, n_mels: int, vocab_size: int = 256 + VOXTRAL_NUM_SPECIAL) -> Path:
    """A byte-level ``tekken.json`` (:data:`VOXTRAL_NUM_SPECIAL` special tokens, then the 256 bytes, then — for a
    full-size ``vocab_size`` — byte pairs and triples, so that every id a random model emits decodes) with Voxtral's
    audio settings: 12.5 audio tokens per second, 30 s chunks."""
    import base64
    import itertools
    import json

    n_tokens = vocab_size - VOXTRAL_NUM_SPECIAL
    pieces = itertools.chain((bytes([i]) for i in range(256)), (bytes(p) for p in itertools.product(range(256), repeat=2)),
                             (bytes(p) for p in itertools.product(range(256), repeat=3)))
    vocab = [{"rank": i, "token_bytes": base64.b64encode(piece).decode("ascii"),
              "token_str": chr(piece[0]) if len(piece) == 1 and 32 <= piece[0] < 127 else None}
             for i, piece in zip(range(n_tokens), pieces)]
    tekken = {
        "config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": n_tokens, "default_vocab_size": vocab_size,
                   "default_num_special_tokens": VOXTRAL_NUM_SPECIAL, "version": "v7"},
        "vocab": vocab,
        "special_tokens": [{"rank": i, "token_str": t, "is_control": True} for i, t in enumerate(VOXTRAL_SPECIALS)],
        "audio": {"sampling_rate": 16000, "frame_rate": 12.5, "chunk_length_s": 30.0,
                  "audio_encoding_config": {"num_mel_bins": n_mels, "hop_length": 160, "window_size": 400}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tekken.json"
    path.write_text(json.dumps(tekken), encoding="utf-8")
    return path


def random_voxtral(directory: str | Path, *, full_size: bool = False, seed: int = 0, dtype: Any = None) -> tuple[Any, Any]:
    """``(model, processor)``: a ``VoxtralForConditionalGeneration`` with random weights (tiny, or Voxtral-Mini-3B's
    architecture; ``dtype`` e.g. ``torch.bfloat16`` to halve its memory) and a ``VoxtralProcessor`` (Whisper log-mel
    front end, tekken tokenizer; needs mistral-common). The tokenizer file is written into ``directory``."""
    import torch
    from transformers import VoxtralConfig, VoxtralForConditionalGeneration, VoxtralProcessor, WhisperFeatureExtractor
    from transformers.tokenization_mistral_common import MistralCommonBackend

    directory = Path(directory)
    n_mels = 128 if full_size else 80
    audio = dict(num_mel_bins=n_mels, max_source_positions=1500)
    audio.update(dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20)
                 if full_size else dict(hidden_size=16, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2))
    text = dict(model_type="llama", vocab_size=131072 if full_size else 256 + VOXTRAL_NUM_SPECIAL,
                max_position_embeddings=32768 if full_size else 4096)
    text.update(dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=30, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128) if full_size else
                dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=8))
    config = VoxtralConfig(audio_config=audio, text_config=text, audio_token_id=VOXTRAL_SPECIALS.index("[AUDIO]"))
    torch.manual_seed(seed)
    default_dtype = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        model = VoxtralForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model.generation_config.eos_token_id = VOXTRAL_SPECIALS.index("</s>")
    tekken = write_tekken_tokenizer(directory, n_mels, vocab_size=text["vocab_size"])
    tokenizer = MistralCommonBackend.from_pretrained(str(tekken.parent))
    return model.eval(), VoxtralProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=n_mels),
                                          tokenizer=tokenizer)


def save_random_voxtral(directory: str | Path, *, full_size: bool = False, seed: int = 0) -> Path:
    """:func:`random_voxtral` saved as a local checkpoint folder (model, processor, tekken.json)."""
    directory = Path(directory)
    for part in random_voxtral(directory, full_size=full_size, seed=seed):
        part.save_pretrained(directory)
    return directory
