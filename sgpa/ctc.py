"""Stage 1: CTC forced alignment of a transcript's characters to the audio.

A transformers CTC model (any ``AutoModelForCTC`` with its ``AutoProcessor``) turns the waveform
into emissions, a ``[n_frames, vocab_size]`` matrix of log-probabilities. The transcript, spelled
with the model's characters, becomes a label sequence (sub-words joined by the model's word
delimiter, e.g. ``|``); the Viterbi path through the CTC trellis gives each label a span of frames
and a confidence (its mean emission probability on those frames).

Short inputs use torchaudio's ``forced_align``; when the trellis would be large (minutes of audio)
a checkpointed Viterbi in numpy keeps memory at ``O(n_states * sqrt(n_frames))`` instead of
``O(n_states * n_frames)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from math import ceil, isqrt
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.errors import InputError
from sgpa.text import NormalizedWord

#: Where the project's own default CTC model is shipped.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "sgpa-ctc-en"
#: Config attribute a model trained with time-windowed CTC carries (see :class:`AcousticModel`).
DELIMITER_IN_GAP_ATTRIBUTE = "sgpa_delimiter_in_gap"

#: Above this many trellis cells (frames x states), align with the memory-frugal numpy Viterbi.
MAX_TRELLIS_CELLS = 50_000_000


@dataclass
class AcousticModel:
    """A loaded CTC model and everything needed to align with it.

    ``frame_duration_s`` is the time between consecutive output frames, measured from the model
    itself (not assumed): 20 ms for wav2vec2, 20-40 ms for log-mel models such as w2v-BERT.
    ``delimiter_marks_gaps`` is True when the model was trained to emit its word delimiter inside the pause
    between words (config attribute ``sgpa_delimiter_in_gap``, set by :mod:`sgpa.training.train_ctc` with
    time-windowed CTC); the pipeline then cuts between words at the delimiter.
    """

    model: Any
    processor: Any
    vocabulary: dict[str, int]
    blank_id: int
    word_delimiter: str | None
    frame_duration_s: float
    sample_rate: int
    name: str
    revision: str | None
    delimiter_marks_gaps: bool = False

    @property
    def characters(self) -> set[str]:
        """The single characters the model can spell words with (no special tokens, no delimiter)."""
        special = set(getattr(self.processor.tokenizer, "all_special_tokens", []))
        return {
            token
            for token, index in self.vocabulary.items()
            if len(token) == 1 and token not in special and token != self.word_delimiter and index != self.blank_id
        }


@dataclass
class CharacterAlignment:
    """Stage 1's output: each label of the transcript with its frame span.

    All arrays have shape ``[n_labels]``. ``word_index[k]`` is the transcript word label ``k`` belongs to,
    or ``-1`` for a word delimiter between two words (see :func:`label_sequence`). Frame spans are half-open ``[start_frame, end_frame)`` at
    ``frame_duration_s`` per frame; ``confidence`` is the mean emission probability of the label
    on its frames.
    """

    label_ids: np.ndarray
    word_index: np.ndarray
    start_frame: np.ndarray
    end_frame: np.ndarray
    confidence: np.ndarray
    frame_duration_s: float
    n_frames: int


def _weights_revision(model_dir: Path) -> str | None:
    """A short content hash of a local model's weights, so a segmentation records which weights made it."""
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not weights:
        return None
    digest = hashlib.sha256()
    for path in weights:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def _forward_log_probs(model: Any, processor: Any, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """One forward pass: waveform ``[n_samples]`` → log-probabilities ``[n_frames, vocab_size]``."""
    import torch

    inputs = processor.feature_extractor(waveform, sampling_rate=sample_rate, return_tensors="pt")
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in inputs.items()}
    with torch.inference_mode():
        logits = model(**inputs).logits[0]
    return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()


def measure_frame_duration_s(model: Any, processor: Any, sample_rate: int) -> float:
    """Seconds between output frames, from how the frame count grows with the input length.

    Two inputs (1 s and 3 s) are run; the difference cancels the fixed receptive-field offset.
    """
    rng = np.random.default_rng(0)
    short = rng.normal(scale=0.1, size=sample_rate).astype(np.float32)
    long = rng.normal(scale=0.1, size=3 * sample_rate).astype(np.float32)
    n_short = _forward_log_probs(model, processor, short, sample_rate).shape[0]
    n_long = _forward_log_probs(model, processor, long, sample_rate).shape[0]
    if n_long <= n_short:
        raise InputError("the acoustic model's output length does not grow with the input; is it a CTC model?")
    return round(2.0 / (n_long - n_short), 6)


def load_ctc_model(model: str | Path | None = None, device: str = "cpu") -> AcousticModel:
    """Load a transformers CTC model and its processor, once.

    Parameters
    ----------
    model
        A hub id (``"facebook/wav2vec2-base-960h"``) or a local directory saved with
        ``save_pretrained``. ``None`` loads the project's shipped default model from
        :data:`DEFAULT_MODEL_DIR` through the same ``from_pretrained`` path.
    device
        Torch device for the forward pass.

    Raises
    ------
    InputError
        The default model is not installed, or the model/processor cannot be loaded.
    """
    from transformers import AutoModelForCTC, AutoProcessor

    if model is None:
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise InputError(
                f"the default acoustic model is not installed (no config.json in {DEFAULT_MODEL_DIR}); "
                "pass --model with a CTC model directory or hub id"
            )
        model = DEFAULT_MODEL_DIR
    from sgpa.hub import check_device, check_hub_model

    check_device(device)
    local_dir = Path(model).expanduser()
    if not local_dir.is_dir():
        looks_like_hub_id = isinstance(model, str) and model.count("/") == 1 and not model.startswith((".", "/", "~"))
        if local_dir.exists() or not looks_like_hub_id:
            raise InputError(f"unknown model {str(model)!r}: not a model folder and not a hub id of the form owner/name")
        check_hub_model(str(model))
    source = str(local_dir) if local_dir.is_dir() else str(model)
    try:
        processor = AutoProcessor.from_pretrained(source)
        network = AutoModelForCTC.from_pretrained(source).to(device).eval()
    except Exception as error:
        reason = " ".join(str(error).split())[:300]
        raise InputError(f"cannot load the CTC model {source!r}: {reason}") from None
    tokenizer = processor.tokenizer
    vocabulary = dict(tokenizer.get_vocab())
    blank_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else network.config.pad_token_id
    delimiter = getattr(tokenizer, "word_delimiter_token", None)
    sample_rate = int(getattr(processor.feature_extractor, "sampling_rate", 16000))
    frame_duration_s = measure_frame_duration_s(network, processor, sample_rate)
    if local_dir.is_dir():
        revision = _weights_revision(local_dir)
    else:
        revision = getattr(network.config, "_commit_hash", None)
    return AcousticModel(
        model=network,
        processor=processor,
        vocabulary=vocabulary,
        blank_id=int(blank_id),
        word_delimiter=delimiter if delimiter in vocabulary else None,
        frame_duration_s=frame_duration_s,
        sample_rate=sample_rate,
        name=source,
        revision=revision,
        delimiter_marks_gaps=bool(getattr(network.config, DELIMITER_IN_GAP_ATTRIBUTE, False)),
    )


def compute_emissions(
    acoustic_model: AcousticModel, waveform: np.ndarray, chunk_s: float = 30.0, context_s: float = 1.0
) -> np.ndarray:
    """CTC log-probabilities for a mono waveform at ``acoustic_model.sample_rate``.

    Audio longer than ``chunk_s`` is run in chunks, each with ``context_s`` of extra audio on both
    sides whose frames are discarded, so memory does not grow with the duration.

    Returns
    -------
    np.ndarray, float32, shape ``[n_frames, vocab_size]``
    """
    model, processor, rate = acoustic_model.model, acoustic_model.processor, acoustic_model.sample_rate
    hop = max(1, round(acoustic_model.frame_duration_s * rate))  # samples per output frame
    chunk = max(hop, int(chunk_s * rate) // hop * hop)
    if waveform.size <= chunk:
        return _forward_log_probs(model, processor, waveform, rate)
    context = int(context_s * rate) // hop * hop
    pieces = []
    for start in range(0, waveform.size, chunk):
        stop = min(start + chunk, waveform.size)
        low, high = max(0, start - context), min(waveform.size, stop + context)
        log_probs = _forward_log_probs(model, processor, waveform[low:high], rate)
        first = (start - low) // hop
        last = log_probs.shape[0] if stop == waveform.size else first + (stop - start) // hop
        pieces.append(log_probs[first:last])
    return np.concatenate(pieces, axis=0)


def label_sequence(
    words: list[NormalizedWord], vocabulary: dict[str, int], word_delimiter: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """The CTC target of a transcript: every spelled character, with the word delimiter between spoken words.

    The one transcript -> labels function: stage 1's alignment, the CTC backend's value and the training
    recipe all spell through it, so they agree on where every delimiter goes.

    Parameters
    ----------
    words
        From :func:`sgpa.text.normalize_transcript` (``normalized`` spelled with the model's characters).
    vocabulary
        Token -> id of the CTC model.
    word_delimiter
        The delimiter token (``"|"``), or ``None`` for a vocabulary without one.

    Returns
    -------
    label_ids, word_index : np.ndarray, shape ``(n_labels,)``, int64
        ``word_index[k]`` is the transcript word label ``k`` belongs to. A delimiter *between* two words is
        ``-1``; a delimiter *inside* one word (a numeral spoken as several words, "42" -> FORTY|TWO, or a merged
        phrase) belongs to that word. Words with an empty spelling contribute no labels (and no delimiter).
    """
    label_ids: list[int] = []
    word_index: list[int] = []
    for index, word in enumerate(words):
        for part, sub_word in enumerate(word.normalized.split()):
            if word_delimiter is not None and label_ids:
                label_ids.append(vocabulary[word_delimiter])
                word_index.append(index if part else -1)
            label_ids.extend(vocabulary[char] for char in sub_word)
            word_index.extend([index] * len(sub_word))
    return np.asarray(label_ids, dtype=np.int64), np.asarray(word_index, dtype=np.int64)


def labels_per_word(label_ids: np.ndarray, word_index: np.ndarray, n_words: int) -> list[list[int]]:
    """Split a :func:`label_sequence` by word: each delimiter between two words goes with the word after it.

    Returns ``n_words`` lists of label ids (empty for a word with no spelling); concatenated they are ``label_ids``.
    """
    per_word: list[list[int]] = [[] for _ in range(n_words)]
    pending: list[int] = []
    for label, owner in zip(label_ids.tolist(), word_index.tolist(), strict=True):
        if owner < 0:
            pending.append(label)
            continue
        per_word[owner].extend(pending)
        per_word[owner].append(label)
        pending = []
    return per_word


def restrict_to_frames(log_probs: np.ndarray, blank_id: int, first_frame: int, end_frame: int) -> np.ndarray:
    """Emissions in which only the blank can be emitted outside frames ``[first_frame, end_frame)``.

    Used to keep labels out of the leading and trailing non-speech: a CTC model trained from scratch may
    fire a word's first character at frame 0, long before the word is spoken.
    """
    restricted = log_probs.copy()
    outside = np.ones(log_probs.shape[0], dtype=bool)
    outside[first_frame:end_frame] = False
    restricted[outside] = -np.inf
    restricted[outside, blank_id] = 0.0
    return restricted


def min_frames_needed(label_ids: np.ndarray) -> int:
    """Fewest frames a CTC path can spell ``label_ids`` in: one per label plus a blank between repeats."""
    repeats = int(np.count_nonzero(label_ids[1:] == label_ids[:-1])) if label_ids.size > 1 else 0
    return int(label_ids.size) + repeats


def _spans_from_frame_labels(frame_label: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """``[start, end)`` frames of each label from a per-frame label index (``-1`` = blank)."""
    starts = np.full(n_labels, -1, dtype=np.int64)
    ends = np.full(n_labels, -1, dtype=np.int64)
    frames = np.flatnonzero(frame_label >= 0)
    labels = frame_label[frames]
    # Frames of one label are contiguous on a CTC path, so the first and last occurrences bound it.
    first = np.r_[True, labels[1:] != labels[:-1]]
    last = np.r_[labels[1:] != labels[:-1], True]
    starts[labels[first]] = frames[first]
    ends[labels[last]] = frames[last] + 1
    return starts, ends


def viterbi_torchaudio(log_probs: np.ndarray, label_ids: np.ndarray, blank_id: int) -> np.ndarray:
    """Per-frame label index (``-1`` = blank) of the Viterbi path, by torchaudio's ``forced_align``."""
    import torch
    import torchaudio  # noqa: F401  (registers the torch.ops.torchaudio operators)

    # The operator behind torchaudio.functional.forced_align, called directly: the public wrapper (deprecated in 2.9,
    # kept in later releases) adds a deprecation warning, input checks that label_sequence already guarantees (no
    # blank among the labels, every id in the vocabulary) and a gather of per-frame scores this function drops: two
    # thirds of its time (0.09 of 0.13 ms for 150 frames and 40 labels on the project's CPU).
    n_frames, n_labels = log_probs.shape[0], label_ids.size
    path, _ = torch.ops.torchaudio.forced_align(
        torch.from_numpy(np.ascontiguousarray(log_probs))[None],
        torch.from_numpy(label_ids.astype(np.int32))[None],
        torch.tensor([n_frames]),
        torch.tensor([n_labels]),
        blank_id,
    )
    return label_index_of_frames(path[0].numpy(), blank_id)


def label_index_of_frames(tokens: np.ndarray, blank_id: int) -> np.ndarray:
    """Per-frame label index (``-1`` = blank) of a CTC token path ``[n_frames]``.

    A new label starts where a non-blank token follows a blank or differs from the previous frame's token.
    """
    tokens = np.asarray(tokens)
    spoken = tokens != blank_id
    previous = np.r_[blank_id, tokens[:-1]]
    starts = spoken & (tokens != previous)
    return np.where(spoken, np.cumsum(starts) - 1, -1).astype(np.int64)


def _viterbi_block(
    alpha: np.ndarray, emissions: np.ndarray, skip_penalty: np.ndarray, keep_choices: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Advance the CTC Viterbi scores over ``emissions`` (``[n_block_frames, n_states]``).

    ``skip_penalty[s]`` is 0 where state ``s`` may be entered from ``s - 2`` (skipping a blank
    between two different labels) and ``-inf`` elsewhere. Returns the scores after the last frame
    and, if asked, the move taken into every state at every frame (0 = stay, 1 = from the
    previous state, 2 = skip a blank), ``[n_block_frames, n_states]`` int8.
    """
    n_states = alpha.size
    choices = np.zeros((emissions.shape[0], n_states), dtype=np.int8) if keep_choices else None
    from_previous = np.full(n_states, -np.inf)
    from_skip = np.full(n_states, -np.inf)
    stay_or_step = np.empty(n_states)
    for row, emission in enumerate(emissions):
        from_previous[1:] = alpha[:-1]
        np.add(alpha[:-2], skip_penalty[2:], out=from_skip[2:])
        np.maximum(alpha, from_previous, out=stay_or_step)
        if choices is not None:
            np.greater(from_previous, alpha, out=choices[row], casting="unsafe")
            choices[row][from_skip > stay_or_step] = 2
        alpha = np.maximum(stay_or_step, from_skip)
        alpha += emission
    return alpha, choices


def viterbi_checkpointed(
    log_probs: np.ndarray, label_ids: np.ndarray, blank_id: int, block_frames: int | None = None
) -> np.ndarray:
    """Per-frame label index (``-1`` = blank) of the CTC Viterbi path in ``O(n_states * sqrt(n_frames))`` memory.

    The forward pass keeps the scores only at every ``block_frames``-th frame (default
    ``sqrt(n_frames)``); the backtrace recomputes one block's moves at a time.
    """
    n_frames = log_probs.shape[0]
    n_labels = label_ids.size
    states = np.full(2 * n_labels + 1, blank_id, dtype=np.int64)  # blank, l0, blank, l1, ..., blank
    states[1::2] = label_ids
    skip_penalty = np.full(states.size, -np.inf)
    skip_penalty[3::2] = np.where(label_ids[1:] != label_ids[:-1], 0.0, -np.inf)
    emissions = log_probs.astype(np.float64)
    block = block_frames or max(1, isqrt(n_frames))

    alpha = np.full(states.size, -np.inf)
    alpha[:2] = emissions[0, states[:2]]
    checkpoints = [alpha]  # scores after frames 0, block, 2*block, ...
    for start in range(1, n_frames, block):
        stop = min(start + block, n_frames)
        alpha, _ = _viterbi_block(alpha, emissions[start:stop][:, states], skip_penalty, keep_choices=False)
        checkpoints.append(alpha)

    final = checkpoints[-1]
    state = states.size - 1 if states.size == 1 or final[-1] >= final[-2] else states.size - 2
    path_states = np.empty(n_frames, dtype=np.int64)
    path_states[n_frames - 1] = state
    n_blocks = ceil((n_frames - 1) / block)
    for block_index in range(n_blocks - 1, -1, -1):
        start = 1 + block_index * block
        stop = min(start + block, n_frames)
        _, choices = _viterbi_block(
            checkpoints[block_index], emissions[start:stop][:, states], skip_penalty, keep_choices=True
        )
        for frame in range(stop - 1, start - 1, -1):
            state -= int(choices[frame - start, state])
            path_states[frame - 1] = state
    return np.where(path_states % 2 == 1, (path_states - 1) // 2, -1)


def label_confidence(log_probs: np.ndarray, label_ids: np.ndarray, frame_label: np.ndarray) -> np.ndarray:
    """Each label's mean probability over the frames the path gives it, ``[n_labels]`` (NaN for a label without a
    frame, which a complete CTC path never has)."""
    frames = np.flatnonzero(frame_label >= 0)
    labels = frame_label[frames]
    probabilities = np.exp(log_probs[frames, label_ids[labels]].astype(np.float64))
    totals = np.bincount(labels, weights=probabilities, minlength=label_ids.size)
    counts = np.bincount(labels, minlength=label_ids.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / counts


def align_characters(
    log_probs: np.ndarray,
    label_ids: np.ndarray,
    word_index: np.ndarray,
    blank_id: int,
    frame_duration_s: float,
    max_trellis_cells: int | None = None,
) -> CharacterAlignment:
    """Forced-align ``label_ids`` to ``log_probs`` (``[n_frames, vocab_size]``).

    Uses torchaudio's ``forced_align`` unless the trellis has more than ``max_trellis_cells``
    cells (default :data:`MAX_TRELLIS_CELLS`), then the checkpointed numpy Viterbi.

    Raises
    ------
    InputError
        The audio has fewer frames than the transcript needs (too short for its transcript).
    """
    n_frames = log_probs.shape[0]
    needed = min_frames_needed(label_ids)
    if n_frames < needed:
        raise InputError(
            f"the audio is too short for its transcript: {n_frames} frames of {frame_duration_s * 1000:.0f} ms "
            f"({n_frames * frame_duration_s:.2f} s) but the transcript needs at least {needed} "
            f"({needed * frame_duration_s:.2f} s)"
        )
    limit = MAX_TRELLIS_CELLS if max_trellis_cells is None else max_trellis_cells
    if n_frames * (2 * label_ids.size + 1) > limit:
        frame_label = viterbi_checkpointed(log_probs, label_ids, blank_id)
    else:
        frame_label = viterbi_torchaudio(log_probs, label_ids, blank_id)
    starts, ends = _spans_from_frame_labels(frame_label, label_ids.size)
    confidence = label_confidence(log_probs, label_ids, frame_label)
    return CharacterAlignment(
        label_ids=label_ids,
        word_index=word_index,
        start_frame=starts,
        end_frame=ends,
        confidence=confidence,
        frame_duration_s=frame_duration_s,
        n_frames=n_frames,
    )
