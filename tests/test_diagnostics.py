import math

import numpy as np
import pytest

from sgpa.attribution.diagnostics import (
    concentration,
    evaluation_cost,
    gini,
    normalized_entropy,
    top_k_mass,
)


def test_evaluation_cost_counts_orders_of_magnitude():
    cost = evaluation_cost(n_words=10, n_native_tokens=50)
    assert cost["log10_coalitions_words"] == pytest.approx(10 * math.log10(2))
    assert cost["log10_coalitions_tokens"] == pytest.approx(50 * math.log10(2))
    # 2^50 / 2^10 = 2^40 ~ 1.1e12
    assert cost["log10_reduction"] == pytest.approx(math.log10(2**40))


def test_uniform_attributions_are_not_concentrated():
    phi = np.full(8, 0.5)
    assert normalized_entropy(phi) == pytest.approx(1.0)
    assert gini(phi) == pytest.approx(0.0)
    assert top_k_mass(phi, 1) == pytest.approx(1 / 8)


def test_single_player_holds_everything():
    phi = np.array([0.0, -3.0, 0.0, 0.0])  # the sign does not matter, the magnitude does
    assert normalized_entropy(phi) == pytest.approx(0.0)
    assert gini(phi) == pytest.approx(3 / 4)
    assert top_k_mass(phi, 1) == pytest.approx(1.0)


def test_gini_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=9)
    x = np.abs(phi)
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size * x.sum())
    assert gini(phi) == pytest.approx(pairwise)


def test_top3_mass_and_degenerate_inputs():
    phi = np.array([4.0, 3.0, 2.0, 1.0])
    figures = concentration(phi)
    assert figures["top3_mass"] == pytest.approx(0.9)
    assert math.isnan(normalized_entropy(np.zeros(5)))
    assert math.isnan(gini(np.zeros(5)))
    assert math.isnan(normalized_entropy(np.array([2.0])))


def test_modality_shares_split_the_mass_by_modality_and_by_response_window():
    from sgpa.attribution.diagnostics import modality_shares

    # 2 audio players, 1 prompt word; 4 response tokens: the audio carries the first half, the prompt the second
    phi = np.array([[1.0, -1.0, 0.0, 0.0],
                    [2.0, 0.0, 0.0, 0.0],
                    [0.0, 0.0, 3.0, -1.0]])
    shares = modality_shares(phi, [True, True, False], n_windows=2)
    assert shares["a_shap"] == pytest.approx(4 / 8) and shares["t_shap"] == pytest.approx(0.5)
    assert shares["generative"] == [pytest.approx(1.0), pytest.approx(0.0)]
    assert modality_shares(phi[:, :1], [True, True, False], n_windows=3)["generative"] == [1.0, None, None]
