"""Greedy CTC decoding and character error rate."""

from __future__ import annotations

import numpy as np

from sgpa.training.model import BLANK_ID, WORD_DELIMITER


def greedy_decode(frame_ids: np.ndarray, id_to_token: dict[int, str], blank_id: int = BLANK_ID) -> str:
    """Collapse repeated frame labels, drop blanks and special tokens, and spell the result.

    Parameters
    ----------
    frame_ids : np.ndarray, shape (n_frames,), int
        The arg-max label of every output frame.

    Returns
    -------
    str
        Upper-case words separated by single spaces.
    """
    characters = []
    previous = None
    for label in np.asarray(frame_ids).tolist():
        if label != previous and label != blank_id:
            token = id_to_token.get(label, "")
            if token == WORD_DELIMITER:
                characters.append(" ")
            elif len(token) == 1:
                characters.append(token)
        previous = label
    return " ".join("".join(characters).split())


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance between two strings (unit costs)."""
    previous_row = list(range(len(hypothesis) + 1))
    for i, ref_char in enumerate(reference, start=1):
        row = [i]
        for j, hyp_char in enumerate(hypothesis, start=1):
            row.append(min(previous_row[j] + 1, row[j - 1] + 1, previous_row[j - 1] + (ref_char != hyp_char)))
        previous_row = row
    return previous_row[-1]


def character_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Total character edits over total reference characters (spaces count as characters)."""
    edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    total = sum(len(r) for r in references)
    return edits / max(total, 1)
