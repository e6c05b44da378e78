"""Dataset-level figures of a bench: paired statistics between player sets, ``report.md``, plots, ``results.json``.

Statistics come from scipy.stats and statsmodels, never written by hand: Wilcoxon signed-rank and paired t tests,
the paired effect size ``d_z = mean(d) / sd(d)`` with a bootstrap 95 % confidence interval
(``scipy.stats.bootstrap``), Holm's correction over the whole family of comparisons
(``statsmodels.stats.multitest.multipletests``), and an equivalence test (TOST, ``statsmodels``) for "the player
sets give the same cumulative profile" within a stated margin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.io import atomic_write, atomic_write_text

#: Equivalence margin of the cumulative-profile TOST: mean absolute difference of the two profiles, as a share of
#: the total |phi| (0.1 = the two sets place 10 % of the attribution mass at different times, on average).
PROFILE_MARGIN = 0.10

#: Errors at which the report also reads the cost off the stored error curves, besides the bench's own epsilons:
#: a coarse tolerance is often the finest a high-budget reference for ~30 native tokens can resolve.
EXTRA_EPSILONS = (0.2, 0.1)

#: Figures compared between player sets (all on the words: the sets' attributions mapped onto the words).
COMPARED = {
    "normalized_entropy": ("concentration_on_words", "normalized_entropy"),
    "gini": ("concentration_on_words", "gini"),
    "top1_mass": ("concentration_on_words", "top1_mass"),
    "aopc_deletion": ("faithfulness", "aopc_deletion"),
    "aopc_insertion": ("faithfulness", "aopc_insertion"),
    "spearman_abs_phi_vs_drop": ("faithfulness", "spearman_abs_phi_vs_drop"),
    "diagonal_score": (None, "diagonal_score"),
}


def figure(record: dict, player_set: str, key: str) -> float:
    group, name = COMPARED[key]
    entry = record["player_sets"][player_set]
    value = entry[name] if group is None else entry[group][name]
    return float("nan") if value is None else float(value)


def paired_test(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict:
    """Wilcoxon signed-rank and paired t tests of ``a - b``, and ``d_z`` with a bootstrap 95 % CI."""
    from scipy.stats import bootstrap, ttest_rel, wilcoxon

    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = a - b
    out: dict[str, Any] = {"n": int(d.size), "mean_a": _f(np.mean(a)) if d.size else None,
                           "mean_b": _f(np.mean(b)) if d.size else None,
                           "mean_difference": _f(np.mean(d)) if d.size else None}
    if d.size < 3 or np.all(d == 0):
        return {**out, "wilcoxon_p": None, "t_p": None, "d_z": None, "d_z_ci95": None}
    out["wilcoxon_p"] = _f(wilcoxon(a, b).pvalue)
    out["t_p"] = _f(ttest_rel(a, b).pvalue)
    sd = np.std(d, ddof=1)
    out["d_z"] = _f(np.mean(d) / sd) if sd > 0 else None
    out["d_z_ci95"] = None
    if sd > 0:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resamples of a few identical differences have sd 0: their d_z is NaN
            ci = bootstrap((d,), lambda x, axis: np.mean(x, axis=axis) / np.std(x, ddof=1, axis=axis),
                           n_resamples=2000, random_state=seed, method="percentile").confidence_interval
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            out["d_z_ci95"] = [float(ci.low), float(ci.high)]
    return out


def _f(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def holm(tests: list[dict], key: str = "wilcoxon_p") -> None:
    """Add ``{key}_holm`` to every test in place: Holm's step-down adjustment over the family."""
    from statsmodels.stats.multitest import multipletests

    indices = [i for i, t in enumerate(tests) if t.get(key) is not None]
    if not indices:
        return
    adjusted = multipletests([tests[i][key] for i in indices], method="holm")[1]
    for i, p in zip(indices, adjusted, strict=True):
        tests[i][f"{key}_holm"] = float(p)


def profile_equivalence(records: list[dict], other: str, margin: float = PROFILE_MARGIN) -> dict | None:
    """TOST of the mean absolute profile difference (``words`` vs ``other``) against ``+-margin``."""
    from statsmodels.stats.weightstats import ttost_paired

    distances = [np.mean(np.abs(np.subtract(r["player_sets"]["words"]["profile"],
                                            r["player_sets"][other]["profile"])))
                 for r in records if other in r["player_sets"]]
    if len(distances) < 3:
        return None
    distances = np.asarray(distances)
    p, _, _ = ttost_paired(distances, np.zeros_like(distances), -margin, margin)
    return {"n": int(distances.size), "margin": margin, "mean_distance": float(distances.mean()),
            "tost_p": float(p), "equivalent_at_0.05": bool(p < 0.05)}


def cost_ratios(records: list[dict], other: str, eps: str, method: str = "auto") -> dict:
    """Per-utterance ratio of the evaluations ``other`` needs to those ``words`` need at ``eps``; median and IQR.

    Where ``other`` did not reach ``eps`` within its ladder, its top rung is a lower bound of its cost, and the ratio a
    lower bound; ``median`` is then reported as ``median_lower_bound`` (a lower bound of the median ratio) when every
    utterance has at least a bound.
    """
    exact, bounds, unresolved = [], [], 0
    for r in records:
        if other not in r["player_sets"]:
            continue
        words = r["player_sets"]["words"]["matched_accuracy"]["cost"][method].get(eps)
        theirs = r["player_sets"][other]["matched_accuracy"]
        cost, bound = theirs["cost"][method].get(eps), theirs.get("cost_lower_bound", {}).get(method, {}).get(eps)
        if words is None or (cost is None and bound is None):
            unresolved += 1
        elif cost is not None:
            exact.append(cost / words)
        else:
            bounds.append(bound / words)
    out: dict[str, Any] = {"n_exact": len(exact), "n_lower_bounds": len(bounds), "unresolved": unresolved,
                           "median": None, "iqr": None, "median_lower_bound": None}
    if exact and not bounds:
        q1, median, q3 = np.percentile(exact, [25, 50, 75])
        out.update(median=float(median), iqr=[float(q1), float(q3)])
    elif exact or bounds:
        q1, median, q3 = np.percentile(exact + bounds, [25, 50, 75])
        out.update(median_lower_bound=float(median), iqr_lower_bound=[float(q1), float(q3)])
    return out


def faithfulness_tests(records: list[dict], player_set: str) -> dict:
    """Top-|phi| word deletion against a random and a length-matched word, and the AOPC order phi > LOO > random."""
    f = [r["player_sets"][player_set]["faithfulness"] for r in records if player_set in r["player_sets"]]
    loo = [r["leave_one_out"] for r in records if player_set in r["player_sets"]]
    top = np.array([x["top_word_drop"] for x in f])
    answer_ranks = [x["answer_word_rank"] for x in f if x["answer_word_rank"] is not None]
    return {
        "top_vs_random_word": paired_test(top, np.array([x["random_word_drop"] for x in f])),
        "top_vs_length_matched_word": paired_test(top, np.array([x["length_matched_word_drop"] for x in f])),
        "aopc_phi_vs_loo": paired_test(np.array([x["aopc_deletion"] for x in f]),
                                       np.array([x["aopc_deletion"] for x in loo])),
        "aopc_loo_vs_random": paired_test(np.array([x["aopc_deletion"] for x in loo]),
                                          np.array([x["aopc_random"] for x in f])),
        "aopc_phi": _mean([x["aopc_deletion"] for x in f]),
        "aopc_loo": _mean([x["aopc_deletion"] for x in loo]),
        "aopc_random": _mean([x["aopc_random"] for x in f]),
        "aopc_insertion_phi": _mean([x["aopc_insertion"] for x in f]),
        "spearman_median": _median([x["spearman_abs_phi_vs_drop"] for x in f]),
        "answer_word_top1_rate": float(np.mean(np.array(answer_ranks) == 1)) if answer_ranks else None,
        "answer_word_items": len(answer_ranks),
    }


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(values)) if values else None


def report_epsilons(config: Any) -> tuple[float, ...]:
    return tuple(sorted(set(config.epsilons) | set(EXTRA_EPSILONS), reverse=True))


def with_report_costs(records: list[dict], epsilons: tuple[float, ...]) -> list[dict]:
    """Copies of ``records`` whose costs are recomputed at ``epsilons`` from each player set's stored error curves."""
    import copy

    from sgpa.attribution.bench import costs_from_curves

    out = copy.deepcopy(records)
    for record in out:
        for entry in record["player_sets"].values():
            curves = entry["matched_accuracy"]
            cost, bound = costs_from_curves(curves["errors"], curves["evaluations"], curves["ladder"],
                                            entry["reference_relative_stderr"], curves["exact_evaluations"], epsilons)
            curves["cost"], curves["cost_lower_bound"] = cost, bound
    return out


def summarise(records: list[dict], config: Any, meta: dict) -> dict:
    """Everything ``report.md`` and ``results.json`` say about a bench (costs at :func:`report_epsilons`)."""
    epsilons = report_epsilons(config)
    records = with_report_costs(records, epsilons)
    sets = [name for name in config.player_sets if any(name in r["player_sets"] for r in records)]
    others = [name for name in sets if name != "words"]
    comparisons = []
    for other in others:
        for key in COMPARED:
            a = np.array([figure(r, "words", key) for r in records if other in r["player_sets"]])
            b = np.array([figure(r, other, key) for r in records if other in r["player_sets"]])
            comparisons.append({"words_vs": other, "figure": key, **paired_test(a, b)})
    holm(comparisons)
    per_set = {}
    for name in sets:
        entries = [r["player_sets"][name] for r in records if name in r["player_sets"]]
        per_set[name] = {
            "n_players_median": float(np.median([e["n_players"] for e in entries])),
            "log10_coalitions_median": float(np.median([e["log10_coalitions"] for e in entries])),
            "reference_exact_share": float(np.mean([e["reference_kind"] == "exact" for e in entries])),
            "reference_relative_stderr_median": float(np.median([e["reference_relative_stderr"] for e in entries])),
            "cost_median": {
                method: {eps: _median([e["matched_accuracy"]["cost"][method][eps] for e in entries
                                       if e["matched_accuracy"]["cost"][method][eps] is not None])
                         for eps in map(str, epsilons)}
                for method in ("permutation", "kernel", "auto")
            },
            "cost_resolved": {eps: int(sum(e["matched_accuracy"]["cost"]["auto"][eps] is not None for e in entries))
                              for eps in map(str, epsilons)},
            "concentration": {key: _median([e["concentration"][key] for e in entries])
                              for key in entries[0]["concentration"]},
            "concentration_on_words": {key: _median([e["concentration_on_words"][key] for e in entries])
                                       for key in entries[0]["concentration_on_words"]},
            "diagonal_score_median": _median([e["diagonal_score"] for e in entries]),
            "faithfulness": faithfulness_tests(records, name),
            "model_evaluations_total": int(sum(e["model_evaluations"] for e in entries)),
            "seconds_total": float(sum(e["seconds"] for e in entries)),
        }
    modality = [r["modality"] for r in records if r.get("modality")]
    return {
        "n_utterances": len(records),
        "modality": None if not modality else {
            "n": len(modality),
            "a_shap_median": _median([m["a_shap"] for m in modality]),
            "a_shap_quartiles": np.quantile([m["a_shap"] for m in modality], [0.25, 0.75]).tolist(),
            "generative_mean": [_mean([m["generative"][w] for m in modality if m["generative"][w] is not None])
                                for w in range(len(modality[0]["generative"]))],
        },
        "config": _config_dict(config),
        "meta": meta,
        "player_sets": per_set,
        "report_epsilons": list(epsilons),
        "cost_ratios": {other: {eps: cost_ratios(records, other, eps) for eps in map(str, epsilons)}
                        for other in others},
        "paired_comparisons": comparisons,
        "profile_equivalence": {other: profile_equivalence(records, other) for other in others},
        "seconds_total": float(sum(r["seconds"] for r in records)),
    }


def _config_dict(config: Any) -> dict:
    from dataclasses import asdict

    return asdict(config)


# --- writing ------------------------------------------------------------------------------------------------------


def write_report(folder: Path, records: list[dict], config: Any, meta: dict, failures: list) -> dict:
    """Write ``results.json``, ``report.md`` and the PNG plots of a bench folder (each atomically)."""
    folder = Path(folder)
    summary = summarise(records, config, meta) if records else {"n_utterances": 0, "config": _config_dict(config),
                                                                "meta": meta}
    summary["failures"] = [{"id": name, "error": message} for name, message in failures]
    summary = _finite(summary)
    atomic_write_text(folder / "results.json", json.dumps(summary, indent=2, allow_nan=False, default=_json) + "\n")
    if records:
        write_plots(folder, with_report_costs(records, report_epsilons(config)), config)
    atomic_write_text(folder / "report.md", markdown(summary))
    return summary


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _json(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3g}"
    return str(value)


def _p(value: Any) -> str:
    return "—" if value is None else (f"{value:.2g}" if value >= 1e-4 else "<1e-4")


def markdown(summary: dict) -> str:
    meta = summary.get("meta", {})
    lines = ["# sgpa bench", ""]
    lines.append(f"{summary['n_utterances']} utterances; model `{meta.get('model')}` ({meta.get('backend')} backend), "
                 f"masking `{meta.get('masking')}`; player sets {', '.join(summary['config']['player_sets'])}; "
                 f"{summary['config']['seeds']} seeds; epsilons {summary['config']['epsilons']}.")
    if summary.get("failures"):
        lines += ["", f"**{len(summary['failures'])} input(s) failed** (listed in results.json): "
                  + ", ".join(f["id"] for f in summary["failures"])]
    if not summary["n_utterances"]:
        return "\n".join(lines) + "\n"
    per_set = summary["player_sets"]
    eps_list = [str(e) for e in summary["report_epsilons"]]

    lines += ["", "## 1. Cost at matched accuracy", "",
              "Fewest distinct model evaluations from which every seed stays within a relative L2 error ε of the",
              "reference (exact where 2^n fits the cap; else a high-budget kernel estimate, whose own relative",
              "standard error must be ≤ ε/2 for ε to count as resolved). Median over utterances; `auto` is what",
              "`sgpa explain` would run.", "",
              "| player set | players (median) | log10 coalitions | reference exact | " +
              " | ".join(f"auto ε={e}" for e in eps_list) + " | resolved |",
              "|---|---:|---:|---:|" + "---:|" * len(eps_list) + "---:|"]
    for name, s in per_set.items():
        costs = " | ".join(_fmt(s["cost_median"]["auto"][e]) for e in eps_list)
        resolved = ", ".join(f"{s['cost_resolved'][e]}/{summary['n_utterances']}" for e in eps_list)
        lines.append(f"| {name} | {_fmt(s['n_players_median'])} | {_fmt(s['log10_coalitions_median'])} | "
                     f"{s['reference_exact_share']:.0%} | {costs} | {resolved} |")
    lines += ["", "Evaluation ratio at equal ε (per utterance, then median and IQR; the honest counterpart of the "
              "published 43×/79×, which was a budget rule):", ""]
    for other, by_eps in summary["cost_ratios"].items():
        for eps, r in by_eps.items():
            if r["median"] is not None:
                text = f"median {r['median']:.3g}× (IQR {r['iqr'][0]:.3g}–{r['iqr'][1]:.3g}), n = {r['n_exact']}"
            elif r["median_lower_bound"] is not None:
                low, high = r["iqr_lower_bound"]
                text = (f"median ≥ {r['median_lower_bound']:.3g}× (IQR of bounds {low:.3g}–{high:.3g}; "
                        f"{r['n_lower_bounds']} of {r['n_exact'] + r['n_lower_bounds']} are lower bounds: ε not "
                        "reached within the ladder)")
            else:
                text = "not resolved"
            lines.append(f"- {other} / words at ε = {eps}: {text}; unresolved {r['unresolved']}")
    lines += ["", "Reading: a ratio above 1 means the player set needs that many times SGPA's evaluations to reach",
              "the same accuracy on the same value function; 'unresolved' means either set's reference could not",
              "resolve ε or its ladder never reached ε within its largest budget."]

    lines += ["", "## 2. Concentration", "",
              "Medians over utterances; \"on words\" maps every set's attributions onto the words by time overlap. "
              "H/log n is the normalised entropy (1 = even); H/√n is the reference paper's measure, for comparison "
              "only.", "",
              "| player set | H/log n | H/√n | Gini | top-1 | top-3 | top-20 % | on words: H/log n | Gini | top-1 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in per_set.items():
        c, w = s["concentration"], s["concentration_on_words"]
        lines.append(f"| {name} | {_fmt(c['normalized_entropy'])} | {_fmt(c['entropy_over_sqrt_n'])} | "
                     f"{_fmt(c['gini'])} | {_fmt(c['top1_mass'])} | {_fmt(c['top3_mass'])} | "
                     f"{_fmt(c['top20pct_mass'])} | {_fmt(w['normalized_entropy'])} | {_fmt(w['gini'])} | "
                     f"{_fmt(w['top1_mass'])} |")
    lines += ["", "Cumulative |φ| profile over normalised speech time, words vs each set (TOST equivalence, margin "
              f"{PROFILE_MARGIN} of the total mass):", ""]
    for other, t in summary["profile_equivalence"].items():
        if t:
            lines.append(f"- {other}: mean distance {t['mean_distance']:.3f}, TOST p = {_p(t['tost_p'])} → "
                         f"{'equivalent' if t['equivalent_at_0.05'] else 'not shown equivalent'} (n = {t['n']})")

    lines += ["", "## 3. Faithfulness (on the words' game)", "",
              "Deletion AOPC: delete the top-k words by the set's word-mapped φ, normalised drop averaged over k "
              "(higher is better); LOO ranks by single-word drop; random is the mean over random orders. "
              "Top-|φ| word: |drop| of deleting it vs a random other word and a length-matched one (d_z, Wilcoxon).",
              "", "| player set | AOPC φ | AOPC LOO | AOPC random | insertion AOPC φ | Spearman ρ | top vs random d_z (p) "
              "| top vs length-matched d_z (p) | answer word top-1 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in per_set.items():
        f = s["faithfulness"]
        rnd, lm = f["top_vs_random_word"], f["top_vs_length_matched_word"]
        answer = "—" if f["answer_word_top1_rate"] is None else f"{f['answer_word_top1_rate']:.0%} of {f['answer_word_items']}"
        lines.append(f"| {name} | {_fmt(f['aopc_phi'])} | {_fmt(f['aopc_loo'])} | {_fmt(f['aopc_random'])} | "
                     f"{_fmt(f['aopc_insertion_phi'])} | {_fmt(f['spearman_median'])} | {_fmt(rnd['d_z'])} "
                     f"({_p(rnd['wilcoxon_p'])}) | {_fmt(lm['d_z'])} ({_p(lm['wilcoxon_p'])}) | {answer} |")

    lines += ["", "## 4. Temporal alignment", "",
              "Mean |Φ| on an input-time × output-position grid; diagonal score = mean(diagonal) / mean(off-diagonal) "
              "(above 1: each output rests on the audio heard at the same relative time).", ""]
    for name, s in per_set.items():
        lines.append(f"- {name}: median diagonal score {_fmt(s['diagonal_score_median'])}")

    modality = summary.get("modality")
    if modality:
        q = modality["a_shap_quartiles"]
        windows = ", ".join("—" if g is None else f"{g:.2f}" for g in modality["generative_mean"])
        lines += ["", "## 5. Modality (words and prompt words as players)", "",
                  f"A-SHAP (the audio's share of Σ|Φ|) median {_fmt(modality['a_shap_median'])} (IQR {q[0]:.2f}–"
                  f"{q[1]:.2f}), n = {modality['n']}; T-SHAP = 1 − A-SHAP. Generative SHAP, the audio share in "
                  f"{len(modality['generative_mean'])} equal windows of the response (mean): {windows}."]

    lines += ["", "## Paired comparisons (words vs each set, Holm-corrected over the family)", "",
              "| words vs | figure | n | mean words | mean other | d_z [95 % CI] | Wilcoxon p | Holm p | paired t p |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in summary["paired_comparisons"]:
        ci = "" if not t.get("d_z_ci95") else f" [{t['d_z_ci95'][0]:.2f}, {t['d_z_ci95'][1]:.2f}]"
        lines.append(f"| {t['words_vs']} | {t['figure']} | {t['n']} | {_fmt(t['mean_a'])} | {_fmt(t['mean_b'])} | "
                     f"{_fmt(t['d_z'])}{ci} | {_p(t['wilcoxon_p'])} | {_p(t.get('wilcoxon_p_holm'))} | {_p(t['t_p'])} |")
    lines += ["", "Plots: `cost_vs_epsilon.png`, `concentration.png`, `deletion_curves.png`, `temporal_alignment.png`.",
              f"Model time: {summary['seconds_total']:.0f} s over all utterances."]
    return "\n".join(lines) + "\n"


def write_plots(folder: Path, records: list[dict], config: Any) -> list[Path]:
    """The four PNGs of a bench (matplotlib Figures without pyplot)."""
    from matplotlib.figure import Figure

    sets = [name for name in config.player_sets if any(name in r["player_sets"] for r in records)]
    written = []

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    eps_list = [str(e) for e in report_epsilons(config)]
    for name in sets:
        resolved = [[r["player_sets"][name]["matched_accuracy"]["cost"]["auto"][e] for r in records
                     if name in r["player_sets"] and r["player_sets"][name]["matched_accuracy"]["cost"]["auto"][e]
                     is not None] for e in eps_list]
        medians = [_median(values) for values in resolved]
        line, = ax.plot([float(e) for e in eps_list], [np.nan if m is None else m for m in medians], "o-", label=name)
        for e, m, values in zip(eps_list, medians, resolved, strict=True):
            if m is not None and len(values) < len(records):  # a median over the resolved utterances only
                ax.annotate(f"n={len(values)}", (float(e), m), textcoords="offset points", xytext=(4, 4),
                            fontsize=7, color=line.get_color())
    ax.set_xscale("log")
    if any(line.get_ydata().size and np.nanmax(np.asarray(line.get_ydata(), dtype=float), initial=0) > 0
           for line in ax.get_lines()):
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no player set reached these errors", transform=ax.transAxes, ha="center")
    ax.invert_xaxis()
    ax.set_xlabel("relative L2 error ε")
    ax.set_ylabel("model evaluations (median)")
    ax.set_title("cost at matched accuracy (auto); n = utterances resolved where fewer than all", fontsize=9)
    ax.legend()
    fig.tight_layout()
    written.append(atomic_write(folder / "cost_vs_epsilon.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110)))

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    data = [[r["player_sets"][name]["concentration_on_words"]["normalized_entropy"] for r in records
             if name in r["player_sets"]] for name in sets]
    ax.boxplot([[v for v in d if v is not None and np.isfinite(v)] for d in data], tick_labels=sets)
    ax.set_ylabel("normalised entropy on words (H / log n)")
    ax.set_title("concentration of the attributions, mapped onto the words")
    fig.tight_layout()
    written.append(atomic_write(folder / "concentration.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110)))

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    grid = np.linspace(0, 1, 21)

    def mean_curve(curves: list[list[float]]) -> np.ndarray:
        normalised = []
        for curve in curves:
            curve = np.asarray(curve, dtype=float)
            span = curve[0] - curve[-1]
            if span == 0:
                continue
            fraction = np.linspace(0, 1, curve.size)
            normalised.append(np.interp(grid, fraction, (curve - curve[-1]) / span))
        return np.mean(normalised, axis=0) if normalised else np.full(grid.size, np.nan)

    for name in sets:
        ax.plot(grid, mean_curve([r["player_sets"][name]["faithfulness"]["deletion_curve"] for r in records
                                  if name in r["player_sets"]]), label=name)
    ax.plot(grid, mean_curve([r["leave_one_out"]["deletion_curve"] for r in records]), "k--", label="leave-one-out")
    ax.set_xlabel("share of words deleted (top first)")
    ax.set_ylabel("value, normalised (1 = all words, 0 = none)")
    ax.set_title("deletion curves on the words' game (lower = more faithful)")
    ax.legend()
    fig.tight_layout()
    written.append(atomic_write(folder / "deletion_curves.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110)))

    fig = Figure(figsize=(3.2 * len(sets), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(sets)))
    for ax, name in zip(axes, sets, strict=True):
        grids = [np.asarray(r["player_sets"][name]["alignment_grid"]) for r in records if name in r["player_sets"]]
        ax.imshow(np.mean(grids, axis=0), origin="lower", cmap="magma")
        ax.set_title(name)
        ax.set_xlabel("output position")
        ax.set_ylabel("input time")
    fig.tight_layout()
    written.append(atomic_write(folder / "temporal_alignment.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110)))
    return written
