"""Frozen vs per-input normalisation of waveform-masked inputs, on real CTC games: which is more faithful?

The shipped CTC model's feature extractor rescales every input to zero mean and unit variance. Per-input
normalisation (the front end left alone) rescales a coalition in which most words are silenced, so a present word
is not heard as it is in the full utterance; frozen normalisation divides every coalition by the full utterance's
statistics. Both define a value function; this script measures, on each, how well its own exact Shapley values
explain it:

* own-word top-1: the share of transcript words whose chain-rule term is carried most by their own segment (the CTC
  value is temporal: word ``i``'s term should rest on word ``i``'s audio);
* deletion AOPC: delete the words in order of phi (or of leave-one-out drop, or at random: the exact mean over all
  orders), normalised drop of the summed value ``(v(N) - v(N minus top k)) / (v(N) - v(empty))``, averaged over k;
* lone words below the empty coalition: the share of single-word coalitions whose value is below v(empty);
* paired Wilcoxon signed-rank tests (scipy.stats) between the two, over utterances.

Exact tables come from :mod:`real_games` (cached in work_data/real_games). Run:

    python benchmarks/masking_normalization.py --corpus work_data/corpus --per-voice 6
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from math import comb
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_games import real_ctc_games  # noqa: E402

from sgpa.attribution.estimators.exact import shapley_from_table  # noqa: E402
from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def deletion_aopc(total: np.ndarray, order: list[int]) -> float:
    """Normalised deletion AOPC of the summed value table ``total`` (float[2**n]) deleting players in ``order``."""
    n = len(order)
    full, empty = 2**n - 1, 0
    span = total[full] - total[empty]
    mask, drops = full, []
    for player in order:
        mask &= ~(1 << player)
        drops.append((total[full] - total[mask]) / span)
    return float(np.mean(drops))


def random_aopc(total: np.ndarray, n: int) -> float:
    """The exact mean of :func:`deletion_aopc` over all deletion orders: mean drop over all coalitions of each size."""
    sizes = np.array([bin(m).count("1") for m in range(2**n)])
    span = total[-1] - total[0]
    return float(np.mean([np.mean(total[-1] - total[sizes == n - k]) / span for k in range(1, n + 1)]))


def figures(game: dict) -> dict:
    table = np.asarray(game["table"])
    n = table.shape[1]
    phi = shapley_from_table(table)  # players x words' terms
    total = table.sum(axis=1)
    phi_total = phi.sum(axis=1)
    full = 2**n - 1
    loo_drop = np.array([total[full] - total[full & ~(1 << i)] for i in range(n)])
    singles = np.array([total[1 << i] for i in range(n)])
    return {
        "id": game["id"],
        "group": game["group"],
        "n_words": n,
        "own_word_top1": float(np.mean(np.argmax(phi, axis=0) == np.arange(n))),
        "aopc_phi": deletion_aopc(total, list(np.argsort(-phi_total))),
        "aopc_loo": deletion_aopc(total, list(np.argsort(-loo_drop))),
        "aopc_random": random_aopc(total, n),
        "lone_words_below_empty": float(np.mean(singles < total[0])),
        "v_empty": float(total[0]),
        "v_full": float(total[full]),
    }


def summary(rows: list[dict]) -> dict:
    keys = ("own_word_top1", "aopc_phi", "aopc_loo", "aopc_random", "lone_words_below_empty")
    out = {key: {"mean": round(float(np.mean([r[key] for r in rows])), 4),
                 "median": round(float(np.median([r[key] for r in rows])), 4)} for key in keys}
    out["aopc_gap_phi_minus_random"] = round(float(np.mean([r["aopc_phi"] - r["aopc_random"] for r in rows])), 4)
    return out


def main(argv: list[str] | None = None) -> None:
    from scipy.stats import wilcoxon

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "work_data" / "corpus")
    parser.add_argument("--per-voice", type=int, default=6)
    parser.add_argument("--max-words", type=int, default=9)
    parser.add_argument("--masking", default="silence")
    args = parser.parse_args(argv)
    started = time.time()
    rows = {}
    for normalization in ("frozen", "per-input"):
        games = real_ctc_games(args.corpus, args.per_voice, args.max_words, args.masking, normalization)
        rows[normalization] = [figures(game) for game in games]
    frozen, fresh = rows["frozen"], rows["per-input"]
    tests = {}
    for key in ("own_word_top1", "aopc_phi", "lone_words_below_empty"):
        a, b = np.array([r[key] for r in frozen]), np.array([r[key] for r in fresh])
        differs = np.any(a != b)
        test = wilcoxon(a, b) if differs else None
        tests[key] = {"mean_difference_frozen_minus_per_input": round(float(np.mean(a - b)), 4),
                      "wilcoxon_p": None if test is None else float(test.pvalue), "n": int(len(a))}
    gap_a = np.array([r["aopc_phi"] - r["aopc_random"] for r in frozen])
    gap_b = np.array([r["aopc_phi"] - r["aopc_random"] for r in fresh])
    tests["aopc_gap"] = {"mean_difference_frozen_minus_per_input": round(float(np.mean(gap_a - gap_b)), 4),
                         "wilcoxon_p": float(wilcoxon(gap_a, gap_b).pvalue), "n": int(len(gap_a))}
    result = {
        "command": "python benchmarks/masking_normalization.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, 2 cores",
        "masking": args.masking,
        "n_utterances": len(frozen),
        "groups": sorted({r["group"] for r in frozen}),
        "summary": {name: summary(r) for name, r in rows.items()},
        "paired_tests": tests,
        "utterances": rows,
        "seconds": round(time.time() - started, 1),
    }
    out = RESULTS / f"masking_normalization_{args.masking}"
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        f"# Frozen vs per-input normalisation ({result['masking']} masking, shipped CTC model)",
        "",
        f"`{result['command']}` — {result['n_utterances']} held-out utterances ({', '.join(result['groups'])}), "
        f"exact Shapley values, {result['machine']}, {result['seconds']:.0f} s.",
        "",
        "| normalisation | own-word top-1 | AOPC φ | AOPC LOO | AOPC random | AOPC φ − random | lone words < v(∅) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["summary"].items():
        lines.append(
            f"| {name} | {s['own_word_top1']['mean']:.3f} | {s['aopc_phi']['mean']:.3f} | {s['aopc_loo']['mean']:.3f} | "
            f"{s['aopc_random']['mean']:.3f} | {s['aopc_gap_phi_minus_random']:.3f} | "
            f"{s['lone_words_below_empty']['mean']:.3f} |"
        )
    lines += ["", "Paired over utterances (frozen − per-input, Wilcoxon signed-rank):", ""]
    for key, t in result["paired_tests"].items():
        p = "n/a (identical)" if t["wilcoxon_p"] is None else f"{t['wilcoxon_p']:.2g}"
        lines.append(f"- {key}: mean difference {t['mean_difference_frozen_minus_per_input']:+.4f}, p = {p}, n = {t['n']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
