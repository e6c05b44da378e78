"""Do sgpa's error bars hold? Interval coverage and accuracy of the sampled estimators on real CTC games.

Each game is the shipped CTC recogniser explaining a held-out utterance (silence masking, frozen normalisation: the
defaults), enumerated once (:mod:`real_games`), so the exact Shapley values are known and any estimator can be run
on it without the model: its evaluations are table look-ups. For every game, budget (5n, 10n, 20n evaluations and
more) and estimator, ``--runs`` seeds give:

* coverage: the share of (run, word) pairs whose nominal 95 % interval (``AttributionResult.interval``: t quantile
  with the estimator's degrees of freedom) holds the exact per-word value (phi summed over the response);
* how often a run had no error estimate at all (NaN: a single sampling unit);
* relative error ``||phi_hat - phi|| / ||phi||`` of the per-word values (mean over runs), the figure the README
  quotes for real games.

    python benchmarks/interval_coverage.py --corpus work_data/corpus --per-voice 5 --runs 100
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_games import real_ctc_games  # noqa: E402

from sgpa.attribution.estimators import estimate  # noqa: E402
from sgpa.attribution.estimators.exact import shapley_from_table  # noqa: E402
from sgpa.attribution.game import Game  # noqa: E402
from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BUDGETS_PER_PLAYER = (2, 5, 6, 10, 20, 40)
METHODS = ("permutation", "kernel", "auto")


def table_game(table: np.ndarray) -> Game:
    """A :class:`Game` whose value function looks coalitions up in an exact table (row = bits of the coalition)."""
    n = int(np.log2(len(table)))
    powers = 1 << np.arange(n)

    def value_fn(coalitions: np.ndarray) -> np.ndarray:
        return table[coalitions.astype(np.int64) @ powers]

    return Game(value_fn, n, batch_size=1 << 16)


def run_setting(table: np.ndarray, exact_total: np.ndarray, method: str, budget: int, runs: int) -> dict:
    covered, no_estimate, errors, widths = [], 0, [], []
    for seed in range(runs):
        result = estimate(table_game(table), method, budget=budget, seed=seed).total()
        phi = result.phi[:, 0]
        errors.append(float(np.linalg.norm(phi - exact_total) / np.linalg.norm(exact_total)))
        if result.stderr is None:  # exact: the interval is the point
            covered.extend(np.abs(phi - exact_total) < 1e-9)
            continue
        if np.isnan(result.stderr).any():
            no_estimate += 1
            continue
        low, high = result.interval(0.95)
        covered.extend((low[:, 0] <= exact_total) & (exact_total <= high[:, 0]))
        widths.append(float(np.mean(high[:, 0] - low[:, 0])))
    return {
        "coverage": float(np.mean(covered)) if covered else None,
        "runs_without_error_estimate": no_estimate,
        "relative_error": float(np.mean(errors)),
        "mean_interval_width": float(np.mean(widths)) if widths else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "work_data" / "corpus")
    parser.add_argument("--per-voice", type=int, default=4)
    parser.add_argument("--min-words", type=int, default=8, help="fewest words (20 n must stay below 2**n)")
    parser.add_argument("--max-words", type=int, default=11)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args(argv)
    started = time.time()
    games = real_ctc_games(args.corpus, args.per_voice, args.max_words, min_words=args.min_words)
    rows = []
    for game in games:
        table = np.asarray(game["table"])
        n = table.shape[1]
        exact_total = shapley_from_table(table).sum(axis=1)
        for per_player in BUDGETS_PER_PLAYER:
            budget = per_player * n
            if budget >= 2**n:
                continue
            for method in METHODS:
                figures = run_setting(table, exact_total, method, budget, args.runs)
                rows.append({"id": game["id"], "group": game["group"], "n": n, "budget_per_player": per_player,
                             "method": method, **figures})
        print(f"  {game['id']} (n = {n}) done", flush=True)
    result = {
        "command": "python benchmarks/interval_coverage.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, 2 cores",
        "n_games": len(games),
        "players": sorted({len(g["players"]) for g in games}),
        "runs_per_setting": args.runs,
        "summary": summarise(rows),
        "settings": rows,
        "seconds": round(time.time() - started, 1),
    }
    out = RESULTS / "coverage"
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))


def summarise(rows: list[dict]) -> list[dict]:
    """Per method and budget: coverage pooled over games (each game weighted equally) and the error's spread."""
    out = []
    for method in METHODS:
        for per_player in BUDGETS_PER_PLAYER:
            chosen = [r for r in rows if r["method"] == method and r["budget_per_player"] == per_player]
            if not chosen:
                continue
            coverages = [r["coverage"] for r in chosen if r["coverage"] is not None]
            errors = [r["relative_error"] for r in chosen]
            out.append({
                "method": method, "budget_per_player": per_player, "games": len(chosen),
                "coverage_mean": round(float(np.mean(coverages)), 3) if coverages else None,
                "coverage_min": round(float(np.min(coverages)), 3) if coverages else None,
                "runs_without_error_estimate": int(sum(r["runs_without_error_estimate"] for r in chosen)),
                "relative_error_median": round(float(np.median(errors)), 4),
                "relative_error_max": round(float(np.max(errors)), 4),
            })
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Interval coverage and accuracy on real CTC games",
        "",
        f"`{result['command']}` — {result['n_games']} held-out utterances (n = {result['players'][0]}–"
        f"{result['players'][-1]} words), the shipped CTC model, silence masking, frozen normalisation; "
        f"{result['runs_per_setting']} seeds per game and setting; {result['machine']}, {result['seconds']:.0f} s.",
        "Coverage: share of (run, word) whose nominal 95 % interval holds the exact value (target 0.92–0.98); the",
        "mean is over games, each weighted equally. Relative error: ||φ̂ − φ|| / ||φ|| of the per-word values, mean",
        "over seeds; median and worst game.",
        "",
        "| method | budget | games | coverage (mean) | coverage (worst game) | runs without error bar | rel. error median | worst |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["summary"]:
        coverage = "—" if s["coverage_mean"] is None else f"{s['coverage_mean']:.3f}"
        worst = "—" if s["coverage_min"] is None else f"{s['coverage_min']:.3f}"
        lines.append(f"| {s['method']} | {s['budget_per_player']}n | {s['games']} | {coverage} | {worst} | "
                     f"{s['runs_without_error_estimate']} | {100 * s['relative_error_median']:.1f} % | "
                     f"{100 * s['relative_error_max']:.1f} % |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
