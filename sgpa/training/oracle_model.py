"""The oracle LFM2-Audio model's architecture and tokenizer (see ``sgpa/models/sgpa-lfm2-oracle/README.md``).

A compact ``LFM2AudioModel`` built from liquid-audio's own config classes, with a tokenizer whose tokens are
the task vocabulary's words (:func:`sgpa.corpus.tasks.task_vocabulary`) on top of single characters, so that
every answer of the spoken tasks is one token followed by ``<|im_end|>``, while any other text still encodes
(character by character).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sgpa.attribution.models.lfm2_tiny import SPECIAL_TOKEN_IDS, lfm2_audio_config, save_chat_tokenizer

# Words written capitalised in the prompts (the first word of a question, "I", "ASR").
CAPITALISED = ("which", "did", "say", "perform", "i", "asr")
CHAT_ROLES = ("system", "user", "assistant")


def oracle_config(vocab_size: int) -> dict[str, Any]:
    """``config.json`` of the oracle: LFM2-Audio's front end and layout, scaled down to train on a CPU.

    FastConformer: 4 layers, d_model 144, 8x subsampling (one embedding per 80 ms, as LFM2-Audio-1.5B);
    LFM2 backbone: 4 layers (short convolution, attention, convolution, attention), hidden 192.
    """
    config = lfm2_audio_config(full_size=False)
    config["encoder"].update(
        n_layers=4, d_model=144, n_heads=4, ff_expansion_factor=4, subsampling_conv_channels=64,
        dropout=0.1, dropout_att=0.1,
    )
    config["lfm"].update(
        vocab_size=vocab_size, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2,
        layer_types=["conv", "full_attention", "conv", "full_attention"], block_auto_adjust_ff_dim=False,
    )
    config["depthformer"] = {"layers": 1, "dim": 32, "tie": True}
    config["tie_audio_embeddings"] = True  # audio output is never trained or used: keep its tables small
    return config


def word_token_strings(words: list[str]) -> list[str]:
    """The strings that become single tokens: each word with and without a leading space, capitalised forms of
    :data:`CAPITALISED`, and the chat roles."""
    strings: list[str] = []
    for word in words:
        forms = [word, " " + word]
        if word in CAPITALISED:
            shown = word.upper() if word == "asr" else word.capitalize()
            forms += [shown, " " + shown]
        strings += forms
    return list(dict.fromkeys(strings + list(CHAT_ROLES)))


# One pre-token per word with its leading space, per digit, per other character: with ``ignore_merges`` a
# pre-token that is in the vocabulary is one token, and anything else falls back to single characters.
PRE_TOKEN_PATTERN = r" ?[A-Za-z']+| ?[0-9]| ?[^A-Za-z0-9\s]|\s"


def save_word_tokenizer(directory: Path, words: list[str], multiple_of: int = 64) -> int:
    """Write a fast BPE tokenizer (``tokenizer.json`` + config) with LFM2's special tokens at LFM2's ids,
    printable ASCII characters, and every task word as one token. Returns the vocabulary size (a multiple of
    ``multiple_of``, padded with reserved tokens)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab: dict[str, int] = dict(SPECIAL_TOKEN_IDS)
    vocab["<|unk|>"] = 3
    pieces = [chr(c) for c in range(32, 127)] + ["\n", "\t"] + word_token_strings(words)
    next_id = 0
    for piece in dict.fromkeys(pieces):
        if piece in vocab:
            continue
        while next_id in vocab.values():
            next_id += 1
        vocab[piece] = next_id
        next_id += 1
    size = -(-max(max(vocab.values()) + 1, 131) // multiple_of) * multiple_of
    for i in range(size):
        if i not in vocab.values():
            vocab[f"<|reserved_{i}|>"] = i
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|unk|>", ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(PRE_TOKEN_PATTERN), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    save_chat_tokenizer(tokenizer, directory)
    return size
