"""LFM2-Audio backend, on the real ``liquid-audio`` package.

The chat is built with liquid-audio's ``ChatState`` exactly as its own examples do::

    <|startoftext|><|im_start|>system\\n{prompt}<|im_end|>\\n<|im_start|>user\\n[audio]<|im_end|>\\n<|im_start|>assistant\\n

The audio becomes one LLM input embedding per 80 ms: log-mel (128 bins, 10 ms hop) -> FastConformer (8x
subsampling) -> MLP adapter, ``ceil(mel_frames / 8)`` embeddings in all. The reference response is generated
greedily on the full input (text tokens only; generation stops at ``<|im_end|>``, at ``<|audio_start|>``, or after
``max_new_tokens``), and each coalition's value is the teacher-forced log-probability of each response token: one
LFM2 forward over ``[chat prefix + masked audio + chat suffix + response]``, logits from the tied text embedding
matrix, exactly as liquid-audio computes them.

Speed: with embedding masking the conformer runs once per utterance. Every coalition shares the tokens before the
audio (the system turn), so their LFM2 state (attention keys/values and the short-convolution states) is computed
once and copied across the batch. Coalitions are scored in batches sized from memory.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.masking import (
    WAVEFORM_MASKINGS,
    embedding_baseline,
    frame_owner,
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
from sgpa.errors import InputError
from sgpa.segmentation import Segmentation

SAMPLE_RATE = 16000
TOKEN_DURATION_S = 0.08
DEFAULT_PROMPT = "Perform ASR."
IM_END_ID = 7
AUDIO_START_ID = 128
# embedding masking: "embedding" replaces absent tokens by zeros, "embedding-mean" by the mean audio embedding;
# "encoder-input" zeroes the absent words' normalised log-mel frames (the utterance's per-band mean) before the
# conformer, which then runs per coalition: an absent word cannot reach the kept tokens through its attention.
MASKINGS = ("embedding", "embedding-mean", "encoder-input", "silence", "noise", "deletion")
MEL_HOP_S = 0.01  # LFM2-Audio's log-mel hop (10 ms, centred frames)
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: The shipped oracle model (``sgpa/models/sgpa-lfm2-oracle``): the backend's default, loaded like a hub checkpoint.
DEFAULT_MODEL_NAME = "sgpa-lfm2-oracle"


def default_model_dir() -> Path:
    """The shipped oracle LFM2-Audio model's folder; ``InputError`` when the package was installed without it."""
    import sgpa

    folder = Path(sgpa.__file__).resolve().parent / "models" / DEFAULT_MODEL_NAME
    if not (folder / "config.json").is_file():
        raise InputError(
            f"the shipped LFM2-Audio model is not installed (no config.json in {folder}); give --model, e.g. a "
            "local folder or LiquidAI/LFM2-Audio-1.5B"
        )
    return folder


def resolve_model_location(model: str | Path) -> str | Path:
    """A local folder as ``Path``, or a hub id (``owner/name``) as ``str``; ``InputError`` for anything else.

    liquid-audio treats a ``str`` as a hub id and a ``Path`` as a local folder, so the type matters.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"model folder {str(path)!r} has no config.json: not an LFM2-Audio checkpoint")
        return path
    if isinstance(model, str) and HUB_ID_PATTERN.match(model) and not path.exists():
        return model
    raise InputError(f"unknown model {str(model)!r}: not a local folder and not a hub id of the form owner/name")


@dataclass
class ChatLayout:
    """Where the audio sits in the chat sequence: ``[prefix | audio | suffix]`` then the response.

    ``text_ids`` are all text tokens of the chat in order (prefix then suffix), ``n_prefix`` of them before the
    audio; ``n_audio`` audio embeddings follow.
    """

    text_ids: list[int]
    n_prefix: int
    n_audio: int
    prompt_start: int = 0
    prompt_end: int = 0

    @property
    def n_suffix(self) -> int:
        return len(self.text_ids) - self.n_prefix

    @property
    def length(self) -> int:
        return len(self.text_ids) + self.n_audio


class Lfm2AudioBackend(TorchModelBackend):
    """LFM2-Audio through liquid-audio (``LFM2AudioModel`` + ``LFM2AudioProcessor``), float32 by default."""

    name = "lfm2-audio"
    maskings = MASKINGS
    default_masking = "encoder-input"  # leaks least on the oracle model (benchmarks/results/masking_leak.md)

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        model_id: str,
        revision: str | None = None,
        max_new_tokens: int = 32,
        reuse_prefix_cache: bool = True,
        memory_budget_bytes: int = 1 << 30,
    ) -> None:
        self.model = model.eval()
        self.processor = processor.eval()
        self.model_id = model_id
        self.revision = revision
        self.max_new_tokens = max_new_tokens
        self.reuse_prefix_cache = reuse_prefix_cache
        self.memory_budget_bytes = memory_budget_bytes

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        revision: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        **options: Any,
    ) -> Lfm2AudioBackend:
        """Load model and processor once from a local folder or a hub id (``LiquidAI/LFM2-Audio-1.5B``)."""
        import torch
        from liquid_audio import LFM2AudioModel, LFM2AudioProcessor

        from sgpa.hub import check_device, check_hub_model

        check_device(device)
        location = resolve_model_location(model)
        if isinstance(location, str):
            check_hub_model(location)
        torch_dtype = getattr(torch, dtype)
        try:
            lfm = LFM2AudioModel.from_pretrained(location, revision=revision, device=device, dtype=torch_dtype)
            processor = LFM2AudioProcessor.from_pretrained(location, revision=revision, device=device)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(f"cannot load LFM2-Audio model {str(model)!r}: {error}") from error
        options = with_gpu_memory_budget(options, device)
        if revision is None and isinstance(location, Path):
            from sgpa.ctc import _weights_revision  # content hash of local weights, as stage 1 records its model

            revision = _weights_revision(location)
        return cls(lfm, processor, model_id=str(model), revision=revision, **options)

    # --- pieces of the forward pass -------------------------------------------------------------------------

    def log_mel(self, waves: np.ndarray, frozen_stats: Any = None):
        """Log-mel features of equal-length waveforms: float ``(k, n_samples)`` -> ``(k, 128, n_frames)``.

        liquid-audio's front end normalises every band of every input to zero mean and unit variance over its own
        frames. With ``frozen_stats`` (:meth:`mel_statistics` of the full utterance) every input is normalised with
        those instead, so that silencing some words leaves the other words' features as they are.
        """
        import torch

        wave_t = torch.as_tensor(np.asarray(waves, dtype=np.float32), device=self.device)
        lengths = torch.full((wave_t.shape[0],), wave_t.shape[1], dtype=torch.long, device=self.device)
        with torch.no_grad():
            if frozen_stats is None:
                mel, _ = self.processor.audio(wave_t, lengths)
                return mel.to(self.dtype)
            mel, mel_lengths = self._unnormalised_front_end()(wave_t, lengths)
            mean, std = frozen_stats
            valid = int(mel_lengths[0])
            mel[:, :, :valid] = (mel[:, :, :valid] - mean[:, :, None]) / std[:, :, None]
        return mel.to(self.dtype)

    def mel_statistics(self, wave: np.ndarray):
        """Per-band mean and standard deviation ``((1, 128), (1, 128))`` of one waveform's log-mel, computed by
        liquid-audio's own ``normalize_batch`` (what its front end divides by)."""
        import torch
        from liquid_audio.model.conformer.processor import normalize_batch

        wave_t = torch.as_tensor(np.asarray(wave, dtype=np.float32)[None], device=self.device)
        lengths = torch.full((1,), wave_t.shape[1], dtype=torch.long, device=self.device)
        with torch.no_grad():
            mel, mel_lengths = self._unnormalised_front_end()(wave_t, lengths)
            _, mean, std = normalize_batch(mel, mel_lengths, normalize_type="per_feature")
        return mean, std

    def _unnormalised_front_end(self):
        """liquid-audio's log-mel filterbank without its per-input normalisation (a shallow copy sharing weights)."""
        if getattr(self, "_raw_front_end", None) is None:
            featurizer = copy.copy(self.processor.audio.featurizer)
            featurizer.normalize = None  # a plain attribute of the copy: the processor's own front end is untouched
            # liquid-audio stores a wrapped `forward` on the instance, bound to the original object: call the class's
            self._raw_front_end = functools.partial(type(featurizer).forward, featurizer)
        return self._raw_front_end

    def encode_mel(self, mel):
        """Audio embeddings, one per 80 ms: ``(k, 128, n_frames)`` -> ``(k, ceil(n_frames / 8), hidden)``."""
        import torch

        lengths = torch.full((mel.shape[0],), mel.shape[2], dtype=torch.long, device=mel.device)
        with torch.no_grad():
            encoded, _ = self.model.conformer(mel, lengths)
            return self.model.audio_adapter(encoded.mT)

    def chat_layout(self, prompt: str, n_audio: int) -> ChatLayout:
        """Token ids of the chat around the audio, built with liquid-audio's ``ChatState``."""
        from liquid_audio import ChatState, LFMModality

        chat = ChatState(self.processor, dtype=self.dtype)
        chat.new_turn("system")
        prompt_start = int(chat.text.shape[1])
        chat.add_text(prompt)
        prompt_end = int(chat.text.shape[1])
        chat.end_turn()
        chat.new_turn("user")
        n_prefix = int(chat.text.shape[1])
        chat.end_turn()
        chat.new_turn("assistant")
        flags = chat.modality_flag[0].tolist()
        if any(flag != LFMModality.TEXT for flag in flags):
            raise RuntimeError("unexpected non-text token in the chat template")
        return ChatLayout(text_ids=chat.text[0].tolist(), n_prefix=n_prefix, n_audio=n_audio,
                          prompt_start=prompt_start, prompt_end=prompt_end)

    def assemble(self, layout: ChatLayout, audio_embeddings, response_ids: list[int]):
        """Input embeddings ``(k, length + T, hidden)`` from audio embeddings ``(k, n_audio, hidden)``."""
        import torch

        k = audio_embeddings.shape[0]
        ids = torch.tensor(layout.text_ids + list(response_ids), dtype=torch.long, device=self.device)
        with torch.no_grad():
            text = self.model.lfm.embed_tokens(ids)
        prefix = text[: layout.n_prefix]
        rest = text[layout.n_prefix :]
        return torch.cat(
            [prefix.expand(k, -1, -1), audio_embeddings.to(text.dtype), rest.expand(k, -1, -1)], dim=1
        )

    def prefix_cache(self, layout: ChatLayout):
        """LFM2 state after the chat prefix (system turn), batch of one; reused by every coalition."""
        import torch

        ids = torch.tensor(layout.text_ids[: layout.n_prefix], dtype=torch.long, device=self.device)
        with torch.no_grad():
            embeddings = self.model.lfm.embed_tokens(ids)[None]
            return self.model.lfm(inputs_embeds=embeddings, use_cache=True).cache

    def hidden_states(self, embeddings, cache=None, n_cached: int = 0):
        """LFM2 last hidden states for input embeddings ``(k, L, hidden)``; ``cache`` holds the first ``n_cached``."""
        import torch

        with torch.no_grad():
            if cache is None:
                return self.model.lfm(inputs_embeds=embeddings, use_cache=False).last_hidden_state
            cache = copy.deepcopy(cache)
            # expand the batch-of-one state to the batch (keys/values and convolution states alike)
            cache.reorder_cache(torch.zeros(embeddings.shape[0], dtype=torch.long, device=embeddings.device))
            out = self.model.lfm(inputs_embeds=embeddings[:, n_cached:], cache=cache, use_cache=True)
            return out.last_hidden_state

    def response_log_probs(self, hidden, response_ids: list[int]):
        """``log p(response_t | ...)`` from the hidden states of the positions that predict the response.

        ``hidden``: ``(k, T, hidden)``, the states at positions ``L-1 .. L+T-2``. Returns float64 ``(k, T)``.
        """
        import torch

        with torch.no_grad():
            logits = torch.nn.functional.linear(hidden, self.model.lfm.embed_tokens.weight).float()
            log_probs = torch.log_softmax(logits, dim=-1)
            ids = torch.tensor(response_ids, dtype=torch.long, device=hidden.device)
            picked = log_probs.gather(-1, ids.expand(hidden.shape[0], -1)[..., None])[..., 0]
        return picked.double().cpu().numpy()

    def generate(self, layout: ChatLayout, audio_embeddings) -> list[int]:
        """Greedy text response on the full input, with the LFM2 cache (``audio_embeddings``: ``(1, n_audio, hidden)``)."""
        import torch

        embeddings = self.assemble(layout, audio_embeddings, [])
        cache = None
        ids: list[int] = []
        with torch.no_grad():
            for _ in range(self.max_new_tokens):
                out = self.model.lfm(inputs_embeds=embeddings, cache=cache, use_cache=True)
                cache = out.cache
                logits = torch.nn.functional.linear(out.last_hidden_state[0, -1], self.model.lfm.embed_tokens.weight)
                next_id = int(logits.argmax())
                ids.append(next_id)
                if next_id in (IM_END_ID, AUDIO_START_ID):
                    break
                embeddings = self.model.lfm.embed_tokens(torch.tensor([[next_id]], device=self.device))
        return ids

    def answer(self, audio: np.ndarray, prompt: str | None = None) -> str:
        """The model's greedy text answer to ``prompt`` (default ``"Perform ASR."``) about a 16 kHz waveform
        ``[n_samples]``: the response every explanation of this audio and prompt explains, without special tokens."""
        prompt = DEFAULT_PROMPT if prompt is None else prompt
        embeddings = self.encode_mel(self.log_mel(np.asarray(audio, dtype=np.float32)[None]))
        ids = self.generate(self.chat_layout(prompt, int(embeddings.shape[1])), embeddings)
        return self.processor.text.decode(ids, skip_special_tokens=True).strip()

    # --- the game -------------------------------------------------------------------------------------------

    def prepare(
        self,
        audio: np.ndarray,
        segmentation: Segmentation,
        *,
        prompt: str | None = None,
        masking: str | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        text_players: bool = False,
        normalization: str | None = None,
        response_words: list[str] | None = None,
    ) -> Lfm2AudioGame:
        """See :meth:`Backend.prepare`. With ``text_players`` the prompt's words are players too (after the audio
        words): an absent prompt word has its token embeddings replaced by zeros, like an absent audio token. The
        prompt then differs between coalitions, so the system-turn cache cannot be shared and is not used."""
        masking = self.check_masking(masking)
        normalization = check_normalization(normalization)
        prompt = DEFAULT_PROMPT if prompt is None else prompt
        audio = np.asarray(audio, dtype=np.float32)
        check_grid(segmentation)
        if segmentation.n_words == 0:
            raise InputError("the segmentation has no words: nothing to explain")

        frozen_stats = self.mel_statistics(audio) if normalization == "frozen" else None
        full_mel = self.log_mel(audio[None], frozen_stats)  # (1, 128, n_mel_frames)
        full_embeddings = self.encode_mel(full_mel)  # (1, n_audio, hidden)
        n_audio = int(full_embeddings.shape[1])
        owner = token_owner(segmentation, n_audio)
        if segmentation.grid.n_tokens > n_audio + 1:
            raise InputError(
                f"the segmentation's grid has {segmentation.grid.n_tokens} tokens but the audio gives {n_audio}: "
                "segments and audio do not match"
            )
        layout = self.chat_layout(prompt, n_audio)
        response_ids = self.generate(layout, full_embeddings)
        tokenizer = self.processor.text
        response = Response(
            text=tokenizer.decode(response_ids),
            token_ids=response_ids,
            tokens=[tokenizer.decode([i]) for i in response_ids],
        )
        hidden_size = int(full_embeddings.shape[-1])
        vocab_size = int(self.model.lfm.embed_tokens.weight.shape[0])
        n_layers = int(self.model.lfm.config.num_hidden_layers)
        element = full_embeddings.element_size()
        sequence = layout.length + len(response_ids)
        # activations of one coalition: a few hidden-size tensors per layer, plus the float32 logits of the response
        per_coalition = sequence * hidden_size * element * (4 + 2 * n_layers) + len(response_ids) * vocab_size * 8
        if batch_size is None:
            batch_size = batch_size_for_memory(per_coalition, self.memory_budget_bytes)
        prompt_words, prompt_owner = prompt_word_tokens(tokenizer, prompt) if text_players else ([], np.zeros(0))
        if text_players and not prompt_words:
            raise InputError("--text-players needs a prompt with words")
        text_owner = np.full(len(layout.text_ids), -1, dtype=np.int64)
        if text_players:
            text_owner[layout.prompt_start : layout.prompt_end] = np.where(
                prompt_owner >= 0, prompt_owner + segmentation.n_words, -1
            )
        cache = self.prefix_cache(layout) if self.reuse_prefix_cache and not text_players else None
        baseline = None
        if masking in ("embedding", "embedding-mean"):
            baseline = embedding_baseline(full_embeddings[0], "zero" if masking == "embedding" else "mean")
        spans = word_sample_spans(segmentation, SAMPLE_RATE, len(audio))
        mel_owner = mel_frame_owner(segmentation, int(full_mel.shape[-1]))
        owner_of_masking = {"embedding": owner, "embedding-mean": owner, "encoder-input": mel_owner}.get(masking)
        null = null_players(spans, owner_of_masking, n_players=segmentation.n_words + len(prompt_words))
        if text_players:
            null[segmentation.n_words :] = ~np.isin(np.arange(len(prompt_words)), prompt_owner)
        return Lfm2AudioGame(
            response=response,
            player_names=[w.text for w in segmentation.words] + prompt_words,
            masking=masking,
            batch_size=batch_size,
            details={
                "prompt": prompt,
                "chat_tokens": layout.length,
                "audio_tokens": n_audio,
                "prefix_tokens_cached": layout.n_prefix if cache is not None else 0,
                "embedding_baseline": None if baseline is None else ("zero" if masking == "embedding" else "mean"),
                "max_new_tokens": self.max_new_tokens,
                "n_audio_players": segmentation.n_words,
                "text_players": prompt_words,
                "text_baseline": "zero embedding" if text_players else None,
                "normalization": normalization if masking in WAVEFORM_MASKINGS else None,
            },
            null_players=null,
            backend=self,
            audio=audio,
            layout=layout,
            owner=owner,
            full_embeddings=full_embeddings,
            baseline=baseline,
            spans=spans,
            noise=noise_track(spans, len(audio), noise_floor_rms(audio, SAMPLE_RATE), seed),
            frozen_stats=frozen_stats,
            full_mel=full_mel,
            mel_owner=mel_owner,
            cache=cache,
            n_audio_players=segmentation.n_words,
            text_owner=text_owner,
        )


def prompt_word_tokens(tokenizer: Any, prompt: str) -> tuple[list[str], np.ndarray]:
    """The prompt's whitespace-separated words and, per prompt token, the word it belongs to (``-1``: whitespace).

    Uses the same encoding as ``ChatState.add_text`` (no special tokens); a token belongs to the word holding its
    first non-space character.
    """
    encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", prompt)]
    owner = np.full(len(encoded["input_ids"]), -1, dtype=np.int64)
    for t, (begin, end) in enumerate(encoded["offset_mapping"]):
        text = prompt[begin:end]
        first = begin + (len(text) - len(text.lstrip()))
        for j, (word_begin, word_end, _) in enumerate(words):
            if word_begin <= first < word_end:
                owner[t] = j
    return [w for _, _, w in words], owner


def mel_frame_owner(segmentation: Segmentation, n_frames: int) -> np.ndarray:
    """The word owning each log-mel frame (centred every 10 ms), ``-1`` for context; int64 ``(n_frames,)``."""
    return frame_owner(segmentation, np.arange(n_frames) * MEL_HOP_S)


def check_grid(segmentation: Segmentation) -> None:
    """The segmentation must be mapped to LFM2-Audio's grid: 80 ms tokens from time 0."""
    grid = segmentation.grid
    if abs(grid.token_duration_s - TOKEN_DURATION_S) > 1e-9 or abs(grid.offset_s) > 1e-9:
        raise InputError(
            f"the segmentation was mapped to grid {grid.name!r} ({grid.token_duration_s * 1000:g} ms tokens, "
            f"offset {grid.offset_s:g} s), not LFM2-Audio's 80 ms grid: run `sgpa align --grid lfm2-audio`"
        )


@dataclass
class Lfm2AudioGame(PreparedGame):
    """The value function of one utterance on LFM2-Audio (see :class:`sgpa.attribution.models.base.PreparedGame`)."""

    backend: Lfm2AudioBackend | None = None
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    layout: ChatLayout | None = None
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    full_embeddings: Any = None
    baseline: Any = None
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    noise: np.ndarray | None = None
    frozen_stats: Any = None
    full_mel: Any = None
    mel_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cache: Any = None
    n_audio_players: int = 0
    text_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def audio_embeddings(self, coalitions: np.ndarray) -> list[tuple[np.ndarray, Any]]:
        """Masked audio embeddings, grouped by length: ``[(row indices, (rows, n_audio, hidden)), ...]``."""
        import torch

        backend = self.backend
        if self.baseline is not None:
            keep = token_keep_mask(coalitions, self.owner)
            return [(np.arange(len(coalitions)), mask_token_embeddings(self.full_embeddings[0], keep, self.baseline))]
        if self.masking == "encoder-input":
            keep = torch.as_tensor(token_keep_mask(coalitions, self.mel_owner), device=self.full_mel.device)
            mel = torch.where(keep[:, None, :], self.full_mel, torch.zeros((), dtype=self.full_mel.dtype,
                                                                          device=self.full_mel.device))
            return [(np.arange(len(coalitions)), backend.encode_mel(mel))]
        waves = [mask_waveform(self.audio, self.spans, present, self.masking, noise=self.noise) for present in coalitions]
        groups = []
        lengths = np.array([len(w) for w in waves])
        for length in np.unique(lengths):
            rows = np.flatnonzero(lengths == length)
            if length < SAMPLE_RATE // 100 * 9:  # shorter than the conformer's smallest input (9 mel frames)
                waves_rows = [np.zeros(SAMPLE_RATE // 100 * 9, dtype=np.float32) for _ in rows]
            else:
                waves_rows = [waves[r] for r in rows]
            groups.append((rows, backend.encode_mel(backend.log_mel(np.stack(waves_rows), self.frozen_stats))))
        return groups

    def mask_prompt(self, embeddings, coalitions: np.ndarray):
        """Zero the embeddings of absent prompt words (text players); the prompt sits before the audio."""
        import torch

        keep = token_keep_mask(coalitions, self.text_owner)  # (k, n_text_tokens)
        keep_all = np.ones(embeddings.shape[:2], dtype=bool)
        keep_all[:, : self.layout.n_prefix] = keep[:, : self.layout.n_prefix]
        keep_t = torch.as_tensor(keep_all, device=embeddings.device)[..., None]
        return torch.where(keep_t, embeddings, torch.zeros((), dtype=embeddings.dtype, device=embeddings.device))

    def log_probs(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = check_coalitions(coalitions, self.n_players)
        backend = self.backend
        ids = self.response.token_ids
        values = np.empty((len(coalitions), len(ids)), dtype=np.float64)
        for start in range(0, len(coalitions), self.batch_size):
            chunk = coalitions[start : start + self.batch_size]
            for rows, audio_embeddings in self.audio_embeddings(chunk[:, : self.n_audio_players]):
                layout = ChatLayout(self.layout.text_ids, self.layout.n_prefix, int(audio_embeddings.shape[1]))
                embeddings = backend.assemble(layout, audio_embeddings, ids)
                if self.n_players > self.n_audio_players:
                    embeddings = self.mask_prompt(embeddings, chunk[rows])
                n_cached = layout.n_prefix if self.cache is not None else 0
                hidden = backend.hidden_states(embeddings, self.cache, n_cached)
                # position p predicts token p + 1: the response is predicted from the last chat token onwards
                first = layout.length - 1 - n_cached
                predicting = hidden[:, first : first + len(ids)]
                values[start + rows] = backend.response_log_probs(predicting, ids)
        return values
