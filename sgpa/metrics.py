"""How far word boundaries are from the truth: the one boundary-error metric both alignment benchmarks use."""

from __future__ import annotations

import numpy as np


def boundary_errors_s(cuts_s: np.ndarray, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
    """Errors (seconds) of tiled word cuts against reference word times.

    Parameters
    ----------
    cuts_s : shape ``(n_words + 1,)``
        The utterance's first start, the cuts between consecutive words, and its last end.
    starts_s, ends_s : shape ``(n_words,)``
        Reference start and end time of every word.

    Returns
    -------
    np.ndarray, shape ``(n_words + 1,)``
        ``|cut - start|`` for the first start and ``|cut - end|`` for the last end. A cut between two words is
        exact anywhere inside the reference gap between them (a pause has no single true cut), so its error is
        its distance to that gap, 0 inside it; where the reference words overlap the "gap" is their overlap.
    """
    cuts_s, starts_s, ends_s = (np.asarray(values, dtype=np.float64) for values in (cuts_s, starts_s, ends_s))
    if cuts_s.size != starts_s.size + 1 or starts_s.size != ends_s.size or starts_s.size == 0:
        raise ValueError(
            f"need n_words + 1 cuts for n_words reference words, got {cuts_s.size} cuts, "
            f"{starts_s.size} starts and {ends_s.size} ends"
        )
    errors = np.empty(cuts_s.size)
    errors[0] = abs(cuts_s[0] - starts_s[0])
    errors[-1] = abs(cuts_s[-1] - ends_s[-1])
    gap_low = np.minimum(ends_s[:-1], starts_s[1:])
    gap_high = np.maximum(ends_s[:-1], starts_s[1:])
    interior = cuts_s[1:-1]
    errors[1:-1] = np.maximum(0.0, np.maximum(gap_low - interior, interior - gap_high))
    return errors
