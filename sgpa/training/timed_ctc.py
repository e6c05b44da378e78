"""CTC loss restricted to paths that emit each character near where the corpus says its word was spoken.

Plain CTC learns *what* was said and leaves *when* to chance: a model trained from scratch may emit a word's
characters anywhere, often late and bunched together, and the aligner then inherits that drift. Our corpus knows
every word's (and phone's) exact time, so training can sum only over the CTC paths whose label frames fall in
time windows around them:

- a word's characters lie inside the word, ± ``tolerance_s``;
- its first character inside the word's first phone and its last character inside its last phone (± tolerance),
  which pins the characters next to a word boundary to that boundary;
- the word delimiter between two words lies in the gap between them (± tolerance).

Blanks are allowed everywhere. With every window open the loss equals plain CTC (tested against
``torch.nn.functional.ctc_loss``). An utterance with no admissible path (windows too tight for its spelling)
falls back to plain CTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEG_INF = -1e30  # finite "log 0": logsumexp over impossible states stays finite, so gradients never become NaN


@dataclass(frozen=True)
class WordEdges:
    """A word of the transcript with its time span and the spans of its first and last phones, in seconds."""

    start_s: float
    end_s: float
    first_phone_end_s: float | None = None
    last_phone_start_s: float | None = None


def word_edges(words: list[dict], phones: list[dict]) -> list[WordEdges]:
    """Corpus word and phone records (``start`` / ``end`` in seconds) as :class:`WordEdges`.

    A phone belongs to the word whose span contains it (1 ms slack); words without phones get word-level
    windows only.
    """
    result = []
    for word in words:
        start, end = float(word["start"]), float(word["end"])
        inside = [p for p in phones if p["start"] >= start - 1e-3 and p["end"] <= end + 1e-3]
        result.append(
            WordEdges(
                start_s=start,
                end_s=end,
                first_phone_end_s=float(inside[0]["end"]) if inside else None,
                last_phone_start_s=float(inside[-1]["start"]) if inside else None,
            )
        )
    return result


def label_windows_s(word_of_label: np.ndarray, words: list[WordEdges]) -> np.ndarray:
    """Time window of every label, before tolerance.

    Parameters
    ----------
    word_of_label : np.ndarray, shape (n_labels,), int
        For each label, the index of the transcript word it spells; a word delimiter between two words carries
        ``-1``. A delimiter inside one transcript word (a numeral spelled as two words) carries that word's index.
    words : list of WordEdges
        One per transcript word.

    Returns
    -------
    np.ndarray, shape (n_labels, 2), float64
        ``[earliest, latest]`` time in seconds at which each label may be emitted.
    """
    windows = np.zeros((len(word_of_label), 2))
    for position, index in enumerate(word_of_label):
        if index < 0:
            before = word_of_label[:position][word_of_label[:position] >= 0][-1]
            after = word_of_label[position + 1 :][word_of_label[position + 1 :] >= 0][0]
            windows[position] = (words[before].end_s, words[after].start_s)
            continue
        word = words[index]
        lo, hi = word.start_s, word.end_s
        mine = np.flatnonzero(word_of_label == index)
        if len(mine) > 1:  # a one-character word may sound anywhere in the word
            if position == mine[0] and word.first_phone_end_s is not None:
                hi = word.first_phone_end_s
            if position == mine[-1] and word.last_phone_start_s is not None:
                lo = word.last_phone_start_s
        windows[position] = (lo, hi)
    return windows


def windows_to_frames(windows_s, frame_duration_s: float, n_frames: int):
    """Label windows in seconds as ``[first, end)`` output-frame ranges.

    Frame ``t`` stands for time ``t * frame_duration_s`` (the convention of :mod:`sgpa.ctc`), so a window
    ``[a, b]`` admits frames ``floor(a / d)`` to ``floor(b / d)`` inclusive.

    Parameters
    ----------
    windows_s : torch.Tensor, shape (..., 2), float
    frame_duration_s : float
    n_frames : int
        Ranges are clipped to ``[0, n_frames]``.

    Returns
    -------
    torch.Tensor, shape (..., 2), int64
    """
    import torch

    first = torch.floor(windows_s[..., 0] / frame_duration_s)
    end = torch.floor(windows_s[..., 1] / frame_duration_s) + 1
    return torch.stack([first, end], dim=-1).clamp(0, n_frames).long()


def timed_ctc_loss(log_probs, input_lengths, labels, label_lengths, label_frames, blank: int = 0):
    """Negative log-probability of the labels, summed over CTC paths that respect the label frame ranges.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (batch, n_frames, n_classes)
        Log-softmax outputs of the model.
    input_lengths : torch.Tensor, shape (batch,), int
        Valid frames per row.
    labels : torch.Tensor, shape (batch, max_labels), int
        Label ids, padded with anything beyond ``label_lengths``.
    label_lengths : torch.Tensor, shape (batch,), int
    label_frames : torch.Tensor, shape (batch, max_labels, 2), int
        ``[first, end)`` frames in which each label may be emitted; ``[0, n_frames)`` leaves it free.
    blank : int
        Id of the CTC blank.

    Returns
    -------
    tuple of torch.Tensor
        ``(nll, feasible)``: per-row negative log-likelihood, shape (batch,), and whether any admissible path
        exists for the row (where it does not, ``nll`` is meaningless and must not be used).
    """
    import torch

    batch, n_frames, _ = log_probs.shape
    max_labels = labels.shape[1]
    n_states = 2 * max_labels + 1
    device = log_probs.device
    label_range = torch.arange(max_labels, device=device)
    valid_label = label_range[None, :] < label_lengths[:, None]
    safe_labels = torch.where(valid_label, labels, torch.full_like(labels, blank))

    # Extended sequence: blank, l1, blank, l2, ..., lL, blank (padding states are unreachable).
    extended = torch.full((batch, n_states), blank, dtype=torch.long, device=device)
    extended[:, 1::2] = safe_labels
    state_range = torch.arange(n_states, device=device)
    live_state = state_range[None, :] < (2 * label_lengths[:, None] + 1)

    frames = torch.arange(n_frames, device=device)
    allowed_label = (frames[None, None, :] >= label_frames[:, :, 0:1]) & (frames[None, None, :] < label_frames[:, :, 1:2])
    allowed = torch.ones((batch, n_states, n_frames), dtype=torch.bool, device=device)
    allowed[:, 1::2, :] = allowed_label & valid_label[:, :, None]
    allowed &= live_state[:, :, None]

    emissions = torch.gather(log_probs, 2, extended[:, None, :].expand(batch, n_frames, n_states))
    emissions = emissions.masked_fill(~allowed.transpose(1, 2), NEG_INF)

    # A label state may be entered from two states back when it differs from that label (no blank needed).
    can_skip = torch.zeros((batch, n_states), dtype=torch.bool, device=device)
    can_skip[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    skip_mask = torch.where(can_skip, 0.0, NEG_INF).to(log_probs.dtype)
    neg = torch.full((batch, 1), NEG_INF, dtype=log_probs.dtype, device=device)

    alpha = torch.full((batch, n_states), NEG_INF, dtype=log_probs.dtype, device=device)
    alpha[:, :2] = emissions[:, 0, :2]
    alpha = torch.where(live_state, alpha, torch.full_like(alpha, NEG_INF))
    for t in range(1, n_frames):
        stay = alpha
        step = torch.cat([neg, alpha[:, :-1]], dim=1)
        skip = torch.cat([neg, neg, alpha[:, :-2]], dim=1) + skip_mask
        new_alpha = torch.logsumexp(torch.stack([stay, step, skip]), dim=0) + emissions[:, t]
        active = (t < input_lengths)[:, None]
        alpha = torch.where(active, new_alpha, alpha)

    last = 2 * label_lengths
    final = torch.logsumexp(
        torch.stack([alpha.gather(1, last[:, None]), alpha.gather(1, (last - 1).clamp(min=0)[:, None])]), dim=0
    )[:, 0]
    feasible = final > NEG_INF / 2
    return -final, feasible
