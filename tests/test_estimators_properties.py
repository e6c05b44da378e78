"""Property tests on random small games (hypothesis): the Shapley axioms and honest accounting."""

import math
from itertools import permutations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpa.attribution.estimators import estimate
from sgpa.attribution.estimators.result import all_coalitions
from sgpa.attribution.game import Game, coalition_keys


@st.composite
def table_games(draw, max_players=6):
    """A game given by an arbitrary table of values, one per coalition (row m = bits of m)."""
    n = draw(st.integers(1, max_players))
    values = draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2**n, max_size=2**n))
    return n, np.array(values)


def table_value_fn(n, table):
    weights = 1 << np.arange(n)
    return lambda c: table[c.astype(np.int64) @ weights]


def shapley_by_permutations(n, table):
    phi = np.zeros(n)
    for order in permutations(range(n)):
        mask = 0
        for player in order:
            phi[player] += table[mask | (1 << player)] - table[mask]
            mask |= 1 << player
    return phi / math.factorial(n)


@settings(max_examples=40, deadline=None)
@given(table_games(max_players=5))
def test_exact_equals_the_definition_and_is_efficient(game_table):
    n, table = game_table
    result = estimate(Game(table_value_fn(n, table), n), "exact")
    np.testing.assert_allclose(result.phi[:, 0], shapley_by_permutations(n, table), atol=1e-9)
    np.testing.assert_allclose(result.v_empty, [table[0]])
    np.testing.assert_allclose(result.v_full, [table[-1]])
    assert result.efficiency_gap[0] < 1e-9
    assert result.n_evaluations == 2**n


@settings(max_examples=30, deadline=None)
@given(table_games(), st.integers(0, 2**31 - 1))
def test_regression_with_the_full_budget_is_exact(game_table, seed):
    n, table = game_table
    exact = estimate(Game(table_value_fn(n, table), n), "exact").phi
    kernel = estimate(Game(table_value_fn(n, table), n), "kernel", budget=2**n, seed=seed).phi
    np.testing.assert_allclose(kernel, exact, atol=1e-7 * (1 + np.abs(table).max()))


@settings(max_examples=30, deadline=None)
@given(table_games(), st.permutations(range(6)))
def test_relabelling_players_relabels_values(game_table, relabel):
    # Symmetry in its general form: phi(v o pi) = phi(v) o pi.
    n, table = game_table
    pi = np.array([p for p in relabel if p < n])
    value_fn = table_value_fn(n, table)
    phi = estimate(Game(value_fn, n), "exact").phi[:, 0]
    # In the relabelled game, new player pi_inv[k] plays the part of old player k.
    phi_relabelled = estimate(Game(lambda c: value_fn(c[:, np.argsort(pi)]), n), "exact").phi[:, 0]
    np.testing.assert_allclose(phi_relabelled, phi[pi], atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(table_games(max_players=5), st.integers(0, 2**31 - 1))
def test_added_null_player_gets_zero_and_changes_nothing_else(game_table, seed):
    n, table = game_table
    value_fn = table_value_fn(n, table)
    before = estimate(Game(value_fn, n), "exact").phi[:, 0]
    with_null = Game(lambda c: value_fn(c[:, :n]), n + 1)
    after = estimate(with_null, "exact").phi[:, 0]
    np.testing.assert_allclose(after[:n], before, atol=1e-9)
    assert abs(after[n]) < 1e-9
    sampled = estimate(Game(lambda c: value_fn(c[:, :n]), n + 1), "permutation",
                       budget=2 * (n + 1) + 10, seed=seed)
    assert abs(sampled.phi[n, 0]) < 1e-9


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 40),
    st.sampled_from(["permutation", "kernel", "banzhaf", "loo"]),
    st.integers(0, 600),
    st.integers(0, 2**31 - 1),
)
def test_sampled_estimators_respect_the_budget_and_efficiency(n, method, extra, seed):
    rng = np.random.default_rng(seed)
    weights, pair = rng.normal(size=n), rng.normal(size=n - 1)
    calls: list[bytes] = []

    def value_fn(c):
        calls.extend(coalition_keys(c))
        c = c.astype(float)
        return c @ weights + (c[:, :-1] * c[:, 1:]) @ pair + 0.3 * c[:, 0] * c[:, -1] * c[:, n // 2]

    minimum = {"permutation": 2 * n, "kernel": min(n + 2, 2**n), "banzhaf": min(4, 2**n), "loo": n + 2}
    budget = minimum[method] + extra
    game = Game(value_fn, n, batch_size=17)
    result = estimate(game, method, budget=budget, seed=seed)
    assert result.n_evaluations == game.n_evaluations == len(calls) == len(set(calls)) <= budget
    assert np.isfinite(result.phi).all()
    if result.index == "shapley":
        assert result.efficiency_gap[0] < 1e-8 * (1 + np.abs(weights).sum() + np.abs(pair).sum())
