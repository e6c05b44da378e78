"""Audio-language models through transformers: Qwen2-Audio and Voxtral, one backend class each over a shared core.

Both put one LLM input embedding per audio position into the chat at placeholder tokens the processor writes
(``<|AUDIO|>`` / ``[AUDIO]``): a Whisper-style encoder over 10 ms log-mel frames, then a projector. Qwen2-Audio
pools to one embedding per 40 ms of the real audio; Voxtral groups four 20 ms encoder frames per embedding (80 ms)
over the whole 30 s window, so its positions past the end of the audio are padding (context, never masked). The
chats are the processors' own::

    Qwen2-Audio: <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1:
                 <|audio_bos|>[audio]<|audio_eos|>\n{prompt}<|im_end|>\n<|im_start|>assistant\n
    Voxtral:     <s>[INST][BEGIN_AUDIO][audio]{prompt}[/INST]

The audio embeddings are taken from the model's own merge code (its forward runs up to the language model and stops
there), so the full coalition is exactly the model's input. The reference response is generated greedily on the
full input and each coalition's value is the teacher-forced log-probability of every response token.

Maskings: ``embedding`` / ``embedding-mean`` replace an absent word's audio embeddings by zeros or by the mean audio
embedding, the encoder running once; ``silence`` (the default: the encoder attends over the whole window, so under
embedding masking an absent word's information survives in its neighbours), ``noise`` and ``deletion`` change the
waveform and run the encoder per coalition. The text before the audio is the same in every coalition: its attention
keys and values are computed once and shared by every batch.
"""

from __future__ import annotations

import copy
import re
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.masking import (
    WAVEFORM_MASKINGS,
    embedding_baseline,
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
from sgpa.attribution.models.whisper import load_transformers_parts
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

#: Deletion can leave almost no audio; shorter inputs are zero-padded to this (one audio embedding at least).
MIN_SAMPLES = SAMPLE_RATE // 10
MASKINGS = ("embedding", "embedding-mean", "silence", "noise", "deletion")
DEFAULT_PROMPT = "Transcribe the audio."


class _Merged(Exception):
    """Carries the language model's input embeddings out of the model's forward (see :meth:`input_embeddings`)."""

    def __init__(self, embeddings: Any) -> None:
        self.embeddings = embeddings


@dataclass
class ChatInput:
    """The processor's output for one audio length: token ids ``(1, L)`` (audio placeholders expanded), where the
    audio embeddings go (``(n_audio,)`` positions), and any other input the model's forward takes with the features
    (Qwen2-Audio: the mask of the real log-mel frames, ``(1, 3000)``)."""

    input_ids: Any
    audio_positions: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


class AudioLanguageModelBackend(TorchModelBackend):
    """What Qwen2-Audio and Voxtral share; a subclass says how its chat is built (:meth:`chat_input`) and loaded."""

    maskings = MASKINGS
    default_masking = "silence"
    #: seconds of audio per audio embedding
    token_duration_s: float
    model_class_name: str

    def __init__(self, model: Any, processor: Any, *, model_id: str, revision: str | None = None,
                 max_new_tokens: int = 32, memory_budget_bytes: int = 1 << 30) -> None:
        self.model = model.eval()
        self.processor = processor
        self.model_id = model_id
        self.revision = revision
        self.max_new_tokens = max_new_tokens
        self.memory_budget_bytes = memory_budget_bytes

    @classmethod
    def load(cls, model: str | Path, *, revision: str | None = None, device: str = "cpu", dtype: str = "float32",
             **options: Any) -> AudioLanguageModelBackend:
        """Model and processor from a local folder or a hub id."""
        import transformers
        from transformers import AutoProcessor

        model_class = getattr(transformers, cls.model_class_name)
        loaded, revision = load_transformers_parts(model, model_class, revision=revision, device=device, dtype=dtype,
                                                   what=cls.name)
        try:
            processor = AutoProcessor.from_pretrained(str(model), revision=revision)
        except (OSError, ValueError, KeyError, TypeError, ImportError) as error:
            raise InputError(f"cannot load the processor of {cls.name} model {str(model)!r}: {error}") from None
        options = with_gpu_memory_budget(options, device)
        return cls(loaded, processor, model_id=str(model), revision=revision, **options)

    @property
    def language_model(self) -> Any:
        return self.model.model.language_model

    # --- pieces ----------------------------------------------------------------------------------------

    @abstractmethod
    def chat_input(self, prompt: str, n_samples: int) -> ChatInput:
        """The chat's token ids for ``prompt`` and audio of ``n_samples``, built by the processor (which writes
        one placeholder per audio embedding)."""

    def _chat_input(self, inputs: Any, extra_names: tuple[str, ...] = ()) -> ChatInput:
        ids = inputs["input_ids"]
        positions = np.flatnonzero(ids[0].cpu().numpy() == int(self.model.config.audio_token_id))
        return ChatInput(ids.to(self.device), positions, {name: inputs[name].to(self.device) for name in extra_names})

    def features(self, waves: np.ndarray, log_max: Any = None) -> Any:
        features, _ = log_mel(self.processor.feature_extractor, waves, log_max, device=self.device)
        return features.to(self.dtype)

    def input_embeddings(self, chat: ChatInput, features: Any) -> Any:
        """The language model's input embeddings ``(k, L, hidden)``: the model's own forward (audio tower,
        projector, merge at the placeholders) run up to its language model, whose input is taken there."""
        import torch

        def capture(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            raise _Merged(kwargs["inputs_embeds"])

        k = features.shape[0]
        extra = {name: value.expand(k, *value.shape[1:]) for name, value in chat.extra.items()}
        handle = self.language_model.register_forward_pre_hook(capture, with_kwargs=True)
        try:
            with torch.no_grad():
                self.model.model(input_ids=chat.input_ids.expand(k, -1), input_features=features, **extra)
        except _Merged as merged:
            return merged.embeddings
        finally:
            handle.remove()
        raise RuntimeError(f"the {self.name} forward did not reach its language model")

    def prefix_cache(self, embeddings: Any, n_prefix: int) -> Any:
        """Language-model state after the first ``n_prefix`` positions (batch of one), shared by every coalition."""
        import torch

        with torch.no_grad():
            return self.language_model(inputs_embeds=embeddings[:1, :n_prefix], use_cache=True).cache

    def logits(self, embeddings: Any, cache: Any = None, n_cached: int = 0) -> Any:
        """Logits ``(k, L - n_cached, vocab)`` of input embeddings ``(k, L, hidden)``."""
        import torch

        with torch.no_grad():
            if cache is None:
                hidden = self.language_model(inputs_embeds=embeddings, use_cache=False).last_hidden_state
            else:
                cache = copy.deepcopy(cache)
                cache.reorder_cache(torch.zeros(embeddings.shape[0], dtype=torch.long, device=embeddings.device))
                hidden = self.language_model(inputs_embeds=embeddings[:, n_cached:], cache=cache,
                                             use_cache=True).last_hidden_state
            return self.model.lm_head(hidden)

    def embed_tokens(self, ids: list[int]) -> Any:
        import torch

        with torch.no_grad():
            return self.model.get_input_embeddings()(torch.tensor(ids, dtype=torch.long, device=self.device))

    def generate(self, embeddings: Any) -> list[int]:
        """Greedy response to input embeddings ``(1, L, hidden)``; stops at an end-of-turn token."""
        import torch

        stop = stop_token_ids(self.model.generation_config, self.processor.tokenizer)
        response: list[int] = []
        cache = None
        step = embeddings
        with torch.no_grad():
            for _ in range(self.max_new_tokens):
                out = self.language_model(inputs_embeds=step, cache=cache, use_cache=True)
                cache = out.cache
                next_id = int(self.model.lm_head(out.last_hidden_state[0, -1]).argmax())
                response.append(next_id)
                if next_id in stop:
                    break
                step = self.embed_tokens([next_id])[None]
        return response

    # --- the game ----------------------------------------------------------------------------------------

    def prepare(self, audio: np.ndarray, segmentation: Segmentation, *, prompt: str | None = None,
                masking: str | None = None, seed: int = 0, batch_size: int | None = None,
                text_players: bool = False, normalization: str | None = None,
                response_words: list[str] | None = None) -> AudioLanguageModelGame:
        """See :meth:`Backend.prepare`. With ``text_players`` the prompt's words are players too (after the audio
        words): an absent prompt word has its token embeddings replaced by zeros. The prompt follows the audio in
        both chats, so the text before the audio is still shared by every coalition."""
        masking = self.check_masking(masking)
        normalization = check_normalization(normalization)
        prompt = DEFAULT_PROMPT if prompt is None else prompt
        audio = checked_utterance(audio, segmentation, self.token_duration_s, self.name)
        chat = self.chat_input(prompt, len(audio))
        limit = int(self.model.config.text_config.max_position_embeddings)
        if chat.input_ids.shape[1] + self.max_new_tokens > limit:
            raise InputError(f"the chat (prompt and audio) takes {chat.input_ids.shape[1]} positions and the response up "
                             f"to {self.max_new_tokens} more: over the model's {limit}; shorten the prompt or the audio")
        log_max = frozen_log_max(self.processor.feature_extractor, audio, normalization, self.device)
        full_embeddings = self.input_embeddings(chat, self.features(audio[None], log_max))
        positions = chat.audio_positions
        owner = token_owner(segmentation, len(positions))
        response_ids = self.generate(full_embeddings)
        tokenizer = self.processor.tokenizer
        response = Response(text=tokenizer.decode(response_ids), token_ids=response_ids,
                            tokens=[tokenizer.decode([i]) for i in response_ids])
        text_config = self.model.config.text_config
        length = int(full_embeddings.shape[1]) + len(response_ids)
        per_coalition = (length * text_config.hidden_size * full_embeddings.element_size()
                         * (4 + 2 * text_config.num_hidden_layers) + len(response_ids) * text_config.vocab_size * 8)
        if batch_size is None:
            batch_size = batch_size_for_memory(per_coalition, self.memory_budget_bytes)
        baseline = None
        if masking in ("embedding", "embedding-mean"):
            baseline = embedding_baseline(full_embeddings[0, positions], "zero" if masking == "embedding" else "mean")
        spans = word_sample_spans(segmentation, SAMPLE_RATE, len(audio))
        n_prefix = int(positions[0])  # the text before the first audio embedding: the same in every coalition
        prompt_words: list[str] = []
        text_owner = np.full(chat.input_ids.shape[1], -1, dtype=np.int64)
        if text_players:
            prompt_words, text_owner = prompt_token_owner(tokenizer, chat.input_ids[0].tolist(), prompt)
            if not prompt_words:
                raise InputError("--text-players needs a prompt with words")
        null = null_players(spans, owner if baseline is not None else None,
                            n_players=segmentation.n_words + len(prompt_words))
        if text_players:
            null[segmentation.n_words :] = ~np.isin(np.arange(len(prompt_words)), text_owner)
        return AudioLanguageModelGame(
            response=response, player_names=[w.text for w in segmentation.words] + prompt_words, masking=masking,
            batch_size=batch_size, null_players=null,
            details={"prompt": prompt, "chat_tokens": int(full_embeddings.shape[1]), "audio_tokens": len(positions),
                     "prefix_tokens_cached": n_prefix, "max_new_tokens": self.max_new_tokens,
                     "embedding_baseline": None if baseline is None else ("zero" if masking == "embedding" else "mean"),
                     "normalization": normalization if masking in WAVEFORM_MASKINGS else None,
                     "n_audio_players": segmentation.n_words, "text_players": prompt_words,
                     "text_baseline": "zero embedding" if text_players else None},
            n_audio_players=segmentation.n_words, text_owner=text_owner,
            backend=self, audio=audio, prompt=prompt, chat=chat, owner=owner, full_embeddings=full_embeddings,
            baseline=baseline, spans=spans, log_max=log_max, cache=self.prefix_cache(full_embeddings, n_prefix),
            n_prefix=n_prefix, noise=noise_track(spans, len(audio), noise_floor_rms(audio, SAMPLE_RATE), seed),
        )


class Qwen2AudioBackend(AudioLanguageModelBackend):
    """Qwen2-Audio (``Qwen2AudioForConditionalGeneration`` + ``Qwen2AudioProcessor``), e.g.
    ``Qwen/Qwen2-Audio-7B-Instruct``; float32 by default (``dtype="bfloat16"`` on a GPU)."""

    name = "qwen2-audio"
    token_duration_s = 0.04
    model_class_name = "Qwen2AudioForConditionalGeneration"

    def chat_input(self, prompt: str, n_samples: int) -> ChatInput:
        conversation = [{"role": "user", "content": [{"type": "audio", "audio_url": "audio"},
                                                     {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=text, audio=[np.zeros(n_samples, dtype=np.float32)], sampling_rate=SAMPLE_RATE,
                                return_tensors="pt")
        return self._chat_input(inputs, ("feature_attention_mask",))


class VoxtralBackend(AudioLanguageModelBackend):
    """Voxtral (``VoxtralForConditionalGeneration`` + ``VoxtralProcessor``, whose tokenizer needs mistral-common),
    e.g. ``mistralai/Voxtral-Mini-3B-2507``; float32 by default (``dtype="bfloat16"`` on a GPU)."""

    name = "voxtral"
    token_duration_s = 0.08
    model_class_name = "VoxtralForConditionalGeneration"

    def chat_input(self, prompt: str, n_samples: int) -> ChatInput:
        import base64
        import io

        import soundfile

        # mistral-common takes audio in a message as an encoded file; only its length matters here
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(max(n_samples, 1), dtype=np.float32), SAMPLE_RATE, format="WAV")
        conversation = [{"role": "user", "content": [
            {"type": "audio", "base64": base64.b64encode(buffer.getvalue()).decode("ascii")},
            {"type": "text", "text": prompt}]}]
        inputs = self.processor.apply_chat_template(conversation, tokenize=True, return_dict=True, return_tensors="pt")
        return self._chat_input(inputs)


def prompt_token_owner(tokenizer: Any, chat_ids: list[int], prompt: str) -> tuple[list[str], np.ndarray]:
    """The prompt's whitespace-separated words and, for every chat position, the prompt word its token belongs to
    (``-1``: not a prompt token, or whitespace). The prompt's tokens are found as the last run of
    ``tokenizer.encode(prompt)`` in the chat; a token belongs to the word holding its first non-space character."""
    prompt_ids = list(tokenizer.encode(prompt, add_special_tokens=False))
    n = len(prompt_ids)
    start = next((i for i in range(len(chat_ids) - n, -1, -1) if chat_ids[i : i + n] == prompt_ids), None)
    pieces = [tokenizer.decode([token]) for token in prompt_ids]
    if start is None or n == 0 or "".join(pieces) != prompt:
        raise InputError("cannot find the prompt's own tokens in the chat (text players need a prompt the "
                         "tokenizer encodes the same inside the chat and alone)")
    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", prompt)]
    owner = np.full(len(chat_ids), -1, dtype=np.int64)
    offset = 0
    for t, piece in enumerate(pieces):
        first = offset + len(piece) - len(piece.lstrip())
        for j, (begin, end, _) in enumerate(words):
            if begin <= first < end:
                owner[start + t] = j
        offset += len(piece)
    return [word for _, _, word in words], owner


@dataclass
class AudioLanguageModelGame(PreparedGame):
    """The value function of one utterance on an audio-language model (see
    :class:`sgpa.attribution.models.base.PreparedGame`)."""

    backend: AudioLanguageModelBackend | None = None
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    prompt: str = ""
    chat: ChatInput | None = None
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    full_embeddings: Any = None
    baseline: Any = None
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    log_max: Any = None
    cache: Any = None
    n_prefix: int = 0
    noise: np.ndarray | None = None
    n_audio_players: int = 0
    text_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def input_embeddings(self, coalitions: np.ndarray) -> list[tuple[np.ndarray, Any]]:
        """Masked input embeddings, grouped by length (deletion shortens the audio and so the chat):
        ``[(row indices, (rows, L, hidden)), ...]``."""
        import torch

        if self.baseline is not None:
            keep = torch.as_tensor(token_keep_mask(coalitions, self.owner), device=self.full_embeddings.device)
            embeddings = self.full_embeddings.expand(len(coalitions), -1, -1).clone()
            positions = torch.as_tensor(self.chat.audio_positions, device=embeddings.device)
            audio = embeddings[:, positions]
            embeddings[:, positions] = torch.where(keep[..., None], audio, self.baseline.to(audio.dtype))
            return [(np.arange(len(coalitions)), embeddings)]
        waves = [mask_waveform(self.audio, self.spans, present, self.masking, noise=self.noise)
                 for present in coalitions]
        waves = [np.pad(w, (0, MIN_SAMPLES - len(w))) if len(w) < MIN_SAMPLES else w for w in waves]
        lengths = np.array([len(w) for w in waves])
        groups = []
        for length in np.unique(lengths):
            rows = np.flatnonzero(lengths == length)
            chat = self.chat if length == len(self.audio) else self.backend.chat_input(self.prompt, int(length))
            features = self.backend.features(np.stack([waves[r] for r in rows]), self.log_max)
            groups.append((rows, self.backend.input_embeddings(chat, features)))
        return groups

    def mask_prompt(self, embeddings: Any, present_words: np.ndarray) -> Any:
        """Zero the embeddings of absent prompt words (text players): ``embeddings`` ``(k, L, hidden)``,
        ``present_words`` bool ``(k, n_prompt_words)``. The prompt sits after the audio, at the same distance from
        the end of the chat whatever the audio's length."""
        import torch

        owner = self.text_owner[len(self.text_owner) - embeddings.shape[1]:]  # a shorter chat keeps the same suffix
        keep = token_keep_mask(present_words, owner)
        keep_t = torch.as_tensor(keep, device=embeddings.device)[..., None]
        return torch.where(keep_t, embeddings, torch.zeros((), dtype=embeddings.dtype, device=embeddings.device))

    def log_probs(self, coalitions: np.ndarray) -> np.ndarray:
        import torch

        coalitions = check_coalitions(coalitions, self.n_players)
        ids = self.response.token_ids
        response_embeddings = self.backend.embed_tokens(ids)
        values = np.empty((len(coalitions), len(ids)), dtype=np.float64)
        for start in range(0, len(coalitions), self.batch_size):
            chunk = coalitions[start : start + self.batch_size]
            for rows, embeddings in self.input_embeddings(chunk[:, : self.n_audio_players]):
                if self.n_players > self.n_audio_players:
                    embeddings = self.mask_prompt(embeddings, chunk[rows, self.n_audio_players :])
                k, length = embeddings.shape[0], embeddings.shape[1]
                sequence = torch.cat([embeddings, response_embeddings.to(embeddings.dtype).expand(k, -1, -1)], dim=1)
                logits = self.backend.logits(sequence, self.cache, self.n_prefix)
                first = length - 1 - self.n_prefix  # position p predicts token p + 1
                values[start + rows] = token_log_probs(logits[:, first : first + len(ids)], ids)
        return values
