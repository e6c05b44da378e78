"""Estimators against closed-form games, the Shapley axioms, shap, and their own cost accounting."""

import itertools
import math

import numpy as np
import pytest

from sgpa.attribution.estimators import AttributionResult, estimate, regression
from sgpa.attribution.estimators.exact import shapley_from_table
from sgpa.attribution.estimators.permutation import quadruples
from sgpa.attribution.estimators.result import all_coalitions
from sgpa.attribution.game import Game, coalition_keys
from sgpa.errors import InputError

SHAPLEY_METHODS = ("exact", "permutation", "kernel")


# --- games with known values -------------------------------------------------------------------


def additive(weights):
    weights = np.asarray(weights, dtype=float)
    return lambda c: c @ weights


def unanimity(n, members):
    mask = np.zeros(n, dtype=bool)
    mask[list(members)] = True
    return lambda c: (c[:, mask].all(axis=1)).astype(float)


def weighted_majority(quota, weights):
    weights = np.asarray(weights, dtype=float)
    return lambda c: (c @ weights >= quota).astype(float)


def glove(left, right):
    return lambda c: np.minimum(c[:, left].sum(axis=1), c[:, right].sum(axis=1)).astype(float)


def interactions(n, seed, n_terms=12, max_order=4):
    """A sum of unanimity games with random members and coefficients, and its Shapley values."""
    rng = np.random.default_rng(seed)
    members = np.zeros((n + n_terms, n), dtype=bool)
    members[np.arange(n), np.arange(n)] = True
    for row in range(n, n + n_terms):
        members[row, rng.choice(n, size=rng.integers(2, max_order + 1), replace=False)] = True
    coefficients = rng.normal(size=len(members))
    sizes = members.sum(axis=1)

    def value(c):
        return ((c.astype(int) @ members.T) == sizes) @ coefficients

    return value, members.T @ (coefficients / sizes)


def relative_error(phi, reference):
    return np.linalg.norm(phi - reference) / np.linalg.norm(reference)


# --- closed forms ------------------------------------------------------------------------------

CLOSED_FORM = [
    ("additive", 5, additive([1.0, -2.0, 0.5, 0.0, 3.0]), [1.0, -2.0, 0.5, 0.0, 3.0]),
    ("unanimity", 6, unanimity(6, [1, 3, 4]), [0, 1 / 3, 0, 1 / 3, 1 / 3, 0]),
    ("majority", 5, weighted_majority(3, [1, 1, 1, 1, 1]), [0.2] * 5),
    ("weighted majority", 3, weighted_majority(3, [2, 1, 1]), [2 / 3, 1 / 6, 1 / 6]),
    ("glove 1 left 3 right", 4, glove([0], [1, 2, 3]), [3 / 4, 1 / 12, 1 / 12, 1 / 12]),
    ("glove 2 left 1 right", 3, glove([0, 1], [2]), [1 / 6, 1 / 6, 2 / 3]),
]


@pytest.mark.parametrize("method", SHAPLEY_METHODS + ("auto",))
@pytest.mark.parametrize("name, n, value_fn, expected", CLOSED_FORM, ids=[c[0] for c in CLOSED_FORM])
def test_shapley_estimators_match_closed_forms(method, name, n, value_fn, expected):
    # With 2**n evaluations the regression enumerates every coalition, and many antithetic
    # permutation pairs average out, so all three must agree with the closed form.
    budget = 2**n if method != "permutation" else 20_000
    game = Game(value_fn, n)
    result = estimate(game, method, budget=budget, seed=1)
    tolerance = 1e-9 if method != "permutation" else 0.03
    np.testing.assert_allclose(result.phi[:, 0], expected, atol=tolerance)
    assert result.index == "shapley"
    assert result.efficiency_gap.max() < 1e-9


def test_banzhaf_and_loo_are_labelled_and_match_their_closed_forms():
    n = 5
    game = Game(unanimity(n, [0, 2, 3]), n)
    banzhaf = estimate(game, "banzhaf", budget=2**n)
    assert banzhaf.index == banzhaf.method == "banzhaf"
    np.testing.assert_allclose(banzhaf.phi[:, 0], [0.25, 0, 0.25, 0.25, 0])
    # Banzhaf values of a unanimity game do not add up to v(N) - v(empty) = 1: reported, not hidden.
    np.testing.assert_allclose(banzhaf.efficiency_gap, [0.25])

    loo = estimate(Game(unanimity(n, [0, 2, 3]), n), "loo")
    assert loo.index == loo.method == "loo"
    np.testing.assert_allclose(loo.phi[:, 0], [1, 0, 1, 1, 0])
    assert loo.n_evaluations == n + 2
    np.testing.assert_allclose(loo.efficiency_gap, [2.0])


def test_exact_matches_shap_exact_explainer():
    shap = pytest.importorskip("shap")
    n = 7
    value_fn, _ = interactions(n, seed=3)
    result = estimate(Game(value_fn, n), "exact")

    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    explainer = shap.ExactExplainer(lambda x: value_fn(x > 0.5), masker)
    explanation = explainer(np.ones((1, n)))
    np.testing.assert_allclose(result.phi[:, 0], explanation.values[0], atol=1e-10)
    np.testing.assert_allclose(result.v_empty, [explanation.base_values[0]])


def test_exact_equals_average_over_all_permutations():
    from itertools import permutations

    n = 5
    value_fn, closed_form = interactions(n, seed=4, n_terms=6)
    table = value_fn(all_coalitions(n))
    by_definition = np.zeros(n)
    for order in permutations(range(n)):
        mask = 0
        for player in order:
            by_definition[player] += table[mask | (1 << player)] - table[mask]
            mask |= 1 << player
    by_definition /= math.factorial(n)
    np.testing.assert_allclose(shapley_from_table(table[:, None])[:, 0], by_definition)
    np.testing.assert_allclose(by_definition, closed_form)


# --- axioms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", SHAPLEY_METHODS)
def test_efficiency_holds_exactly_for_every_shapley_estimator(method):
    n = 9
    value_fn, _ = interactions(n, seed=5)
    result = estimate(Game(value_fn, n), method, budget=2**n if method == "exact" else 120, seed=2)
    np.testing.assert_allclose(result.phi.sum(), result.v_full - result.v_empty, atol=1e-9)
    assert result.efficiency_gap.max() < 1e-9


def test_symmetric_players_get_equal_values():
    n = 6
    # Players 1 and 4 enter the game only through their count, so they are interchangeable.
    def value_fn(c):
        return np.sqrt(c[:, 1].astype(float) + c[:, 4] + 2 * c[:, 0] * c[:, 2]) + c[:, 3] * c[:, 5]

    phi = estimate(Game(value_fn, n), "exact").phi[:, 0]
    assert phi[1] == pytest.approx(phi[4], abs=1e-12)
    assert phi[3] == pytest.approx(phi[5], abs=1e-12)


@pytest.mark.parametrize("method", ("exact", "permutation"))
def test_null_player_gets_zero(method):
    n = 8
    inner, _ = interactions(n - 1, seed=6)
    game = Game(lambda c: inner(c[:, :-1]), n)  # the last player never changes the value
    result = estimate(game, method, budget=2**n if method == "exact" else 100, seed=0)
    assert result.phi[-1, 0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ("exact", "permutation", "kernel", "banzhaf", "loo"))
def test_estimators_are_linear_in_the_game(method):
    # Sampling depends on the seed only, never on the values, so even sampled estimates are linear — for the regression
    # as long as the budget buys no screened interaction terms (which are picked from the values): 60 = 7.5 n here.
    n = 8
    v, _ = interactions(n, seed=7)
    w, _ = interactions(n, seed=8)
    budget = 2**n if method == "exact" else 60

    def run(value_fn):
        return estimate(Game(value_fn, n), method, budget=budget, seed=3).phi

    np.testing.assert_allclose(run(lambda c: 2 * v(c) - 3 * w(c)), 2 * run(v) - 3 * run(w), atol=1e-9)


# --- sampled estimators converge ---------------------------------------------------------------


@pytest.mark.parametrize("method", ("permutation", "kernel"))
def test_sampled_estimators_converge_to_exact_values(method):
    n = 10
    errors = []
    for budget in (60, 250, 1000):
        per_seed = []
        for seed in range(4):
            value_fn, reference = interactions(n, seed=seed, n_terms=15)
            result = estimate(Game(value_fn, n), method, budget=budget, seed=seed)
            per_seed.append(relative_error(result.phi[:, 0], reference))
        errors.append(np.mean(per_seed))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.35 * errors[0]
    assert errors[2] < 0.05


@pytest.mark.parametrize("sampling", ("leverage", "kernel"))
def test_regression_with_every_coalition_is_exact(sampling):
    n = 7
    value_fn, reference = interactions(n, seed=9)
    result = regression.approximate(Game(value_fn, n), budget=2**n, sampling=sampling)
    np.testing.assert_allclose(result.phi[:, 0], reference, atol=1e-9)
    assert result.converged


def test_regression_enumerates_whole_sizes_when_the_budget_allows():
    n = 10
    masses = regression.size_masses(n)
    enumerated, sampled = regression.plan_enumeration(n, 400, masses)
    assert enumerated == [1, 9, 2, 8] and sampled == [3, 4, 5, 6, 7]
    assert regression.plan_enumeration(n, 2**n - 2, masses) == (list(range(1, n)), [])
    # Sizes 1 and n - 1 (20 coalitions here) from 2 n to 4 n, and where their kernel weight (39 %) pays for them
    assert regression.plan_enumeration(n, 30, masses) == ([1, 9], [2, 3, 4, 5, 6, 7, 8])
    assert regression.plan_enumeration(n, 19, masses)[0] == []
    assert regression.plan_enumeration(n, 45, masses)[0] == []
    assert regression.plan_enumeration(n, 60, masses)[0] == [1, 9]
    # above SINGLES_BY_KERNEL_SHARE_MAX_N players only the general rule (or a budget below 4 n) enumerates them
    big = regression.SINGLES_BY_KERNEL_SHARE_MAX_N + 8
    big_masses = (regression.size_masses(big) > 0) * 1.0  # the default (leverage) sampling: sizes uniform
    assert regression.plan_enumeration(big, 10 * big, big_masses)[0] == []
    assert regression.plan_enumeration(big, 3 * big, big_masses)[0] == [1, big - 1]
    assert regression.plan_enumeration(big, big * (big - 1), big_masses)[0] == [1, big - 1]  # its uniform share pays


def test_permutation_quadruples_stratify_positions():
    n = 10
    pairs = quadruples(np.random.default_rng(0), n, 3)
    assert pairs.shape == (6, 2, n)
    for q in range(3):
        first, second = pairs[2 * q], pairs[2 * q + 1]
        np.testing.assert_array_equal(first[1], first[0][::-1])
        np.testing.assert_array_equal(second[0], np.roll(first[0], n // 2))
        np.testing.assert_array_equal(second[1], second[0][::-1])
        positions = np.argsort(np.concatenate([first, second]), axis=1)  # [4 orders, n players]
        # Every player is in the first half of exactly two of the four orders.
        assert ((positions < n // 2).sum(axis=0) == 2).all()


def test_sampled_banzhaf_converges_to_exact_banzhaf():
    n = 9
    value_fn, _ = interactions(n, seed=10)
    exact = estimate(Game(value_fn, n), "banzhaf", budget=2**n).phi[:, 0]
    errors = [relative_error(estimate(Game(value_fn, n), "banzhaf", budget=b, seed=1).phi[:, 0], exact)
              for b in (40, 500)]
    assert errors[1] < 0.5 * errors[0]


@pytest.mark.parametrize("method", ("permutation", "kernel", "banzhaf"))
def test_standard_errors_match_the_spread_over_seeds(method):
    n = 8
    value_fn, _ = interactions(n, seed=11)
    runs = [estimate(Game(value_fn, n), method, budget=100, seed=seed) for seed in range(40)]
    spread = np.std([r.phi[:, 0] for r in runs], axis=0, ddof=1)
    reported = np.mean([r.stderr[:, 0] for r in runs], axis=0)
    ratio = reported.mean() / spread.mean()
    assert 0.6 < ratio < 1.6


@pytest.mark.parametrize("method", ("permutation", "kernel"))
def test_tolerance_stops_sampling_early(method):
    n = 12
    value_fn, _ = interactions(n, seed=12, n_terms=5, max_order=3)
    result = estimate(Game(value_fn, n), method, budget=4000, tolerance=0.05, seed=0)
    assert result.converged
    assert result.stderr.max() < 0.05
    assert result.n_evaluations < 4000

    # Thirty interactions up to order 6 within a budget of 200: more than the regression's screened terms can fit exactly.
    hard_fn, _ = interactions(n, seed=12, n_terms=30, max_order=6)
    unconverged = estimate(Game(hard_fn, n), method, budget=200, tolerance=1e-6, seed=0)
    assert not unconverged.converged


# --- cost accounting ---------------------------------------------------------------------------


class Recorder:
    def __init__(self, value_fn):
        self.value_fn = value_fn
        self.keys: list[bytes] = []

    def __call__(self, coalitions):
        self.keys += coalition_keys(coalitions)
        return self.value_fn(coalitions)


def test_exact_uses_exactly_two_to_the_n_evaluations_in_batches():
    n = 10
    recorder = Recorder(interactions(n, seed=13)[0])
    game = Game(recorder, n, batch_size=64)
    result = estimate(game)  # auto: exact for 10 players
    assert result.method == "exact" and result.converged and result.stderr is None
    assert result.n_evaluations == game.n_evaluations == len(recorder.keys) == len(set(recorder.keys)) == 2**n
    assert result.n_batches == 2**n // 64
    assert result.eval_seconds <= result.wall_seconds
    # A second explanation of the same game costs nothing: every coalition is cached.
    again = estimate(game, "exact")
    assert again.n_evaluations == 0
    np.testing.assert_array_equal(again.phi, result.phi)


@pytest.mark.parametrize("method", ("permutation", "kernel", "banzhaf", "loo"))
@pytest.mark.parametrize("n, budget", [(6, 20), (6, 50), (13, 40), (13, 300), (30, 600)])
def test_sampled_estimators_stay_within_budget_and_never_repeat(method, n, budget):
    if method == "permutation" and budget < 2 * n:
        budget = 2 * n
    recorder = Recorder(interactions(n, seed=14)[0])
    game = Game(recorder, n, batch_size=32)
    result = estimate(game, method, budget=budget, seed=5)
    assert result.n_evaluations == game.n_evaluations == len(recorder.keys) <= budget
    assert len(set(recorder.keys)) == len(recorder.keys)
    assert coalition_keys(np.zeros((1, n), bool))[0] in recorder.keys
    assert coalition_keys(np.ones((1, n), bool))[0] in recorder.keys
    if method != "loo":
        # The budget is spent, not left over (up to one sampling step).
        assert result.n_evaluations > budget - 2 * n
    assert result.budget == budget


def test_auto_picks_exact_then_regression_then_permutation_as_the_budget_shrinks():
    n = 13
    value_fn, _ = interactions(n, seed=15)
    assert estimate(Game(value_fn, n)).method == "kernel"  # default budget 20 n < 2**13
    assert estimate(Game(value_fn, n), budget=2**n).method == "exact"
    assert estimate(Game(value_fn, n), budget=5 * n).method == "permutation"
    assert estimate(Game(value_fn, n), budget=6 * n).method == "kernel"
    assert estimate(Game(value_fn, n), budget=3 * n).method == "kernel"
    assert estimate(Game(value_fn, n), budget=2 * n).method == "permutation"
    small, _ = interactions(8, seed=15)  # 255 evaluations for 8 players: sample, don't enumerate
    assert estimate(Game(small, 8), budget=2**8 - 1).method == "kernel"


def test_naming_exact_or_loo_without_a_budget_gets_their_full_cost():
    n = 13
    value_fn, reference = interactions(n, seed=18)
    exact = estimate(Game(value_fn, n), "exact")
    assert exact.n_evaluations == 2**n
    np.testing.assert_allclose(exact.phi[:, 0], reference, atol=1e-9)
    assert estimate(Game(value_fn, n), "loo").n_evaluations == n + 2


@pytest.mark.parametrize(
    "method, n, budget, message",
    [
        ("exact", 6, 63, "2\\*\\*6 = 64"),
        ("loo", 6, 7, "at least 8"),
        ("kernel", 6, 1, "at least"),
        ("permutation", 6, 11, "at least 12"),
        ("banzhaf", 6, 1, "at least"),
        ("shapley-ish", 6, 100, "unknown attribution method"),
    ],
)
def test_budgets_too_small_or_unknown_methods_are_input_errors(method, n, budget, message):
    game = Game(additive(np.ones(n)), n)
    with pytest.raises(InputError, match=message):
        estimate(game, method, budget=budget)
    assert game.n_evaluations == 0


# --- several outputs ----------------------------------------------------------------------------


def multi_output_game(n, seed):
    v, _ = interactions(n, seed=seed)
    w, _ = interactions(n, seed=seed + 1)
    return lambda c: np.stack([v(c), np.tanh(w(c)), v(c) * w(c)], axis=1)


@pytest.mark.parametrize("method", ("exact", "permutation", "banzhaf", "loo"))
def test_multi_output_equals_per_output_scalar_runs(method):
    n = 8
    value_fn = multi_output_game(n, seed=16)
    budget = 2**n if method == "exact" else 110
    result = estimate(Game(value_fn, n), method, budget=budget, seed=4)
    assert result.phi.shape == (n, 3)
    for t in range(3):
        scalar = estimate(Game(lambda c, t=t: value_fn(c)[:, t], n), method, budget=budget, seed=4)
        np.testing.assert_allclose(result.phi[:, t], scalar.phi[:, 0], atol=1e-10)
        if scalar.stderr is not None:
            np.testing.assert_allclose(result.stderr[:, t], scalar.stderr[:, 0], atol=1e-10)
        np.testing.assert_allclose(result.efficiency_gap[t], scalar.efficiency_gap[0], atol=1e-10)


def test_regression_shares_its_terms_between_outputs():
    """The screened terms are chosen on the summed output and shared, so the outputs' values add up to the summed
    game's; without them (main effects only) each output's values equal a scalar run's."""
    n = 8
    value_fn = multi_output_game(n, seed=16)
    budget = 200
    result = regression.approximate(Game(value_fn, n), budget, seed=4)
    summed = regression.approximate(Game(lambda c: value_fn(c).sum(axis=1), n), budget, seed=4)
    np.testing.assert_allclose(result.phi.sum(axis=1), summed.phi[:, 0], atol=1e-10)
    np.testing.assert_allclose(result.stderr_total, summed.stderr[:, 0], atol=1e-10)
    main_only = regression.approximate(Game(value_fn, n), budget, seed=4, screening="none")
    for t in range(3):
        scalar = regression.approximate(Game(lambda c, t=t: value_fn(c)[:, t], n), budget, seed=4, screening="none")
        np.testing.assert_allclose(main_only.phi[:, t], scalar.phi[:, 0], atol=1e-10)
        np.testing.assert_allclose(main_only.stderr[:, t], scalar.stderr[:, 0], atol=1e-10)


@pytest.mark.parametrize("method", ("exact", "permutation", "kernel"))
def test_total_is_the_summed_scalar_game(method):
    n = 8
    value_fn = multi_output_game(n, seed=17)
    budget = 2**n if method == "exact" else 110
    total = estimate(Game(value_fn, n), method, budget=budget, seed=4).total()
    scalar = estimate(Game(lambda c: value_fn(c).sum(axis=1), n), method, budget=budget, seed=4)
    assert isinstance(total, AttributionResult) and total.phi.shape == (n, 1)
    np.testing.assert_allclose(total.phi, scalar.phi, atol=1e-9)
    np.testing.assert_allclose(total.v_full - total.v_empty, scalar.v_full - scalar.v_empty)
    if scalar.stderr is not None:
        np.testing.assert_allclose(total.stderr, scalar.stderr, atol=1e-9)


def test_progress_bar_is_shown_on_request(capsys):
    n = 6
    estimate(Game(additive(np.ones(n)), n), "exact", progress=True)
    assert f"{2**n}/{2**n}" in capsys.readouterr().err
    estimate(Game(additive(np.ones(n)), n), "exact")
    assert capsys.readouterr().err == ""


def test_player_names_are_carried_into_the_result():
    game = Game(additive([1.0, 2.0]), 2, player_names=["hello", "world"])
    assert estimate(game).player_names == ["hello", "world"]


# --- error bars that hold -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "per_player", "max_order"),
                         [("permutation", 5, 3), ("permutation", 10, 3), ("kernel", 5, 3), ("kernel", 20, 6)])
def test_nominal_95_percent_intervals_cover_on_a_game_with_interactions(method, per_player, max_order):
    # At 20 n the regression fits a game of order 3 exactly (error and standard error ~1e-15): order 6 there.
    n = 10
    value_fn, exact = interactions(n, seed=21, n_terms=10 if max_order == 3 else 20, max_order=max_order)
    hits = []
    for seed in range(120):
        result = estimate(Game(value_fn, n), method, budget=per_player * n, seed=seed)
        low, high = result.interval(0.95)
        hits.extend((low[:, 0] <= exact) & (exact <= high[:, 0]))
        assert result.dof is not None and result.dof >= 1
    assert 0.90 <= np.mean(hits) <= 0.995


def test_a_sampled_result_without_an_error_estimate_says_why():
    n = 8
    value_fn, _ = interactions(n, seed=3)
    result = estimate(Game(value_fn, n), "permutation", budget=2 * n, seed=0)  # one antithetic pair
    assert result.stderr is not None and np.isnan(result.stderr).all()
    assert "one permutation pair" in result.note
    assert all(np.isnan(bound).all() for bound in result.interval())
    exact_result = estimate(Game(value_fn, n), "exact")
    assert exact_result.stderr is None and exact_result.interval() is None and exact_result.dof is None


def test_t_intervals_widen_with_few_units():
    from sgpa.attribution.estimators.result import t_quantile

    assert t_quantile(0.95, 3) == pytest.approx(3.182, abs=1e-3)
    assert t_quantile(0.95, float("inf")) == pytest.approx(1.960, abs=1e-3)
    assert t_quantile(0.95, None) == pytest.approx(1.960, abs=1e-3)


# --- the regression's pieces ----------------------------------------------------------------------


def test_odd_terms_read_off_the_shapley_values_of_parity_games():
    n = 7
    rng = np.random.default_rng(0)
    terms = [(0, 2, 5), (1, 3, 4), (0, 1, 2, 3, 6)]
    coefficients = rng.normal(size=n + len(terms))

    def value_fn(coalitions):
        return regression.odd_design(2.0 * coalitions - 1.0, terms) @ coefficients

    exact = estimate(Game(value_fn, n), "exact").phi[:, 0]
    np.testing.assert_allclose(regression.shapley_readout(n, terms) @ coefficients, exact, atol=1e-12)


def test_regression_fits_a_game_of_order_three_exactly_from_a_fraction_of_the_coalitions():
    n = 12
    value_fn, exact = interactions(n, seed=30, n_terms=8, max_order=3)
    main_only = regression.approximate(Game(value_fn, n), 20 * n, seed=0, screening="none")
    screened = regression.approximate(Game(value_fn, n), 20 * n, seed=0)
    assert screened.n_evaluations <= 20 * n < 2**n / 10
    assert relative_error(screened.phi[:, 0], exact) < 1e-9 < 1e-3 < relative_error(main_only.phi[:, 0], exact)
    assert screened.stderr.max() < 1e-9


def test_pairs_count_once_and_a_completely_drawn_size_gets_its_exact_weight():
    n = 6
    singles = np.eye(n, dtype=bool)
    drawn = np.concatenate([singles, ~singles[:2], singles[3:4]])  # two drawn through the complement, one twice
    first = regression.distinct_pairs(drawn)
    np.testing.assert_array_equal(first, np.arange(n))
    weights = regression.post_stratified_weights(n, drawn[first])
    np.testing.assert_allclose(weights, regression.pair_class_masses(n)[1] / n)
    # exactly the Shapley kernel of the six coalitions of size 1 and their complements
    kernel = (n - 1) / (math.comb(n, 1) * 1 * (n - 1))
    np.testing.assert_allclose(weights, 2 * kernel)


def test_auto_says_which_method_it_picked_and_why():
    n = 13
    value_fn, _ = interactions(n, seed=15)
    sampled = estimate(Game(value_fn, n), budget=4 * n)
    assert sampled.method == "permutation" and "from 4 to 6 per player" in sampled.method_reason
    regression_result = estimate(Game(value_fn, n), budget=40 * n)
    assert regression_result.method == "kernel" and "from 6 per player" in regression_result.method_reason
    assert "below 3 per player" in estimate(Game(value_fn, n), budget=2 * n).method_reason
    small, _ = interactions(8, seed=1)
    assert "2**8" in estimate(Game(small, 8), budget=256).method_reason
    assert estimate(Game(value_fn, n), "kernel", budget=40 * n).method_reason is None


def test_parity_spectrum_of_a_tree_is_the_walsh_transform_of_its_table():
    from sklearn.tree import DecisionTreeRegressor

    n = 6
    coalitions = all_coalitions(n)
    table = np.random.default_rng(3).normal(size=2**n)
    tree = DecisionTreeRegressor(random_state=0).fit(coalitions.astype(float), table)  # one leaf per coalition
    keys, coefficients = regression.parity_spectrum([tree], scale=2.0)
    x = 2.0 * coalitions - 1.0
    expected = {}
    for order in (3, 5):
        for members in itertools.combinations(range(n), order):
            expected[sum(1 << j for j in members)] = 2.0 * np.mean(table * np.prod(x[:, list(members)], axis=1))
    assert sorted(int(k) for k in keys) == sorted(expected)
    np.testing.assert_allclose(coefficients, [expected[int(k)] for k in keys], atol=1e-12)


def test_an_interaction_of_order_seven_is_found_by_the_trees_and_chosen_by_cross_validation():
    # A unanimity game over 7 players has odd Walsh terms of order 3, 5 and 7; the matching pursuit's candidates stop
    # at order 5, the trees find all 57 terms, and the held-out error picks them.
    n = 12
    main = np.random.default_rng(5).normal(size=n)
    members = [0, 2, 3, 5, 7, 9, 11]

    def value_fn(coalitions):
        return coalitions @ main + 6.0 * coalitions[:, members].all(axis=1)

    exact = main.copy()
    exact[members] += 6.0 / 7
    errors = {screening: relative_error(regression.approximate(Game(value_fn, n), 200 * n, seed=0,
                                                               screening=screening).phi[:, 0], exact)
              for screening in ("choose", "pursuit", "trees")}
    assert errors["trees"] < 1e-9 and errors["choose"] < 1e-9 < 1e-4 < errors["pursuit"]


def test_screening_must_be_known():
    with pytest.raises(ValueError, match="screening"):
        regression.approximate(Game(additive([1.0, 2.0, 3.0]), 3), 8, screening="lasso")
