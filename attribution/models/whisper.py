"""Whisper backend (``WhisperForConditionalGeneration`` through transformers).

The reference response is Whisper's greedy transcription (or translation) of the full utterance: the decoder starts
from ``<|startoftranscript|>`` (then, for a multilingual model, the language and task tokens) and
``<|notimestamps|>``, and takes the most probable token until ``<|endoftext|>``, with the checkpoint's
``suppress_tokens`` / ``begin_suppress_tokens`` applied as ``generate`` applies them. A coalition's value is the
teacher-forced log-probability of every response token.

The players' audio positions are the encoder's outputs, one per 20 ms (a stride-2 convolution over 10 ms log-mel
frames) over the 30 s window; positions past the end of the audio are padding, never masked. Maskings:
``embedding`` / ``embedding-mean`` replace an absent word's encoder outputs (what the decoder cross-attends to) by
zeros or by the utterance's mean output, the encoder running once (and, since cross-attention keys and values are
per-position linear maps of those outputs, each decoder layer's keys and values are computed once for the full
outputs and once for the baseline, then selected per position: no coalition re-projects 1,500 positions); ``silence``, ``noise`` and ``deletion`` change
the waveform and re-encode every coalition (the default, ``silence``: the encoder attends over the whole window,
so an absent word's information survives in its neighbours' outputs under embedding masking, as measured on
LFM2-Audio in benchmarks/results/masking_leak.md).

``--prompt`` chooses the task: ``transcribe`` (default) or ``translate``, optionally with a language code
(``"transcribe fr"``; default ``en`` on multilingual models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.masking import (
    WAVEFORM_MASKINGS,
    embedding_baseline,
    mask_token_embeddings,
    mask_waveform,
    noise_floor_rms,
    noise_track,
    null_players,
    token_keep_mask,
    token_owner,
    word_sample_spans,
)
from sgpa.attribution.models.base import (
    TorchModelBackend,
    PreparedGame,
    Response,
    batch_size_for_memory,
    check_coalitions,
    check_normalization,
    with_gpu_memory_budget,
)
from sgpa.attribution.models.whisper_frontend import (
    SAMPLE_RATE,
    checked_utterance,
    frozen_log_max,
    log_mel,
    stop_token_ids,
    token_log_probs,
)
from sgpa.errors import InputError
from sgpa.segmentation import Segmentation

TOKEN_DURATION_S = 0.02
MASKINGS = ("embedding", "embedding-mean", "silence", "noise", "deletion")
TASKS = ("transcribe", "translate")


def load_transformers_parts(model: str | Path, model_class: Any, *, revision: str | None, device: str,
                            dtype: str, what: str) -> tuple[Any, str | None]:
    """``model_class.from_pretrained`` on a local folder or a hub id, with one clear error; and the revision to
    record (a content hash of local weights when none is given)."""
    import torch

    from sgpa.attribution.models.lfm2_audio import resolve_model_location
    from sgpa.hub import check_device, check_hub_model

    check_device(device)
    location = resolve_model_location(model)
    if isinstance(location, str):
        check_hub_model(location)
    try:
        loaded = model_class.from_pretrained(str(location), revision=revision, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot load {what} model {str(model)!r}: {' '.join(str(error).split())}") from None
    if revision is None and isinstance(location, Path):
        from sgpa.ctc import _weights_revision

        revision = _weights_revision(location)
    return loaded.to(device).eval(), revision


class WhisperBackend(TorchModelBackend):
    """Whisper (``WhisperForConditionalGeneration`` + ``WhisperFeatureExtractor`` + its tokenizer)."""

    name = "whisper"
    maskings = MASKINGS
    default_masking = "silence"

    def __init__(self, model: Any, feature_extractor: Any, tokenizer: Any, *, model_id: str,
                 revision: str | None = None, max_new_tokens: int = 32, memory_budget_bytes: int = 1 << 30) -> None:
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.revision = revision
        self.max_new_tokens = max_new_tokens
        self.memory_budget_bytes = memory_budget_bytes

    @classmethod
    def load(cls, model: str | Path, *, revision: str | None = None, device: str = "cpu", dtype: str = "float32",
             **options: Any) -> WhisperBackend:
        """Model, feature extractor and tokenizer from a local folder or a hub id (``openai/whisper-small``)."""
        from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

        loaded, revision = load_transformers_parts(model, WhisperForConditionalGeneration, revision=revision,
                                                   device=device, dtype=dtype, what="Whisper")
        try:
            feature_extractor = WhisperFeatureExtractor.from_pretrained(str(model), revision=revision)
            tokenizer = AutoTokenizer.from_pretrained(str(model), revision=revision)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"cannot load the front end of Whisper model {str(model)!r}: {error}") from None
        options = with_gpu_memory_budget(options, device)
        return cls(loaded, feature_extractor, tokenizer, model_id=str(model), revision=revision, **options)

    # --- pieces ----------------------------------------------------------------------------------------

    def decoder_prompt(self, prompt: str | None) -> list[int]:
        """The forced decoder start: ``<|startoftranscript|>`` [language, task] ``<|notimestamps|>``."""
        config = self.model.generation_config
        words = (prompt or "transcribe").lower().split()
        task = next((w for w in words if w in TASKS), "transcribe")
        languages = [w for w in words if w not in TASKS]
        if len(languages) > 1 or len(words) - len(languages) > 1:
            raise InputError(f"a Whisper prompt is a task ({' or '.join(TASKS)}) and at most one language code, "
                             f"not {prompt!r}")
        ids = [int(config.decoder_start_token_id)]
        if getattr(config, "is_multilingual", False):
            language = f"<|{languages[0] if languages else 'en'}|>"
            lang_to_id = getattr(config, "lang_to_id", None) or {}
            if language not in lang_to_id:
                raise InputError(f"language {language[2:-2]!r} is not one this Whisper model knows")
            ids += [int(lang_to_id[language]), int(config.task_to_id[task])]
        elif languages or task != "transcribe":
            raise InputError(f"this Whisper model is English-only: it transcribes English, not {prompt!r}")
        no_timestamps = getattr(config, "no_timestamps_token_id", None)
        if no_timestamps is not None:
            ids.append(int(no_timestamps))
        return ids

    def features(self, waves: np.ndarray, log_max: Any = None) -> Any:
        """Log-mel features ``(k, n_mels, 3000)`` of equal-length waveforms ``(k, n_samples)``."""
        features, _ = log_mel(self.feature_extractor, waves, log_max, device=self.device)
        return features.to(self.dtype)

    def encode(self, features: Any) -> Any:
        """Encoder outputs ``(k, 1500, d_model)``: one per 20 ms of the window."""
        import torch

        with torch.no_grad():
            return self.model.model.encoder(features).last_hidden_state

    def logits(self, encoder_states: Any, decoder_ids: list[int]) -> Any:
        """Decoder logits ``(k, len(decoder_ids), vocab)`` for one decoder input under every encoder state."""
        import torch

        ids = torch.tensor(decoder_ids, dtype=torch.long, device=encoder_states.device)
        with torch.no_grad():
            hidden = self.model.model.decoder(input_ids=ids.expand(encoder_states.shape[0], -1),
                                              encoder_hidden_states=encoder_states, use_cache=False).last_hidden_state
            return self.model.proj_out(hidden)

    def cross_attention_states(self, states: Any) -> list[tuple[Any, Any]]:
        """Per decoder layer, the cross-attention keys and values of encoder states ``(k, P, d_model)``, as the
        attention lays them out: ``(k, heads, P, head_dim)`` each."""
        import torch

        pairs = []
        with torch.no_grad():
            for layer in self.model.model.decoder.layers:
                attention = layer.encoder_attn
                shape = (states.shape[0], states.shape[1], attention.num_heads, attention.head_dim)
                pairs.append((attention.k_proj(states).view(shape).transpose(1, 2),
                              attention.v_proj(states).view(shape).transpose(1, 2)))
        return pairs

    def logits_from_cross_attention(self, pairs: list[tuple[Any, Any]], decoder_ids: list[int]) -> Any:
        """Decoder logits ``(k, len(decoder_ids), vocab)`` with every layer's cross-attention keys and values given
        (``pairs`` from :meth:`cross_attention_states`, batch ``k``): the decoder takes them from its cache instead
        of projecting 1,500 encoder states per layer again."""
        import torch
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        k = pairs[0][0].shape[0]
        cross = DynamicCache()
        for index, (keys, values) in enumerate(pairs):
            cross.update(keys, values, index)
        cache = EncoderDecoderCache(DynamicCache(), cross)  # is_updated: the cross-attention keys are in the cache
        ids = torch.tensor(decoder_ids, dtype=torch.long, device=pairs[0][0].device)
        # the decoder runs cross-attention only when given encoder states; their keys and values come from the cache
        placeholder = torch.zeros((k, 1, self.model.config.d_model), dtype=pairs[0][0].dtype, device=ids.device)
        with torch.no_grad():
            hidden = self.model.model.decoder(input_ids=ids.expand(k, -1), encoder_hidden_states=placeholder,
                                              cache=cache, use_cache=True).last_hidden_state
            return self.model.proj_out(hidden)

    def generate(self, encoder_states: Any, prompt_ids: list[int]) -> list[int]:
        """Greedy response after ``prompt_ids`` on one encoder state ``(1, 1500, d)``, with the checkpoint's token
        suppression; stops at end of text or after ``max_new_tokens``."""
        import torch

        config = self.model.generation_config
        suppress = [int(t) for t in (getattr(config, "suppress_tokens", None) or [])]
        begin_suppress = [int(t) for t in (getattr(config, "begin_suppress_tokens", None) or [])]
        stop = stop_token_ids(config, self.tokenizer)
        ids = list(prompt_ids)
        response: list[int] = []
        cache = None
        step_ids = torch.tensor([ids], dtype=torch.long, device=encoder_states.device)
        with torch.no_grad():
            for _ in range(self.max_new_tokens):
                out = self.model.model.decoder(input_ids=step_ids, encoder_hidden_states=encoder_states,
                                               cache=cache, use_cache=True)
                cache = out.cache
                logits = self.model.proj_out(out.last_hidden_state[0, -1]).float()
                blocked = suppress + (begin_suppress if not response else [])
                if blocked:
                    logits[[t for t in blocked if t < logits.shape[0]]] = -float("inf")
                next_id = int(logits.argmax())
                response.append(next_id)
                if next_id in stop:
                    break
                step_ids = torch.tensor([[next_id]], dtype=torch.long, device=encoder_states.device)
        return response

    # --- the game ----------------------------------------------------------------------------------------

    def prepare(self, audio: np.ndarray, segmentation: Segmentation, *, prompt: str | None = None,
                masking: str | None = None, seed: int = 0, batch_size: int | None = None,
                text_players: bool = False, normalization: str | None = None,
                response_words: list[str] | None = None) -> WhisperGame:
        """See :meth:`Backend.prepare`."""
        if text_players:
            raise InputError("Whisper has no prompt words to be players (its prompt is a task): drop --text-players")
        masking = self.check_masking(masking)
        normalization = check_normalization(normalization)
        audio = checked_utterance(audio, segmentation, TOKEN_DURATION_S, "whisper")
        prompt_ids = self.decoder_prompt(prompt)
        limit = int(self.model.config.max_target_positions)
        if len(prompt_ids) + self.max_new_tokens > limit:
            raise InputError(f"max_new_tokens {self.max_new_tokens} does not fit Whisper's {limit} decoder positions "
                             f"after its {len(prompt_ids)} prompt tokens")
        log_max = frozen_log_max(self.feature_extractor, audio, normalization, self.device)
        full_states = self.encode(self.features(audio[None], log_max))
        n_positions = int(full_states.shape[1])
        owner = token_owner(segmentation, n_positions)
        response_ids = self.generate(full_states, prompt_ids)
        response = Response(text=self.tokenizer.decode(response_ids), token_ids=response_ids,
                            tokens=[self.tokenizer.decode([i]) for i in response_ids])
        config = self.model.config
        element = full_states.element_size()
        per_coalition = (n_positions * config.d_model * element * (6 + 4 * config.encoder_layers)
                         + (len(prompt_ids) + len(response_ids)) * config.vocab_size * 8)
        if batch_size is None:
            batch_size = batch_size_for_memory(per_coalition, self.memory_budget_bytes)
        baseline = cross_full = cross_baseline = None
        if masking in ("embedding", "embedding-mean"):
            baseline = embedding_baseline(full_states[0], "zero" if masking == "embedding" else "mean")
            cross_full = self.cross_attention_states(full_states)
            cross_baseline = self.cross_attention_states(baseline[None, None])
        spans = word_sample_spans(segmentation, SAMPLE_RATE, len(audio))
        null = null_players(spans, owner if baseline is not None else None)
        return WhisperGame(
            response=response, player_names=[w.text for w in segmentation.words], masking=masking,
            batch_size=batch_size, null_players=null,
            details={"prompt": prompt, "decoder_prompt": [self.tokenizer.decode([i]) for i in prompt_ids],
                     "audio_positions": n_positions, "audio_positions_with_speech": int(np.ceil(len(audio) / 320)),
                     "max_new_tokens": self.max_new_tokens,
                     "embedding_baseline": None if baseline is None else ("zero" if masking == "embedding" else "mean"),
                     "normalization": normalization if masking in WAVEFORM_MASKINGS else None},
            backend=self, audio=audio, prompt_ids=prompt_ids, owner=owner, full_states=full_states,
            baseline=baseline, spans=spans, log_max=log_max, cross_full=cross_full, cross_baseline=cross_baseline,
            noise=noise_track(spans, len(audio), noise_floor_rms(audio, SAMPLE_RATE), seed),
        )


@dataclass
class WhisperGame(PreparedGame):
    """The value function of one utterance on Whisper (see :class:`sgpa.attribution.models.base.PreparedGame`)."""

    backend: WhisperBackend | None = None
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    prompt_ids: list[int] = field(default_factory=list)
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    full_states: Any = None
    baseline: Any = None
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    log_max: Any = None
    noise: np.ndarray | None = None
    #: embedding maskings: every decoder layer's cross-attention keys/values of the full states and of the baseline
    cross_full: list[tuple[Any, Any]] | None = None
    cross_baseline: list[tuple[Any, Any]] | None = None

    def encoder_states(self, coalitions: np.ndarray) -> Any:
        """The masked encoder outputs ``(k, 1500, d_model)`` of ``coalitions`` (bool ``(k, n_players)``)."""
        if self.baseline is not None:
            return mask_token_embeddings(self.full_states[0], token_keep_mask(coalitions, self.owner), self.baseline)
        waves = [mask_waveform(self.audio, self.spans, present, self.masking, noise=self.noise)
                 for present in coalitions]
        width = max(len(w) for w in waves)  # deletion: shorter inputs are zero-padded, as the window pads them
        batch = np.zeros((len(waves), width), dtype=np.float32)
        for row, wave in enumerate(waves):
            batch[row, : len(wave)] = wave
        return self.backend.encode(self.backend.features(batch, self.log_max))

    def log_probs(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = check_coalitions(coalitions, self.n_players)
        ids = self.response.token_ids
        decoder_ids = self.prompt_ids + ids[:-1] if ids else self.prompt_ids
        first = len(self.prompt_ids) - 1  # position p predicts token p + 1
        values = np.empty((len(coalitions), len(ids)), dtype=np.float64)
        for start in range(0, len(coalitions), self.batch_size):
            chunk = coalitions[start : start + self.batch_size]
            if self.cross_full is not None:
                logits = self.backend.logits_from_cross_attention(self.masked_cross_attention(chunk), decoder_ids)
            else:
                logits = self.backend.logits(self.encoder_states(chunk), decoder_ids)
            values[start : start + len(chunk)] = token_log_probs(logits[:, first : first + len(ids)], ids)
        return values

    def masked_cross_attention(self, coalitions: np.ndarray) -> list[tuple[Any, Any]]:
        """Embedding maskings, without re-projecting the encoder states: keys and values are per-position linear
        maps of the states, so a masked position's are the baseline's, every other position's the full states'."""
        import torch

        keep = torch.as_tensor(token_keep_mask(coalitions, self.owner), device=self.cross_full[0][0].device)
        keep = keep[:, None, :, None]  # (k, heads, positions, head_dim)
        return [(torch.where(keep, full_keys, base_keys), torch.where(keep, full_values, base_values))
                for (full_keys, full_values), (base_keys, base_values) in zip(self.cross_full, self.cross_baseline)]

