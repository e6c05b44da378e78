"""Shapley values by paired, weighted least squares with screened odd interaction terms.

The Shapley values are the solution of a weighted least-squares problem over all coalitions
``S`` (Lundberg & Lee 2017; Charnes et al. 1988)::

    minimise  sum_S  k(|S|) (v(S) - v(empty) - sum_{i in S} phi_i)**2
    subject to  sum_i phi_i = v(full) - v(empty)

with the Shapley kernel ``k(s) = (n - 1) / (C(n, s) s (n - s))``. This module solves it on part of
the coalitions, always a coalition together with its complement (paired sampling):

1. whole sizes are enumerated, outermost first (sizes ``s`` and ``n - s`` together): sizes 1 and ``n - 1`` when their
   share of the kernel weight pays for them (up to :data:`SINGLES_BY_KERNEL_SHARE_MAX_N` players), and at any budget
   from 2 n to 4 n (on their own they give the average of each player's first and last marginal contribution,
   exact for games of order two); the next ones
   while the budget share a size would get from sampling is at least its number of coalitions (the rule of shap's
   KernelExplainer); with a budget of ``2**n`` everything is enumerated and the result is exact;
2. the other sizes are sampled: a size uniformly (``sampling="leverage"``, the default; Leverage
   SHAP, Musco & Witter 2025: proportional to the leverage scores) or with probability
   proportional to its kernel mass ``(n - 1) / (s (n - s))`` (``sampling="kernel"``, KernelSHAP),
   by a golden-ratio sequence (each size gets very nearly its share of any number of draws), then a uniform
   coalition of that size and its complement, never a pair drawn before (sampling without replacement);
3. post-stratified weights: each distinct sampled pair carries its size's whole kernel mass divided by the number of
   distinct pairs drawn at that size, so repeated draws add nothing and a size drawn completely is weighted exactly
   (importance weights ``k / p`` per draw would keep the noise of how many draws each size happened to get);
4. the fit is on the pair's *odd part* ``g(S) = (v(S) - v(N \\ S)) / 2``, which is all that the Shapley values depend
   on (a game and its dual have the same values), in the +-1 basis ``x_i = 1 if i in S else -1``: the main effects
   ``x_i`` and, once the budget pays for them, products of an odd number of players (the odd part has no even-order
   terms) that best explain what the main effects leave over. Two screenings propose them, and a cross-validation
   on held-out pairs keeps the one whose fit predicts better, or no terms at all (:func:`choose_terms`): a matching pursuit over
   every product of three players and of five among the largest (:func:`screen_terms`), which finds the few local
   terms of word-shaped games, and the Walsh spectrum of gradient-boosted trees fitted to the odd part
   (:func:`tree_terms`), which finds dense and higher-order interactions (the real CTC games) hierarchically.
   The values are read off as ``phi_i = 2 a_i + sum_{T containing i} 2 b_T / |T|`` (a parity over ``t`` players,
   ``t`` odd, gives each of them ``2 / t``). With the main effects alone this is the paired KernelSHAP / Leverage
   SHAP regression; the extra terms are a surrogate whose Shapley values are exact, so the regression only has to
   estimate what they leave over, and with every coalition the fit stays exact (the main effects' coefficients are
   those of the kernel regression of the game minus the surrogate). Fitting odd interactions on paired samples,
   screened by trees, is OddSHAP's idea (Fumagalli et al. 2026; shapiq screens with LightGBM, here scikit-learn's
   boosting with LightGBM's defaults, already installed with shap);
5. efficiency is a constraint of the least-squares problem, so it holds exactly;
6. standard errors come from a grouped jackknife over the sampled pairs (enumerated sizes are fixed, the selected
   terms are kept): the pairs are dealt into at most :data:`JACKKNIFE_GROUPS` groups, the estimate is recomputed
   without each group, and t intervals take ``groups - 1`` degrees of freedom.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

from sgpa.attribution.estimators.result import AttributionResult, Run, affordable_groups, max_round, with_total
from sgpa.attribution.game import Game

JACKKNIFE_GROUPS = 30
DRAW_CHUNK = 64  # coalition pairs drawn at a time
GOLDEN = (5**0.5 - 1) / 2
#: Distinct coalition pairs per screened term: odd terms are added beyond ``SAMPLES_PER_TERM * n`` pairs.
SAMPLES_PER_TERM = 4
#: Every candidate term is fitted (nothing left to screen) once there are this many distinct pairs per term.
ALL_TERMS_FROM = 2.5
#: Third-order terms are screened among the players with the largest main effects, at most this many
#: (C(64, 3) = 41,664 candidates; screening is a matrix product over them).
MAX_SCREENED_PLAYERS = 64
#: Fifth-order terms are screened among this many players with the largest main effects (C(16, 5) = 4,368).
MAX_FIFTH_ORDER_PLAYERS = 16
#: Rounds of the matching pursuit that picks the terms (each adds a share and refits).
SCREENING_ROUNDS = 4
#: The boosted trees of :func:`tree_terms`: LightGBM's defaults (OddSHAP's surrogate) in scikit-learn's terms.
#: ``min_samples_leaf=20`` matters: with scikit-learn's default of 1 the trees fit the sampling noise (fresh seeds
#: 10-15, 40 n: 12 % higher error on the real CTC game with 11 players, 4 % over six settings).
TREE_SCREENING = {"n_estimators": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "max_depth": 10,
                  "min_samples_leaf": 20}
#: Folds of the cross-validation that chooses between the two screenings (:func:`choose_terms`).
SCREENING_FOLDS = 4
SCREENINGS = ("choose", "pursuit", "trees", "none")
#: Up to this many players, sizes 1 and n - 1 are enumerated as soon as their kernel-weight share of the budget pays
#: for them; above it, only by the rule every other size follows (or below 4 n). Measured on fresh seeds (10-29, not
#: the benchmark's) of the audio-shaped and random games: at 6 n the early enumeration lowers the error at n = 8 and
#: 11 by 6-25 %; at 10 n it raises it at n = 32 and 64 by 6-14 % (n = 24: within the noise either way).
SINGLES_BY_KERNEL_SHARE_MAX_N = 24


def size_masses(n_players: int) -> np.ndarray:
    """float[n + 1]: total Shapley-kernel weight of all coalitions of each size (0 for 0 and n)."""
    n = n_players
    masses = np.zeros(n + 1)
    sizes = np.arange(1, n)
    masses[1:n] = (n - 1) / (sizes * (n - sizes))
    return masses


def coalitions_of_size(n_players: int, size: int) -> np.ndarray:
    """bool[C(n, size), n]: every coalition with ``size`` members."""
    from itertools import combinations

    rows = np.zeros((comb(n_players, size), n_players), dtype=bool)
    for row, members in enumerate(combinations(range(n_players), size)):
        rows[row, list(members)] = True
    return rows


def plan_enumeration(
    n_players: int, budget: int, sampling_masses: np.ndarray
) -> tuple[list[int], list[int]]:
    """Split the sizes 1..n-1 into those to enumerate and those to sample.

    Parameters
    ----------
    n_players : int
    budget : int
        Evaluations available beyond the empty and full coalition.
    sampling_masses : float[n + 1]
        Relative probability of each size under the sampling distribution.

    Returns
    -------
    enumerated, sampled : list of int
        Coalition sizes.
    """
    n = n_players
    if budget >= 2**n - 2:
        return list(range(1, n)), []
    enumerated: list[int] = []
    remaining = list(range(1, n))
    left = float(budget)
    singles_share = 2 * size_masses(n)[1] / size_masses(n).sum()  # kernel weight of sizes 1 and n - 1
    by_kernel_share = n <= SINGLES_BY_KERNEL_SHARE_MAX_N and budget * singles_share >= 2 * n
    if n > 2 and budget >= 2 * n and (budget < 4 * n or by_kernel_share):
        # Every single player and every coalition missing one: on its own the first-and-last-marginal estimate,
        # exact for games of order two. Enumerated where the budget's kernel-weighted share pays for them (up to
        # SINGLES_BY_KERNEL_SHARE_MAX_N players), and below 4 n, where the sampled pairs alone would not determine
        # the n main effects.
        enumerated, remaining, left = [1, n - 1], list(range(2, n - 1)), left - 2 * n
    for small in range(1 + bool(enumerated), n // 2 + 1):
        sizes = sorted({small, n - small})
        count = sum(comb(n, s) for s in sizes)
        share = sampling_masses[sizes].sum() / sampling_masses[remaining].sum()
        if left * share < count:
            break
        enumerated += sizes
        remaining = [s for s in remaining if s not in sizes]
        left -= count
    return enumerated, remaining


def solve_constrained(a: np.ndarray, b: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Least squares with the efficiency constraint, from its normal equations.

    Minimises ``phi' A phi - 2 phi' b`` subject to ``1' phi = total`` for every output column.

    Parameters
    ----------
    a : float[..., n, n]
        ``Z' W Z``.
    b : float[..., n, T]
        ``Z' W (y - v_empty)``.
    total : float[T]
        ``v_full - v_empty``.

    Returns
    -------
    float[..., n, T]
    """
    p, t = a.shape[-1], b.shape[-1]
    # The bordered (KKT) system [[A, 1], [1', 0]] [phi; mu] = [b; total], solved directly: an LU solve is several
    # times faster than a pseudo-inverse of A, which is the fallback when the system is singular.
    kkt = np.zeros((*a.shape[:-2], p + 1, p + 1))
    kkt[..., :p, :p] = a
    kkt[..., :p, p] = kkt[..., p, :p] = 1.0
    rhs = np.zeros((*b.shape[:-2], p + 1, t))
    rhs[..., :p, :] = b
    rhs[..., p, :] = total
    try:
        solution = np.linalg.solve(kkt, rhs)
        mismatch = np.abs(kkt @ solution - rhs).max() if np.isfinite(solution).all() else np.inf
        if mismatch <= 1e-9 * max(1.0, np.abs(rhs).max()):
            return solution[..., :p, :]
    except np.linalg.LinAlgError:
        pass
    pinv = np.linalg.pinv(a, hermitian=True)
    ones = np.ones(p)
    a_inv_b = pinv @ b
    a_inv_1 = pinv @ ones
    # Lagrange multiplier: moves the unconstrained solution along A^-1 1 onto the constraint.
    slack = (a_inv_b.sum(axis=-2) - total) / a_inv_1.sum(axis=-1)[..., None]
    return a_inv_b - a_inv_1[..., :, None] * slack[..., None, :]


def pair_class_masses(n_players: int) -> np.ndarray:
    """float[n // 2 + 1]: kernel mass of the coalitions in each pair class ``c`` (sizes ``c`` and ``n - c``)."""
    n = n_players
    masses = size_masses(n)
    classes = np.arange(n // 2 + 1)
    return np.where(2 * classes == n, masses[classes], masses[classes] + masses[n - classes])


def enumerated_pairs(n_players: int, sizes: list[int]) -> np.ndarray:
    """bool[m, n]: one coalition of every complementary pair whose sizes are among ``sizes``.

    For the sizes ``n / 2`` both members have the same size; the one holding player 0 stands for the pair.
    """
    n = n_players
    rows = [np.zeros((0, n), dtype=bool)]
    for size in sorted({min(s, n - s) for s in sizes}):
        coalitions = coalitions_of_size(n, size)
        rows.append(coalitions[coalitions[:, 0]] if 2 * size == n else coalitions)
    return np.concatenate(rows)


def distinct_pairs(pairs: np.ndarray) -> np.ndarray:
    """Indices of the first draw of each distinct pair (a coalition or its complement), in draw order.

    ``pairs`` is bool[m, n], one member of each drawn pair; a pair drawn through either member counts once.
    """
    _, first = np.unique(np.packbits(canonical_members(pairs), axis=1), axis=0, return_index=True)
    return np.sort(first)


def canonical_members(pairs: np.ndarray) -> np.ndarray:
    """bool[m, n]: the member of each pair (a coalition or its complement) that holds player 0."""
    return np.where(pairs[:, :1], pairs, ~pairs)


def post_stratified_weights(n_players: int, pairs: np.ndarray) -> np.ndarray:
    """float[m]: each distinct pair's weight, its class's kernel mass shared by the distinct pairs drawn in it."""
    classes = np.minimum(pairs.sum(axis=1), n_players - pairs.sum(axis=1))
    counts = np.bincount(classes, minlength=n_players // 2 + 1)
    return pair_class_masses(n_players)[classes] / counts[classes]


def odd_design(x: np.ndarray, terms: list[tuple[int, ...]]) -> np.ndarray:
    """float[m, n + K]: the main effects ``x`` (+-1, float[m, n]) and the product over each of the ``terms``."""
    products = [np.prod(x[:, list(term)], axis=1) for term in terms]
    return np.column_stack([x, *products]) if products else x


def shapley_readout(n_players: int, terms: list[tuple[int, ...]]) -> np.ndarray:
    """float[n, n + K]: Shapley values from the coefficients of :func:`odd_design`.

    A main effect ``a_i x_i`` gives player ``i`` exactly ``2 a_i``; a product over ``t`` players (``t`` odd) gives each
    of them ``2 / t`` of its coefficient (the Shapley value of that parity game).
    """
    n = n_players
    readout = np.zeros((n, n + len(terms)))
    readout[:, :n] = 2 * np.eye(n)
    for k, term in enumerate(terms):
        readout[list(term), n + k] = 2 / len(term)
    return readout


def triple_scores(x: np.ndarray, weighted_residual: np.ndarray, players: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sum_m r_m x_a x_b x_c`` for every triple ``a < b < c`` of ``players``: (float[C], int[C, 3]).

    One matrix product per first player instead of a product column per triple (41,664 of them for 64 players).
    """
    scores, triples = [np.zeros(0)], [np.zeros((0, 3), dtype=int)]
    for position, a in enumerate(players[:-2]):
        rest = players[position + 1:]
        block = ((weighted_residual * x[:, a])[:, None] * x[:, rest]).T @ x[:, rest]
        b_index, c_index = np.triu_indices(len(rest), k=1)
        scores.append(block[b_index, c_index])
        triples.append(np.stack([np.full(len(b_index), a), rest[b_index], rest[c_index]], axis=1))
    return np.concatenate(scores), np.concatenate(triples)


def product_scores(x: np.ndarray, weighted_residual: np.ndarray, terms: np.ndarray, chunk: int = 512) -> np.ndarray:
    """float[C]: ``sum_m r_m prod_{j in T} x_j`` for each row ``T`` of ``terms`` (int[C, t])."""
    return np.concatenate([weighted_residual @ np.prod(x[:, terms[start:start + chunk]], axis=2)
                           for start in range(0, len(terms), chunk)] or [np.zeros(0)])


def screen_terms(
    x: np.ndarray, g: np.ndarray, w: np.ndarray, total: np.ndarray, count: int, main: np.ndarray
) -> list[tuple[int, ...]]:
    """The ``count`` odd terms (third and fifth order) that best explain what the main effects leave over.

    Matching pursuit in :data:`SCREENING_ROUNDS` rounds: each round scores every candidate by its weighted
    correlation with the residual of the current fit (summed output), adds the best ``count / rounds`` and refits.
    Candidates: the triples of the :data:`MAX_SCREENED_PLAYERS` players with the largest main effects, and the
    5-sets of the :data:`MAX_FIFTH_ORDER_PLAYERS` largest.

    Parameters
    ----------
    x : float[m, n]
        The +-1 design of the pairs.
    g, w : float[m, T + 1], float[m]
        The pairs' odd parts and weights.
    total : float[T + 1]
        Constraint of the coefficients (half of ``v_full - v_empty``).
    count : int
    main : float[n]
        Main-effect coefficients of the summed output, to rank the players.
    """
    ranked = np.argsort(-np.abs(main), kind="stable")
    players = np.sort(ranked[:MAX_SCREENED_PLAYERS])
    fifth_players = np.sort(ranked[:MAX_FIFTH_ORDER_PLAYERS])
    fifths = np.array(list(combinations(fifth_players, 5)), dtype=int).reshape(-1, 5)
    terms: list[tuple[int, ...]] = []
    taken = np.zeros(comb(len(players), 3) + len(fifths), dtype=bool)  # candidates: the triples, then the 5-sets
    design = x
    for round_ in range(SCREENING_ROUNDS):
        a, b = _normal_equations(design, w, g[:, -1:])
        residual = g[:, -1] - design @ solve_constrained(a, b, total[-1:])[:, 0]
        scores, triples = triple_scores(x, w * residual, players)
        candidates = np.concatenate([scores, product_scores(x, w * residual, fifths)]) if len(fifths) else scores
        wanted = count * (round_ + 1) // SCREENING_ROUNDS - len(terms)
        order = np.argsort(-np.where(taken, -1.0, np.abs(candidates)), kind="stable")[:max(wanted, 0)]
        taken[order] = True
        terms += [tuple((triples[i] if i < len(triples) else fifths[i - len(triples)]).tolist()) for i in order]
        design = odd_design(x, terms)
    return terms


def parity_spectrum(trees: list, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of the odd parities of order 3 and more in a sum of regression trees over +-1 features.

    A leaf reached through distinct features ``j`` with directions ``s_j`` (+1: the player is present, the right
    branch of a split at 0.5; -1: absent) is the function ``value * prod_j (1 + s_j x_j) / 2``, that is
    ``value * 2**-d * sum over subsets T of the path of prod_{j in T} s_j x_j``; summing over leaves and trees gives
    every parity's coefficient. Written here because no installed library exposes a tree's Walsh spectrum
    (shapiq's is private, and shapiq is only a benchmark dependency).

    Parameters
    ----------
    trees : list of sklearn.tree.DecisionTreeRegressor
        Fitted on 0/1 features (at most 64 of them).
    scale : float
        Factor of every tree's output (the boosting learning rate).

    Returns
    -------
    keys : uint64[K]
        Each parity as a bit mask over the features.
    coefficients : float[K]
    """
    keys, coefficients = [np.zeros(0, dtype=np.uint64)], [np.zeros(0)]
    for tree in trees:
        structure = tree.tree_
        stack: list[tuple[int, tuple[int, ...], tuple[float, ...]]] = [(0, (), ())]
        while stack:
            node, features, directions = stack.pop()
            left, right = structure.children_left[node], structure.children_right[node]
            if left != -1:
                feature = int(structure.feature[node])
                stack.append((left, features + (feature,), directions + (-1.0,)))
                stack.append((right, features + (feature,), directions + (1.0,)))
                continue
            depth = len(features)
            leaf = float(structure.value[node].ravel()[0]) * scale * 0.5**depth
            bits = np.left_shift(np.uint64(1), np.array(features, dtype=np.uint64))
            signs = np.array(directions)
            for order in range(3, depth + 1, 2):
                members = _index_subsets(depth, order)
                keys.append(np.bitwise_or.reduce(bits[members], axis=1))
                coefficients.append(leaf * np.prod(signs[members], axis=1))
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    return unique, np.bincount(inverse, weights=np.concatenate(coefficients), minlength=len(unique))


@lru_cache(maxsize=None)
def _index_subsets(size: int, order: int) -> np.ndarray:
    """int[C(size, order), order]: every subset of ``range(size)`` with ``order`` members."""
    return np.array(list(combinations(range(size), order)), dtype=np.int64).reshape(-1, order)


def tree_terms(x: np.ndarray, g: np.ndarray, count: int, main: np.ndarray) -> list[tuple[int, ...]]:
    """The ``count`` odd terms of order 3 and more with the largest coefficients in a boosted-tree model of the
    odd part (OddSHAP's screening, Fumagalli et al. 2026).

    Trees find interactions of any order hierarchically, where the matching pursuit of :func:`screen_terms` scores
    each of thousands of fixed candidates against noise. The model is fitted on both members of every pair (the odd
    part is ``g`` at ``S`` and ``-g`` at its complement), over the :data:`MAX_SCREENED_PLAYERS` players with the
    largest main effects, with scikit-learn's gradient boosting set as LightGBM's defaults that OddSHAP uses
    (:data:`TREE_SCREENING`).

    Parameters
    ----------
    x : float[m, n]
        The +-1 design of the pairs.
    g : float[m, T + 1]
        The pairs' odd parts (the last column, the summed output, is modelled).
    count : int
    main : float[n]
        Main-effect coefficients of the summed output, to rank the players.
    """
    from sklearn.ensemble import GradientBoostingRegressor  # imported only when a fit screens terms

    players = np.sort(np.argsort(-np.abs(main), kind="stable")[:MAX_SCREENED_PLAYERS])
    present = x[:, players] > 0
    features = np.concatenate([present, ~present]).astype(np.float32)
    target = np.concatenate([g[:, -1], -g[:, -1]])
    model = GradientBoostingRegressor(random_state=0, **TREE_SCREENING).fit(features, target)
    keys, coefficients = parity_spectrum([stage[0] for stage in model.estimators_], model.learning_rate)
    strongest = keys[np.argsort(-np.abs(coefficients), kind="stable")[:count]]
    return [tuple(int(players[j]) for j in range(len(players)) if (int(key) >> j) & 1) for key in strongest]


def choose_terms(
    x: np.ndarray, g: np.ndarray, w: np.ndarray, total: np.ndarray, count: int, main: np.ndarray
) -> list[tuple[int, ...]]:
    """The odd terms of :func:`screen_terms`, of :func:`tree_terms` or none, whichever predicts held-out pairs best.

    :data:`SCREENING_FOLDS`-fold cross-validation of the weighted squared error of the summed output's odd part,
    each screening repeated inside every fold. Neither wins everywhere (``benchmarks/results/estimators.md``): the
    matching pursuit finds the few local terms of the audio-shaped games, the trees the dense interactions of the
    real CTC games and the random games; the held-out error is the least-squares objective the values come from.
    Arguments as :func:`screen_terms`.
    """
    folds = np.arange(len(x)) % SCREENING_FOLDS  # the pairs come in random order (the enumerated sizes first)
    screenings = (
        lambda rows: screen_terms(x[rows], g[rows], w[rows], total, count, main),
        lambda rows: tree_terms(x[rows], g[rows], count, main),
        lambda rows: [],  # the main effects alone, where neither screening's terms predict better than none
    )
    errors = []
    for screening in screenings:
        error = 0.0
        for fold in range(SCREENING_FOLDS):
            train, test = folds != fold, folds == fold
            terms = screening(train)
            a, b = _normal_equations(odd_design(x[train], terms), w[train], g[train, -1:])
            coefficients = solve_constrained(a, b, total[-1:])[:, 0]
            error += float(w[test] @ (g[test, -1] - odd_design(x[test], terms) @ coefficients) ** 2)
        errors.append(error)
    return screenings[int(np.argmin(errors))](np.ones(len(x), dtype=bool))


def interaction_count(n_players: int, n_pairs: int) -> int:
    """Odd interaction terms a fit on ``n_pairs`` distinct pairs can afford.

    Every candidate of :func:`screen_terms` once there are :data:`ALL_TERMS_FROM` pairs per term, else
    ``n_pairs / SAMPLES_PER_TERM - n`` (at least 0) screened ones. Both constants were first tuned on the synthetic
    games of ``benchmarks/estimators.py`` with the matching pursuit alone (n = 11-64, 40 n-200 n, 8 seeds; 2, 3, 5
    and 10 pairs per term: 5). Once the cross-validation of :func:`choose_terms` could also fall back to no terms,
    4 pairs per term (terms from 10 n on) was better on fresh seeds (10-15) of eight settings, the real CTC games
    among them: geometric-mean error against the better of OddSHAP and LeverageSHAP 0.98 / 0.95 / 0.86 at
    10 n / 20 n / 40 n, against 1.01 / 1.01 / 0.95 with 5 (3: 0.97 / 0.96 / 0.84, kept at 4 for fewer terms).
    """
    n = n_players
    candidates = comb(min(n, MAX_SCREENED_PLAYERS), 3) + comb(min(n, MAX_FIFTH_ORDER_PLAYERS), 5)
    if n_pairs >= ALL_TERMS_FROM * (n + candidates):
        return candidates
    return int(max(0, min(candidates, n_pairs // SAMPLES_PER_TERM - n)))


def approximate(
    game: Game,
    budget: int,
    tolerance: float | None = None,
    seed: int = 0,
    progress: bool = False,
    sampling: str = "leverage",
    screening: str = "choose",
) -> AttributionResult:
    """Shapley values by paired, constrained weighted least squares on the odd part of the game.

    Parameters
    ----------
    game : Game
    budget : int
        Most distinct evaluations (minimum ``n + 2``, or ``2**n`` if smaller).
    tolerance : float, optional
        Stop once the largest jackknife standard error is below it.
    seed : int
        Seed of the sampling.
    progress : bool
        Show a progress bar over the evaluations.
    sampling : {"leverage", "kernel"}
        Size distribution of the sampled coalitions (see the module docstring). "leverage" is the default: in an
        earlier run of ``benchmarks/estimators.py`` (importance weights, no screened terms) its error was 2-6 % lower
        than with "kernel" (geometric mean over games and sizes at each budget), 8-23 % lower at n = 64.
    screening : {"choose", "pursuit", "trees", "none"}
        How the odd interaction terms are picked once the budget pays for them (step 4 of the module docstring):
        "choose" (the default) cross-validates the matching pursuit against the boosted trees and keeps the better
        (:func:`choose_terms`); "pursuit" and "trees" use one of them; "none" fits the main effects only (paired
        KernelSHAP / Leverage SHAP). All but the default are ablations.

    Returns
    -------
    AttributionResult
        ``method="kernel"``, ``index="shapley"``; efficiency holds exactly.
    """
    if sampling not in ("kernel", "leverage"):
        raise ValueError(f"sampling must be 'kernel' or 'leverage', got {sampling!r}")
    if screening not in SCREENINGS:
        raise ValueError(f"screening must be one of {', '.join(SCREENINGS)}, got {screening!r}")
    n = game.n_players
    run = Run(game, budget, minimum=min(n + 2, 2**n), method="kernel")
    rng = np.random.default_rng(seed)
    kernel_masses = size_masses(n)
    sampling_masses = kernel_masses.copy() if sampling == "kernel" else (kernel_masses > 0) * 1.0

    with game.progress_bar(total=budget, enabled=progress):
        v_empty = with_total(game.v_empty[None])[0]
        v_full = with_total(game.v_full[None])[0]
        if n == 1:  # no coalition besides the empty and the full one: efficiency decides
            return run.finish("kernel", "shapley", (v_full - v_empty)[None], None, converged=True)
        enumerated, sampled_sizes = plan_enumeration(n, run.remaining, sampling_masses)
        fixed = enumerated_pairs(n, enumerated)
        fixed_g = _odd_part(game, fixed)
        if not sampled_sizes:
            return run.finish("kernel", "shapley", _fit(n, fixed, fixed_g, None, None, v_full - v_empty, screening)[0],
                              None, converged=True)

        sizes = np.array(sampled_sizes)
        probabilities = sampling_masses[sizes] / sampling_masses[sizes].sum()
        drawn: list[np.ndarray] = []
        drawn_g: list[np.ndarray] = []
        seen: set[bytes] = set()
        converged = False
        stderr = None
        round_size = max_round(n) if tolerance is None else max(8 * n, 64)
        while run.remaining > 0:
            pairs = _draw_pairs(game, rng, sizes, probabilities, min(round_size, run.remaining),
                                max_pairs=min(10 * budget, round_size), seen=seen)
            if not len(pairs):
                break
            drawn.append(pairs)
            drawn_g.append(_odd_part(game, pairs))  # evaluated now: the budget left is counted from the cache
            if tolerance is not None:
                phi, stderr, dof = _fit(n, fixed, fixed_g, *_distinct(drawn, drawn_g), v_full - v_empty, screening,
                                        with_stderr=True)
                if stderr[:, :-1].max() < tolerance:
                    converged = True
                    break
            if sum(map(len, drawn)) >= 10 * budget:  # only reached when nearly everything is cached
                break

    if not drawn:  # the enumerated sizes used up the budget: the other sizes go unweighted
        phi = _fit(n, fixed, fixed_g, None, None, v_full - v_empty, screening)[0]
        return run.finish("kernel", "shapley", phi, np.full(phi.shape, np.nan), converged=False, dof=np.inf,
                          note="the budget went to the enumerated coalition sizes: no sampled pair to measure the error")
    if stderr is None:
        phi, stderr, dof = _fit(n, fixed, fixed_g, *_distinct(drawn, drawn_g), v_full - v_empty, screening,
                                with_stderr=True)
    note = None
    if dof < 1:
        stderr = np.full(phi.shape, np.nan)
        note = "one sampled coalition pair only: no second unit to measure the error"
    return run.finish("kernel", "shapley", phi, stderr, converged, dof=dof, note=note)


def _distinct(drawn: list[np.ndarray], drawn_g: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs among the rounds drawn so far, and their odd parts."""
    pairs, g = np.concatenate(drawn), np.concatenate(drawn_g)
    first = distinct_pairs(pairs)
    return pairs[first], g[first]


def _odd_part(game: Game, pairs: np.ndarray) -> np.ndarray:
    """float[m, T + 1]: ``(v(S) - v(N \\ S)) / 2`` of each pair's coalition ``S``, outputs and their sum."""
    values = with_total(game.values(np.concatenate([pairs, ~pairs])))
    return (values[: len(pairs)] - values[len(pairs):]) / 2


def _fit(
    n: int,
    fixed: np.ndarray,
    fixed_g: np.ndarray,
    sampled: np.ndarray | None,
    sampled_g: np.ndarray | None,
    total: np.ndarray,
    screening: str,
    with_stderr: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Shapley values float[n, T + 1] from the enumerated (``fixed``) and sampled pairs, their jackknife standard
    errors and degrees of freedom (NaN and 0 with fewer than two sampled pairs)."""
    sampled = np.zeros((0, n), dtype=bool) if sampled is None else sampled
    sampled_g = np.zeros((0, fixed_g.shape[1])) if sampled_g is None else sampled_g
    pairs = np.concatenate([fixed, sampled])
    g = np.concatenate([fixed_g, sampled_g])
    w = post_stratified_weights(n, pairs)
    x = 2.0 * pairs - 1.0
    half_total = total / 2  # the odd part's value at the full coalition: the constraint on the coefficients

    terms: list[tuple[int, ...]] = []
    n_terms = interaction_count(n, len(pairs)) if screening != "none" and len(sampled) else 0
    if n_terms:
        a_main, b_main = _normal_equations(x, w, g[:, -1:])
        main = solve_constrained(a_main, b_main, half_total[-1:])[:, 0]
        if screening == "choose":
            terms = choose_terms(x, g, w, half_total, n_terms, main)
        elif screening == "pursuit":
            terms = screen_terms(x, g, w, half_total, n_terms, main)
        else:
            terms = tree_terms(x, g, n_terms, main)
    design = odd_design(x, terms)
    readout = shapley_readout(n, terms)
    a_all, b_all = _normal_equations(design, w, g)
    phi = readout @ solve_constrained(a_all, b_all, half_total)
    if not with_stderr:
        return phi, None, np.inf

    # Grouped jackknife over the sampled pairs, weights and terms fixed; leaving a group out scales the rest of the
    # sampled weight back up to the whole (the post-stratified total).
    n_fixed, n_sampled = len(fixed), len(sampled)
    n_groups = min(n_sampled, JACKKNIFE_GROUPS)
    if n_groups < 2:
        return phi, np.full(phi.shape, np.nan), 0.0
    a_fixed, b_fixed = _normal_equations(design[:n_fixed], w[:n_fixed], g[:n_fixed])
    a_sampled, b_sampled = a_all - a_fixed, b_all - b_fixed
    group = np.arange(n_sampled) * n_groups // n_sampled
    sampled_weight = w[n_fixed:].sum()
    estimates = []
    for g_index in range(n_groups):
        rows = n_fixed + np.flatnonzero(group == g_index)
        a_group, b_group = _normal_equations(design[rows], w[rows], g[rows])
        scale = sampled_weight / (sampled_weight - w[rows].sum())
        estimates.append(solve_constrained(a_fixed + (a_sampled - a_group) * scale,
                                           b_fixed + (b_sampled - b_group) * scale, half_total))
    estimates = readout @ np.stack(estimates)  # [G, n, T + 1]
    deviations = estimates - estimates.mean(axis=0)
    variance = (n_groups - 1) / n_groups * (deviations**2).sum(axis=0)
    return phi, np.sqrt(variance), float(n_groups - 1)


def _normal_equations(design: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``D' W D`` (float[p, p]) and ``D' W y`` (float[p, T]) for rows ``design`` with weights ``w``."""
    weighted = design * w[:, None]
    return weighted.T @ design, weighted.T @ y


def _draw_pairs(
    game: Game,
    rng: np.random.Generator,
    sizes: np.ndarray,
    probabilities: np.ndarray,
    new_budget: int,
    max_pairs: int,
    seen: set[bytes] | None = None,
) -> np.ndarray:
    """bool[m, n]: random coalitions whose pairs (the coalition and its complement) fit in ``new_budget``.

    ``seen``: keys of the pairs drawn before (updated in place); a pair is drawn once (sampling without replacement
    within its size, so a small size's share of the budget is not spent on repeats).
    """
    seen = set() if seen is None else seen
    n = game.n_players
    rows: list[np.ndarray] = []
    pending: set[bytes] = set()
    n_pairs = 0
    # Sizes by a golden-ratio sequence over the cumulative distribution: every prefix of the draws holds each size
    # in very nearly its expected share (stratified sizes), whatever the number of pairs the budget affords.
    cumulative = np.cumsum(probabilities)[:-1]
    offset, n_drawn = rng.random(), 0
    while n_pairs < max_pairs:
        picks = np.searchsorted(cumulative, (offset + GOLDEN * np.arange(n_drawn, n_drawn + DRAW_CHUNK)) % 1.0,
                                side="right")
        n_drawn += DRAW_CHUNK
        coalitions = _uniform_coalitions(rng, sizes[picks], n)
        coalitions = _new_pairs(rng, coalitions, seen)
        pairs = np.stack([coalitions, ~coalitions], axis=1)  # [m, 2, n]
        accepted = affordable_groups(game, pairs, pending, new_budget)
        rows.append(coalitions[:accepted])
        seen.update(_pair_keys(coalitions[:accepted]))
        n_pairs += accepted
        if accepted < len(coalitions):
            break
    return np.concatenate(rows)


def _uniform_coalitions(rng: np.random.Generator, sizes: np.ndarray, n: int) -> np.ndarray:
    """bool[len(sizes), n]: a uniform coalition of each size: the players with the smallest random keys."""
    ranks = np.argsort(np.argsort(rng.random((len(sizes), n)), axis=1), axis=1)
    return ranks < sizes[:, None]


def _pair_keys(coalitions: np.ndarray) -> list[bytes]:
    """One key per pair, the same for a coalition and its complement (the member holding player 0)."""
    return [row.tobytes() for row in np.packbits(canonical_members(coalitions), axis=1)]


def _new_pairs(rng: np.random.Generator, coalitions: np.ndarray, seen: set[bytes], tries: int = 8) -> np.ndarray:
    """``coalitions`` with every pair drawn before (or twice in this chunk) drawn again at its size, up to ``tries``
    times; pairs still repeated after that (a nearly exhausted size) are dropped."""
    n = coalitions.shape[1]
    for _ in range(tries):
        keys = _pair_keys(coalitions)
        repeated = np.zeros(len(keys), dtype=bool)
        fresh: set[bytes] = set()
        for row, key in enumerate(keys):
            repeated[row] = key in seen or key in fresh
            fresh.add(key)
        if not repeated.any():
            return coalitions
        coalitions = coalitions.copy()
        coalitions[repeated] = _uniform_coalitions(rng, coalitions[repeated].sum(axis=1), n)
    keys = _pair_keys(coalitions)
    keep, fresh = [], set()
    for row, key in enumerate(keys):
        if key not in seen and key not in fresh:
            keep.append(row)
            fresh.add(key)
    return coalitions[keep]
