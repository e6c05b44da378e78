"""Accuracy per model evaluation of the Shapley estimators, side by side with shapiq's and shap's.

Run from the repository root (shapiq and LightGBM, which shapiq's OddSHAP uses for its screening, come with
``pip install -e .[compare]``)::

    .venv/bin/python benchmarks/estimators.py           # full run (15 settings, 10 seeds; about 40 minutes on 2 cores)
    .venv/bin/python benchmarks/estimators.py --quick   # n = 8, 16 and two seeds

Games
-----
Every game but one is a sum of unanimity games, ``v(S) = sum_T a_T [T subset of S]``, whose Shapley
values are known in closed form, ``phi_i = sum_{T containing i} a_T / |T|`` (Harsanyi dividends), so
the reference needs no enumeration even for n = 64:

* ``audio``: shaped like word-level attribution of an audio LLM: main effects with a few dominant
  words and mostly positive signs, pairwise interactions between neighbouring words, and small
  "noise" interactions of order 3-4 between nearby words;
* ``random``: main effects plus random sparse interactions of order 2-6 between any players;
* ``audio-logsigmoid`` (n <= 16): ``log sigmoid(bias + audio game)``, saturating like a
  log-probability; every order of interaction, reference by exact enumeration;
* ``ctc``: real games, the shipped CTC recogniser explaining held-out speech (8, 11 and 14 words: festival slt,
  the slt sample, a LibriVox recording; silence masking, frozen normalisation), every coalition evaluated once and
  cached by ``benchmarks/real_games.py``; the scalar game is the summed log-probability of the transcript.

Methods
-------
Ours (``sgpa.attribution.estimators``): ``auto`` (what ``estimate`` picks), ``permutation`` (antithetic),
``kernel`` (paired regression on the odd part with screened odd interaction terms, post-stratified sizes: the
default regression, which cross-validates its two screenings), and three ablations of it: ``kernel-pursuit`` (the
terms of the matching pursuit over third- and fifth-order candidates only), ``kernel-trees`` (the terms of the
boosted trees only) and ``kernel-main-effects`` (no screened terms). shapiq 1.8:
``KernelSHAP``, ``LeverageSHAP``, ``OddSHAP`` (with LightGBM, its paper's configuration), ``kADDSHAP`` (k = 2),
``PermutationSamplingSV``; shap 0.5x: ``shap-permutation`` (PermutationExplainer, Independent masker with an
all-absent background). Every method runs on the same ``Game``; evaluations are the distinct coalitions it sent
(its cache), and a budget of ``2**n`` or more is left out (every method enumerates there).

Output: ``benchmarks/results/estimators.json`` and ``benchmarks/results/estimators.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sgpa.attribution.estimators import auto_method, estimate  # noqa: E402
from sgpa.attribution.estimators import regression  # noqa: E402
from sgpa.attribution.estimators.exact import shapley_from_table  # noqa: E402
from sgpa.attribution.estimators.result import all_coalitions  # noqa: E402
from sgpa.attribution.game import Game  # noqa: E402
from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_MULTIPLIERS = (2, 3, 4, 6, 10, 20, 40, 100, 200)  # budgets are multiples of n


# --- games -----------------------------------------------------------------------------------------


@dataclass
class UnanimityGame:
    """``v(S) = sum_k a_k [T_k subset of S]`` with member masks ``members`` (bool[K, n])."""

    members: np.ndarray
    coefficients: np.ndarray

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        present = coalitions.astype(np.int32) @ self.members.T.astype(np.int32)
        return (present == self.members.sum(axis=1)) @ self.coefficients

    def shapley(self) -> np.ndarray:
        return self.members.T @ (self.coefficients / self.members.sum(axis=1))


def _terms(n: int, subsets: list[list[int]], coefficients: list[float]) -> UnanimityGame:
    members = np.zeros((len(subsets), n), dtype=bool)
    for row, subset in enumerate(subsets):
        members[row, subset] = True
    return UnanimityGame(members, np.array(coefficients))


def audio_game(n: int, rng: np.random.Generator) -> UnanimityGame:
    """Few dominant words, mostly positive; neighbour pairs; small local order 3-4 terms."""
    main = rng.lognormal(0.0, 1.0, n) * np.where(rng.random(n) < 0.8, 1.0, -1.0)
    scale = np.abs(main).mean()
    subsets = [[i] for i in range(n)]
    coefficients = list(main)
    for i in range(n - 1):
        subsets.append([i, i + 1])
        coefficients.append(0.3 * rng.normal() * np.sqrt(abs(main[i] * main[i + 1])))
    for _ in range(n):
        order = int(rng.integers(3, 5))
        start = int(rng.integers(0, max(n - order - 1, 1)))
        window = np.arange(start, min(start + order + 2, n))
        subsets.append(sorted(rng.choice(window, size=min(order, len(window)), replace=False)))
        coefficients.append(0.1 * scale * rng.normal())
    return _terms(n, subsets, coefficients)


def random_game(n: int, rng: np.random.Generator) -> UnanimityGame:
    """Main effects plus ``2 n`` interactions of order 2-6 between random players."""
    subsets = [[i] for i in range(n)]
    coefficients = list(rng.normal(size=n))
    for _ in range(2 * n):
        order = int(rng.integers(2, min(6, n) + 1))
        subsets.append(sorted(rng.choice(n, size=order, replace=False)))
        coefficients.append(rng.normal())
    return _terms(n, subsets, coefficients)


def logsigmoid_game(n: int, rng: np.random.Generator):
    """``log sigmoid(bias + audio game / 2)`` with its exact Shapley values by enumeration."""
    inner = audio_game(n, rng)
    bias = -inner(np.ones((1, n), dtype=bool))[0] / 4

    def value(coalitions: np.ndarray) -> np.ndarray:
        return -np.logaddexp(0.0, -(bias + inner(coalitions) / 2))

    reference = shapley_from_table(value(all_coalitions(n))[:, None])[:, 0]
    return value, reference


def make_game(kind: str, n: int, seed: int):
    rng = np.random.default_rng([seed, n, ("audio", "random", "audio-logsigmoid").index(kind)])
    if kind == "audio":
        game = audio_game(n, rng)
        return game, game.shapley()
    if kind == "random":
        game = random_game(n, rng)
        return game, game.shapley()
    return logsigmoid_game(n, rng)


# --- games from real explanations ----------------------------------------------------------------------

REAL_GAMES = (  # (id, wav, transcript): 8, 11 and 14 words
    ("heldout_00000", "work_data/corpus/heldout/heldout_00000.wav", "the train to Paris leaves at 2 24"),
    ("slt_0000", "data_samples/slt_0000.wav", "the old man found a small red box near the river"),
    ("librivox_sense_and_sensibility_01_austen_64kb-0890",
     "work_data/corpus/real/librivox_sense_and_sensibility_01_austen_64kb-0890.wav",
     "unless to be rather cold hearted and rather selfish is to be ill disposed"),
)


@dataclass
class TableGame:
    """A game read from its table of every coalition (row ``m``: the players in the bits of ``m``)."""

    table: np.ndarray

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        n = coalitions.shape[1]
        return self.table[coalitions.astype(np.int64) @ (1 << np.arange(n))]


def real_games() -> list[tuple[str, int, TableGame, np.ndarray]]:
    """(name, n, value function, exact Shapley values) of the cached real CTC games."""
    from real_games import cached_tables

    items = [{"id": id_, "wav": wav, "text": text, "group": "estimators"} for id_, wav, text in REAL_GAMES]
    games = []
    for game in cached_tables(items):
        table = game["table"].sum(axis=1)  # the scalar game: the transcript's summed log-probability
        games.append((game["id"], len(game["players"]), TableGame(table), shapley_from_table(table[:, None])[:, 0]))
    return games


# --- methods: (game, budget, seed) -> phi float[n] ---------------------------------------------------


def ours(method: str, screening: str = "choose"):
    def run(game: Game, budget: int, seed: int):
        if method == "kernel":
            result = regression.approximate(game, budget, seed=seed, screening=screening)
        else:
            result = estimate(game, method, budget=budget, seed=seed)
        return result.phi[:, 0], result.method

    return run


def shapiq_method(name: str):
    """One of shapiq's approximators on our ``Game``: its coalitions go through the game's cache and count."""

    def run(game: Game, budget: int, seed: int):
        import shapiq

        def value(coalitions):
            coalitions = np.asarray(coalitions, dtype=bool)
            if coalitions.ndim == 1:
                return game.values(coalitions[None])[:, 0]  # one coalition: shape (1,)
            return game.values(coalitions)[:, 0]

        n = game.n_players
        options = {"index": "SV", "max_order": 2} if name == "kADDSHAP" else {}
        approximator = getattr(shapiq, name)(n=n, random_state=seed, **options)
        try:
            values = approximator.approximate(budget, value)
        except ValueError:  # a budget below the method's minimum
            return None
        return np.array([values[(i,)] for i in range(n)]), name

    return run


class CountingModel:
    """The value function as shap sees it: rows of 0/1 features, sent through the game (and its count)."""

    def __init__(self, game: Game):
        self.game = game

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.game.values(np.asarray(x) > 0.5)[:, 0]


def shap_permutation(game: Game, budget: int, seed: int):
    import shap

    n = game.n_players
    if budget < 2 * n + 1:
        return None
    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    explainer = shap.PermutationExplainer(CountingModel(game), masker)
    np.random.seed(seed)
    explanation = explainer(np.ones((1, n)), max_evals=budget, silent=True)
    return np.asarray(explanation.values[0]), "shap-permutation"


OURS = ("auto", "permutation", "kernel", "kernel-pursuit", "kernel-trees", "kernel-main-effects")
SHAPIQ = ("KernelSHAP", "LeverageSHAP", "OddSHAP", "kADDSHAP", "PermutationSamplingSV")
METHODS = {
    "auto": ours("auto"),
    "permutation": ours("permutation"),
    "kernel": ours("kernel"),
    "kernel-pursuit": ours("kernel", screening="pursuit"),
    "kernel-trees": ours("kernel", screening="trees"),
    "kernel-main-effects": ours("kernel", screening="none"),
    **{name: shapiq_method(name) for name in SHAPIQ},
    "shap-permutation": shap_permutation,
}


# --- measurement -----------------------------------------------------------------------------------


def relative_error(estimate_: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(estimate_ - reference) / np.linalg.norm(reference))


def measure_setting(task: tuple) -> list[dict]:
    """Every method at every budget on one (game kind, n), one game per seed."""
    kind, n, seeds, multipliers = task
    if kind == "ctc":
        games = [(value_fn, reference) for name, size, value_fn, reference in real_games() if size == n] * seeds
    else:
        games = [make_game(kind, n, seed) for seed in range(seeds)]
    rows = []
    runs: dict[tuple, tuple] = {}  # (method run, budget, seed) -> (phi, picked, overhead, evaluations)
    for name, method in METHODS.items():
        for multiplier in multipliers:
            budget = multiplier * n
            if budget >= 2**n:
                continue
            # "auto" runs exactly the call of the method it picks (same defaults and seed): measured once
            run_name = auto_method(n, budget) if name == "auto" else name
            errors, evaluations, overhead, picked = [], [], [], []
            for seed, (value_fn, reference) in enumerate(games):
                if (run_name, budget, seed) not in runs:
                    game = Game(value_fn, n, batch_size=256)
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out = METHODS[run_name](game, budget, seed)
                    runs[run_name, budget, seed] = (None if out is None else (
                        *out, time.perf_counter() - t0 - game.eval_seconds, game.n_evaluations))
                out = runs[run_name, budget, seed]
                if out is None:
                    break
                overhead.append(out[2])
                errors.append(relative_error(out[0], reference))
                evaluations.append(out[3])
                picked.append(out[1])
            if not errors:
                continue
            rows.append({
                "game": kind, "n": n, "method": name, "multiplier": multiplier, "budget": budget,
                "evaluations_mean": float(np.mean(evaluations)),
                "evaluations_max": int(np.max(evaluations)),
                "rel_error_mean": float(np.mean(errors)),
                "rel_error_geomean": float(np.exp(np.mean(np.log(np.maximum(errors, 1e-15))))),
                "rel_error_sem": float(np.std(errors, ddof=1) / np.sqrt(len(errors))) if len(errors) > 1 else 0.0,
                "overhead_seconds_mean": float(np.mean(overhead)),
                "picked": sorted(set(picked)),
                "seeds": len(errors),
            })
            print(f"{kind:17s} n={n:3d} {name:22s} {multiplier:4d} n  evals={rows[-1]['evaluations_mean']:8.1f} "
                  f"err={rows[-1]['rel_error_mean']:.4f}", flush=True)
    return rows


def settings(quick: bool) -> list[tuple[str, int]]:
    sizes = (8, 16) if quick else (8, 16, 24, 32, 64)
    pairs = [(kind, n) for kind in ("audio", "random") for n in sizes]
    pairs += [("audio-logsigmoid", n) for n in sizes if n <= 16]
    if not quick:
        pairs += [("ctc", n) for n in (8, 11, 14)]
    return pairs


def geometric_means(rows: list[dict], multipliers) -> dict:
    """Per budget multiplier: the geometric mean over settings of each method's mean error.

    Only settings where every method in the comparison has a value at that budget count, so the means compare the
    same settings.
    """
    table = {}
    for multiplier in multipliers:
        at = [r for r in rows if r["multiplier"] == multiplier]
        cells = {(r["game"], r["n"]) for r in at}
        by_method = {}
        for name in METHODS:
            errors = {(r["game"], r["n"]): r["rel_error_mean"] for r in at if r["method"] == name}
            by_method[name] = errors
        common = sorted(c for c in cells if all(c in by_method[m] for m in ("auto", "OddSHAP", "LeverageSHAP",
                                                                              "KernelSHAP", "kADDSHAP")))
        if not common:
            continue
        table[str(multiplier)] = {
            "settings": len(common),
            **{name: float(np.exp(np.mean([np.log(max(errors[c], 1e-15)) for c in common])))
               for name, errors in by_method.items() if all(c in errors for c in common)},
        }
    return table


def evaluations_to_reach(curve: list[dict], target: float) -> float | None:
    """Evaluations at which the mean error first falls to ``target`` (log-log interpolation)."""
    curve = sorted(curve, key=lambda row: row["evaluations_mean"])
    previous = None
    for row in curve:
        if row["rel_error_mean"] <= target:
            if previous is None:
                return row["evaluations_mean"]
            x0, x1 = np.log(previous["evaluations_mean"]), np.log(row["evaluations_mean"])
            y0 = np.log(max(previous["rel_error_mean"], 1e-12))
            y1 = np.log(max(row["rel_error_mean"], 1e-12))
            fraction = (np.log(target) - y0) / (y1 - y0) if y1 != y0 else 1.0
            return float(np.exp(x0 + fraction * (x1 - x0)))
        previous = row
    return None


def equal_error_table(rows: list[dict], targets=(0.05, 0.01)) -> list[dict]:
    table = []
    for kind, n in sorted({(r["game"], r["n"]) for r in rows}):
        for target in targets:
            entry = {"game": kind, "n": n, "target": target}
            for name in METHODS:
                curve = [r for r in rows if r["game"] == kind and r["n"] == n and r["method"] == name]
                entry[name] = evaluations_to_reach(curve, target) if curve else None
            table.append(entry)
    return table


def best_of_ours(rows: list[dict], multipliers) -> dict:
    """Per budget multiplier: in how many settings permutation / kernel had the lower mean error."""
    table = {}
    for multiplier in multipliers:
        wins = {"permutation": 0, "kernel": 0}
        for kind, n in sorted({(r["game"], r["n"]) for r in rows}):
            errors = {r["method"]: r["rel_error_mean"] for r in rows if r["game"] == kind and r["n"] == n
                      and r["multiplier"] == multiplier and r["method"] in wins}
            if len(errors) == 2:
                wins[min(errors, key=errors.get)] += 1
        table[str(multiplier)] = wins
    return table


def exact_check(n: int = 12) -> dict:
    value_fn, reference = make_game("audio", n, 0)
    game = Game(value_fn, n, batch_size=64)
    t0 = time.perf_counter()
    result = estimate(game, budget=None)
    return {
        "n": n, "method": result.method, "n_evaluations": result.n_evaluations,
        "expected": 2**n, "n_batches": result.n_batches, "batch_size": 64,
        "efficiency_gap": float(result.efficiency_gap.max()),
        "max_abs_error_vs_closed_form": float(np.abs(result.phi[:, 0] - reference).max()),
        "wall_seconds": time.perf_counter() - t0,
    }


def overhead_check(n: int = 64, multiplier: int = 40, seeds: int = 3) -> dict:
    """Estimator seconds outside the game at n = 64, 40 n evaluations, against the shipped CTC model's seconds per
    evaluation (batched, on the 11-word sample), measured in this run."""
    import torch

    import sgpa

    overhead = {}
    for method in ("auto", "kernel", "permutation"):
        seconds = []
        for seed in range(seeds):
            value_fn, _ = make_game("audio", n, seed)
            game = Game(value_fn, n, batch_size=256)
            t0 = time.perf_counter()
            estimate(game, method, budget=multiplier * n, seed=seed)
            seconds.append((time.perf_counter() - t0 - game.eval_seconds) / game.n_evaluations)
        overhead[method] = float(np.mean(seconds))
    torch.set_num_threads(1)
    backend = sgpa.load_backend()
    segmentation = sgpa.align("data_samples/slt_0000.wav", REAL_GAMES[1][2], aligner=backend.acoustic_model,
                              grid="wav2vec2")
    waveform, _ = sgpa.api.read_waveform("data_samples/slt_0000.wav")
    model_game = backend.prepare(waveform, segmentation)
    coalitions = all_coalitions(model_game.n_players)[np.random.default_rng(0).permutation(2**model_game.n_players)[:256]]
    t0 = time.perf_counter()
    model_game.log_probs(coalitions)
    per_evaluation = (time.perf_counter() - t0) / len(coalitions)
    return {"n": n, "multiplier": multiplier, "estimator_seconds_per_evaluation": overhead,
            "model": "shipped CTC recogniser (sgpa-ctc-en), 11-word sample, batches, 1 thread",
            "model_seconds_per_evaluation": per_evaluation,
            "overhead_share": {m: v / per_evaluation for m, v in overhead.items()}}


# --- report ----------------------------------------------------------------------------------------


def fmt_error(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}" if value >= 1e-4 else f"{value:.1e}"


def markdown(report: dict) -> str:
    rows = report["curves"]
    multipliers = report["budget_multipliers"]
    lines = [
        "# Shapley estimators: relative error against model evaluations, side by side with shapiq",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}; {report['seconds']:.0f} s in all; seeds per point: {report['seeds']}; "
        f"shapiq {report['versions']['shapiq']}, lightgbm {report['versions']['lightgbm']}, "
        f"shap {report['versions']['shap']}.",
        "",
        "Relative L2 error ||phi_hat - phi|| / ||phi|| against exact values (closed form or enumeration), averaged",
        "over seeds (synthetic games: one random game per seed; real games: the same game, other samples). Budgets are",
        "multiples of n; budgets of 2**n or more are left out (every method is exact there).",
        "",
        "## Target: `auto` against the best shapiq approximator, by budget",
        "",
        "Geometric mean over settings of the mean error; settings where every compared method ran at that budget.",
        "",
    ]
    methods = [m for m in METHODS]
    lines += ["| budget | settings | " + " | ".join(methods) + " | best shapiq | auto / best shapiq | met |",
              "|---|---|" + "---|" * len(methods) + "---|---|---|"]
    for multiplier, entry in report["geometric_means"].items():
        shapiq_errors = {m: entry[m] for m in SHAPIQ if m in entry}
        best = min(shapiq_errors, key=shapiq_errors.get)
        ratio = entry["auto"] / shapiq_errors[best]
        cells = [fmt_error(entry.get(m)) for m in methods]
        lines.append(f"| {multiplier} n | {entry['settings']} | " + " | ".join(cells)
                     + f" | {best} | {ratio:.2f} | {'yes' if ratio <= 1.0 else '**no**'} |")
    oh = report["overhead"]
    lines += ["", "## Estimator overhead", "",
              f"n = {oh['n']}, {oh['multiplier']} n evaluations (audio game), estimator seconds outside the game per "
              f"evaluation, against {oh['model']}: {oh['model_seconds_per_evaluation'] * 1e3:.1f} ms per evaluation "
              "(measured in this run).", "",
              "| method | estimator ms / evaluation | share of the model's time | target <= 10 % |", "|---|---|---|---|"]
    for method, seconds in oh["estimator_seconds_per_evaluation"].items():
        share = oh["overhead_share"][method]
        lines.append(f"| {method} | {seconds * 1e3:.3f} | {share:.1%} | {'yes' if share <= 0.10 else '**no**'} |")
    lines += ["", "## Which of ours wins, by budget", "",
              "Settings in which permutation / kernel had the lower mean error (what `auto` follows).", "",
              "| budget | permutation | kernel |", "|---|---|---|"]
    for multiplier, wins in report["best_of_ours"].items():
        lines.append(f"| {multiplier} n | {wins['permutation']} | {wins['kernel']} |")
    ex = report["exact_check"]
    lines += ["", "## Exact enumeration", "",
              f"n = {ex['n']}: {ex['n_evaluations']} evaluations (2**n = {ex['expected']}) in {ex['n_batches']} "
              f"batches of {ex['batch_size']}; max |error| vs closed form {ex['max_abs_error_vs_closed_form']:.1e}; "
              f"efficiency gap {ex['efficiency_gap']:.1e}.", ""]
    lines += ["## Evaluations needed to reach a mean relative error of 5 % and 1 %", "",
              "| game | n | target | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for entry in report["equal_error"]:
        cells = ["-" if entry[m] is None else f"{entry[m]:.0f}" for m in methods]
        lines.append(f"| {entry['game']} | {entry['n']} | {entry['target']:.0%} | " + " | ".join(cells) + " |")
    lines += ["", f"(\"-\": not reached below {max(multipliers)} n evaluations or 2**n.)", "", "## Error curves", ""]
    for kind, n in sorted({(r["game"], r["n"]) for r in rows}):
        present = sorted({r["multiplier"] for r in rows if r["game"] == kind and r["n"] == n})
        lines += [f"### {kind}, n = {n}", "", "| method | " + " | ".join(f"{m} n" for m in present) + " |",
                  "|---|" + "---|" * len(present)]
        for name in methods:
            cells = []
            for multiplier in present:
                match = [r for r in rows if r["game"] == kind and r["n"] == n and r["method"] == name
                         and r["multiplier"] == multiplier]
                cells.append("-" if not match else fmt_error(match[0]["rel_error_mean"]))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Cells: mean relative error over seeds (\"-\": below the method's minimum budget).", ""]
    return "\n".join(lines)


def main() -> None:
    from importlib.metadata import version
    from multiprocessing import get_context

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 8, 16 and two seeds, no real games")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (settings run in parallel)")
    args = parser.parse_args()
    seeds = 2 if args.quick else 10
    multipliers = BUDGET_MULTIPLIERS
    t0 = time.perf_counter()
    tasks = [(kind, n, seeds, multipliers) for kind, n in settings(args.quick)]
    tasks.sort(key=lambda task: -task[1])  # the largest games first, so the pool ends together
    if any(kind == "ctc" for kind, *_ in tasks):
        real_games()  # enumerate (or load) the real games once, before the workers read the cache
    # spawned, not forked: enumerating the real games runs torch's OpenMP threads in this process, and LightGBM's
    # OpenMP (shapiq's OddSHAP) then deadlocks in a forked child (seen here: both workers asleep for good)
    with get_context("spawn").Pool(args.workers) as pool:
        rows = [row for part in pool.imap_unordered(measure_setting, tasks) for row in part]
    rows.sort(key=lambda r: (r["game"], r["n"], list(METHODS).index(r["method"]), r["multiplier"]))
    report = {
        "command": "python benchmarks/estimators.py" + (" --quick" if args.quick else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "versions": {name: version(name) for name in ("shapiq", "lightgbm", "shap")},
        "seeds": seeds,
        "budget_multipliers": multipliers,
        "exact_check": exact_check(),
        "curves": rows,
        "geometric_means": geometric_means(rows, multipliers),
        "equal_error": equal_error_table(rows),
        "best_of_ours": best_of_ours(rows, multipliers),
    }
    report["overhead"] = overhead_check()
    report["seconds"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    atomic_write_text(RESULTS / f"estimators{suffix}.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(RESULTS / f"estimators{suffix}.md", markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
