"""CTC recogniser backend: how much each spoken word supports the recogniser's reading of the transcript.

The model is a transformers CTC model (``Wav2Vec2ForCTC`` family: the project's shipped default, or any
``facebook/wav2vec2-*`` checkpoint). There is nothing to generate: the reference "response" is the transcript,
and its "tokens" are its words. The value of a coalition is, for each transcript word ``i``, the conditional
log-probability of that word given the words before it under the masked audio, from the CTC forward algorithm:

    term_i = log Q_i - log Q_{i-1},     Q_0 = 1,   Q_i = P_ctc(the labelling starts with words 1..i),
    term_n = log P_ctc(transcript) - log Q_{n-1}

``Q_i`` is the CTC prefix probability (the mass of all frame paths whose collapsed labelling begins with the
first ``i`` words). The terms telescope, so they sum exactly to ``log P_ctc(transcript | audio)``, and the
scalar game (sum over words) is the transcript log-likelihood. All prefix probabilities come out of a single
forward pass over the whole label sequence, because the forward variable of a state depends only on states
before it.

Labels: each word's normalised text spelled by stage 1's own :func:`sgpa.ctc.label_sequence` (case folded to
whichever case the vocabulary uses; characters the vocabulary lacks are skipped), so the value scores exactly the
label sequence the aligner aligned, delimiters inside a spelled-out numeral included. A word with no label left gets
the constant term 0 (recorded in ``details['unscored_words']``). Words are separated by the vocabulary's word
delimiter (``|``) when it has one; the delimiter before a word belongs to that word.

Maskings: waveform ``silence`` (default), ``noise``, ``deletion``, re-encoded per coalition (deletion pads the
remaining audio with trailing silence up to the shortest length on which the transcript can be spelled, so that
no value is ``-inf``); and ``embedding``:
wav2vec2's learned mask vector (``masked_spec_embed``, the one SpecAugment uses) on the feature-encoder frames
whose centre falls inside an absent word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.masking import (
    frame_owner,
    mask_waveform,
    noise_floor_rms,
    noise_track,
    null_players,
    word_sample_spans,
)
from sgpa.attribution.models.base import (
    Backend,
    PreparedGame,
    Response,
    batch_size_for_memory,
    check_coalitions,
    check_normalization,
)
from sgpa.errors import InputError
from sgpa.segmentation import Segmentation

SAMPLE_RATE = 16000
MASKINGS = ("silence", "noise", "deletion", "embedding")
WORD_DELIMITER = "|"


def word_labels(words: list[str], vocab: dict[str, int], delimiter: str | None = WORD_DELIMITER) -> list[list[int]]:
    """Label ids of each word, spelled by stage 1's :func:`sgpa.ctc.label_sequence`.

    A word's list starts with the word delimiter when it is not the first scored word; a word spoken as several
    words (a numeral, "FORTY TWO", or a merged phrase) keeps the delimiters between them, exactly as the aligner
    spells it.

    Parameters
    ----------
    words : the words' spellings (normalised text; case is folded to the vocabulary's, missing characters dropped).
    vocab : token -> id of the CTC vocabulary.
    """
    from sgpa.ctc import label_sequence, labels_per_word
    from sgpa.text import NormalizedWord, spell

    characters = {token for token in vocab if len(token) == 1 and token != delimiter}
    spelled = []
    for word in words:
        normalized, n_dropped = spell(word, characters)
        spelled.append(NormalizedWord(text=word, spoken=word, normalized=normalized, n_unspellable=n_dropped))
    label_ids, word_index = label_sequence(spelled, vocab, delimiter if delimiter in vocab else None)
    return labels_per_word(label_ids, word_index, len(words))


def ctc_prefix_log_probs(log_probs, labels: list[int], blank: int):
    """CTC forward pass giving every prefix probability and the full-sequence probability.

    Parameters
    ----------
    log_probs : torch.Tensor ``(k, n_frames, vocab)``, log-softmax emissions.
    labels : the label sequence (``U`` ids, no blanks).
    blank : id of the blank.

    Returns
    -------
    prefix : torch.Tensor ``(k, U)``; ``prefix[:, j] = log P(labelling starts with labels[: j + 1])``.
    total : torch.Tensor ``(k,)``; ``log P(labelling == labels)``.
    """
    import torch

    k, n_frames, _ = log_probs.shape
    n_labels = len(labels)
    extended = torch.full((2 * n_labels + 1,), blank, dtype=torch.long, device=log_probs.device)
    extended[1::2] = torch.tensor(labels, dtype=torch.long, device=log_probs.device)
    n_states = extended.shape[0]
    # a skip from s-2 to s is allowed onto a label that differs from the label two states back
    skip_allowed = torch.zeros(n_states, dtype=torch.bool, device=log_probs.device)
    skip_allowed[3::2] = extended[3::2] != extended[1:-2:2]
    emissions = log_probs[:, :, extended]  # (k, n_frames, n_states)
    minus_inf = torch.tensor(float("-inf"), dtype=log_probs.dtype, device=log_probs.device)

    alpha = torch.full((k, n_states), float("-inf"), dtype=log_probs.dtype, device=log_probs.device)
    alpha[:, 0] = emissions[:, 0, 0]
    entries = [torch.full((k, n_labels), float("-inf"), dtype=log_probs.dtype, device=log_probs.device)]
    if n_labels:
        alpha[:, 1] = emissions[:, 0, 1]
        entries[0][:, 0] = emissions[:, 0, 1]
    for t in range(1, n_frames):
        from_prev = torch.cat([alpha.new_full((k, 1), float("-inf")), alpha[:, :-1]], dim=1)
        from_skip = torch.cat([alpha.new_full((k, 2), float("-inf")), alpha[:, :-2]], dim=1)
        from_skip = torch.where(skip_allowed, from_skip, minus_inf)
        arrive = torch.logaddexp(from_prev, from_skip)  # first frame in state s
        entries.append(arrive[:, 1::2] + emissions[:, t, 1::2])
        alpha = torch.logaddexp(alpha, arrive) + emissions[:, t]
    prefix = torch.logsumexp(torch.stack(entries, dim=0), dim=0)
    total = torch.logaddexp(alpha[:, -1], alpha[:, -2]) if n_labels else alpha[:, -1]
    return prefix, total


def word_terms(prefix, total, labels_per_word: list[list[int]]):
    """Chain-rule terms per word from prefix log-probs: ``(k, U)``, ``(k,)`` -> ``(k, n_words)``; they sum to ``total``."""
    import torch

    k = total.shape[0]
    n_words = len(labels_per_word)
    ends = np.cumsum([len(ids) for ids in labels_per_word]) - 1  # index of each word's last label
    last_scored = max((i for i, ids in enumerate(labels_per_word) if ids), default=-1)
    log_q = torch.zeros((k, n_words + 1), dtype=total.dtype, device=total.device)  # log Q_0 = 0
    for i in range(n_words):
        if i >= last_scored:
            log_q[:, i + 1] = total  # from the last scored word on, the whole transcript
        elif ends[i] >= 0:
            log_q[:, i + 1] = prefix[:, ends[i]]
    return log_q[:, 1:] - log_q[:, :-1]


def frame_geometry(config: Any) -> tuple[int, int]:
    """(hop, receptive field) of the feature encoder in samples, from its conv kernels and strides."""
    hop, receptive = 1, 1
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        receptive += (kernel - 1) * hop
        hop *= stride
    return hop, receptive


class CtcBackend(Backend):
    """A transformers CTC recogniser (``Wav2Vec2ForCTC`` and relatives), wrapping stage 1's loaded model.

    Parameters
    ----------
    acoustic_model : :class:`sgpa.ctc.AcousticModel` from :func:`sgpa.ctc.load_ctc_model`: model, processor,
        vocabulary, blank id and word delimiter. The same loaded object can serve alignment and explanation.
    """

    name = "ctc"
    maskings = MASKINGS
    default_masking = "silence"

    def __init__(self, acoustic_model: Any, *, memory_budget_bytes: int = 1 << 30) -> None:
        self.acoustic_model = acoustic_model
        self.model = acoustic_model.model.eval()
        self.vocab = dict(acoustic_model.vocabulary)
        self.blank_id = int(acoustic_model.blank_id)
        self.model_id = acoustic_model.name
        self.revision = acoustic_model.revision
        self.memory_budget_bytes = memory_budget_bytes

    @classmethod
    def load(cls, model: str | Path | None = None, *, device: str = "cpu", **options: Any) -> CtcBackend:
        """Load a CTC model from a folder or hub id; ``None`` = the project's shipped default model."""
        from sgpa.ctc import load_ctc_model

        return cls(load_ctc_model(model, device=device), **options)

    def input_values(self, waves: np.ndarray, frozen_stats: tuple[float, float] | None = None) -> np.ndarray:
        """The model's input for equal-length waveforms ``(k, n_samples)``, float32 ``(k, n_samples)``.

        Without ``frozen_stats`` each waveform goes through the model's own feature extractor, which (for wav2vec2
        with ``do_normalize``) rescales it to zero mean and unit variance, as stage 1 does. With
        ``frozen_stats = (mean, variance)`` of the full utterance, every coalition is normalised by those same
        numbers: silencing words then leaves the present words' samples exactly as they are in the full input.
        """
        extractor = self.acoustic_model.processor.feature_extractor
        waves = np.asarray(waves, dtype=np.float32)
        if frozen_stats is None or not getattr(extractor, "do_normalize", False):
            return extractor(list(waves), sampling_rate=SAMPLE_RATE, return_tensors="np")["input_values"]
        mean, variance = frozen_stats
        # the feature extractor's own formula (zero_mean_unit_var_norm), with the full utterance's statistics
        return ((waves - mean) / np.sqrt(variance + 1e-7)).astype(np.float32)

    def emissions(self, input_values: np.ndarray, mask_time_indices: np.ndarray | None = None):
        """Log-softmax emissions of model inputs ``(k, n_samples)`` (:meth:`input_values`) -> ``(k, n_frames, vocab)``
        (float64)."""
        import torch

        device = next(self.model.parameters()).device
        kwargs = {"input_values": torch.as_tensor(np.asarray(input_values, dtype=np.float32), device=device)}
        if mask_time_indices is not None:
            kwargs["mask_time_indices"] = torch.as_tensor(mask_time_indices, dtype=torch.bool, device=device)
        with torch.no_grad():
            logits = self.model(**kwargs).logits
        return torch.log_softmax(logits.double(), dim=-1)

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
    ) -> CtcGame:
        """See :meth:`Backend.prepare`. ``response_words``: the transcript words scored (spelled forms); default the
        players' own words. Given, the players may be any time spans (native frames, uniform windows) while the value
        stays the transcript's log-probability, one term per transcript word."""
        masking = self.check_masking(masking)
        normalization = check_normalization(normalization)
        if prompt is not None or text_players:
            raise InputError("the ctc backend takes no --prompt (its value is the transcript's log-probability)")
        has_mask_vector = getattr(self.model.base_model, "masked_spec_embed", None) is not None
        if masking == "embedding" and not (has_mask_vector and getattr(self.model.config, "apply_spec_augment", False)):
            raise InputError("this CTC model has no learned mask vector (masked_spec_embed): use --masking silence")
        if segmentation.n_words == 0:
            raise InputError("the segmentation has no words: nothing to explain")
        audio = np.asarray(audio, dtype=np.float32)
        scored = response_words if response_words is not None else [w.normalized or w.text for w in segmentation.words]
        labels = word_labels(scored, self.vocab, self.acoustic_model.word_delimiter)
        if not any(labels):
            raise InputError("no character of the transcript is in the CTC model's vocabulary")
        hop, receptive = frame_geometry(self.model.config)
        n_frames = int(self.model._get_feat_extract_output_lengths(len(audio)))
        if n_frames < 1:
            raise InputError("the audio is too short for the CTC model")
        frame_centres_s = (np.arange(n_frames) * hop + receptive / 2) / SAMPLE_RATE
        owner_of_frame = frame_owner(segmentation, frame_centres_s)
        hidden = int(getattr(self.model.config, "hidden_size", 768))
        n_layers = int(getattr(self.model.config, "num_hidden_layers", 12))
        per_coalition = len(audio) * 4 * 8 + n_frames * hidden * 4 * (6 + 2 * n_layers)
        if batch_size is None:
            batch_size = batch_size_for_memory(per_coalition, self.memory_budget_bytes)
        players = [w.text for w in segmentation.words]
        words = players if response_words is None else list(response_words)
        spans = word_sample_spans(segmentation, SAMPLE_RATE, len(audio))
        return CtcGame(
            response=Response(text=" ".join(words), token_ids=[-1] * len(words), tokens=words),
            player_names=players,
            masking=masking,
            batch_size=batch_size,
            details={
                "value": "per-word chain-rule terms of log P_ctc(transcript | masked audio)",
                "frames": n_frames,
                "frame_hop_s": hop / SAMPLE_RATE,
                "unscored_words": [i for i, ids in enumerate(labels) if not ids],
                "normalization": normalization if masking != "embedding" else None,
            },
            null_players=null_players(spans, owner_of_frame if masking == "embedding" else None),
            backend=self,
            audio=audio,
            labels=labels,
            frame_owner=owner_of_frame,
            spans=spans,
            noise=noise_track(spans, len(audio), noise_floor_rms(audio, SAMPLE_RATE), seed),
            frozen_stats=(float(np.mean(audio, dtype=np.float64)), float(np.var(audio, dtype=np.float64)))
            if normalization == "frozen" else None,
        )


@dataclass
class CtcGame(PreparedGame):
    """The value function of one utterance on a CTC recogniser: ``(k, n_words)`` chain-rule terms."""

    backend: CtcBackend | None = None
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    labels: list[list[int]] = field(default_factory=list)
    frame_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    noise: np.ndarray | None = None
    frozen_stats: tuple[float, float] | None = None

    def terms(self, waves: np.ndarray, mask_time_indices: np.ndarray | None = None) -> np.ndarray:
        emissions = self.backend.emissions(self.backend.input_values(waves, self.frozen_stats), mask_time_indices)
        flat = [label for ids in self.labels for label in ids]
        prefix, total = ctc_prefix_log_probs(emissions, flat, self.backend.blank_id)
        return word_terms(prefix, total, self.labels).cpu().numpy()

    def masked_waveform(self, present: np.ndarray) -> np.ndarray:
        """The audio of one coalition under waveform masking.

        Deletion can leave too few frames to spell the transcript (log P = -inf); the rest is then padded with
        trailing silence up to the shortest audio on which the transcript is possible.
        """
        wave = mask_waveform(self.audio, self.spans, present, self.masking, noise=self.noise)
        from sgpa.ctc import min_frames_needed

        min_frames = min_frames_needed(np.asarray([label for ids in self.labels for label in ids], dtype=np.int64))
        hop, receptive = frame_geometry(self.backend.model.config)
        min_samples = receptive + (max(min_frames, 1) - 1) * hop
        return wave if len(wave) >= min_samples else np.pad(wave, (0, min_samples - len(wave)))

    def log_probs(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = check_coalitions(coalitions, self.n_players)
        values = np.empty((len(coalitions), len(self.labels)), dtype=np.float64)
        for start in range(0, len(coalitions), self.batch_size):
            chunk = coalitions[start : start + self.batch_size]
            if self.masking == "embedding":
                masked_frames = np.zeros((len(chunk), len(self.frame_owner)), dtype=bool)
                is_word = self.frame_owner >= 0
                masked_frames[:, is_word] = ~chunk[:, self.frame_owner[is_word]]
                waves = np.broadcast_to(self.audio, (len(chunk), len(self.audio)))
                values[start : start + len(chunk)] = self.terms(waves, masked_frames)
                continue
            waves = [self.masked_waveform(present) for present in chunk]
            lengths = np.array([len(w) for w in waves])
            for length in np.unique(lengths):
                rows = np.flatnonzero(lengths == length)
                values[start + rows] = self.terms(np.stack([waves[r] for r in rows]))
        return values
