"""sgpa.metrics: the boundary-error metric of both alignment benchmarks, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from sgpa.metrics import boundary_errors_s


def test_a_cut_inside_the_true_pause_is_exact_and_outside_it_counts_its_distance():
    starts = np.array([0.10, 0.50, 1.00])
    ends = np.array([0.40, 0.90, 1.30])  # pauses 0.40-0.50 and 0.90-1.00
    cuts = np.array([0.12, 0.45, 1.05, 1.25])
    np.testing.assert_allclose(boundary_errors_s(cuts, starts, ends), [0.02, 0.0, 0.05, 0.05])


def test_without_a_pause_the_error_is_the_distance_to_the_shared_boundary():
    starts, ends = np.array([0.0, 0.3]), np.array([0.3, 0.6])
    np.testing.assert_allclose(boundary_errors_s(np.array([0.0, 0.27, 0.6]), starts, ends), [0.0, 0.03, 0.0])


def test_overlapping_reference_words_count_the_overlap_as_the_gap():
    starts, ends = np.array([0.0, 0.25]), np.array([0.30, 0.6])
    np.testing.assert_allclose(boundary_errors_s(np.array([0.0, 0.28, 0.6]), starts, ends), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(boundary_errors_s(np.array([0.0, 0.20, 0.6]), starts, ends), [0.0, 0.05, 0.0])


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="n_words \\+ 1 cuts"):
        boundary_errors_s(np.array([0.0, 1.0]), np.array([0.0, 0.5]), np.array([0.5, 1.0]))
