"""The oracle LFM2-Audio model on held-out voices: task accuracy, oracle faithfulness, and the cost of one explanation.

Held-out task utterances (voices never trained on; make them with
``python -m sgpa.corpus.generate --out work_data/tasks/heldout --n 400 --seed 12 --voices heldout --sentences tasks
--id-prefix heldout_``) are asked every question of :mod:`sgpa.corpus.tasks`, and explained:

* **accuracy**: the greedy answer (``Lfm2AudioBackend.answer``) against the expected one, per task; ASR's CER/WER;
* **faithfulness**: the slot question ("Which colour was mentioned?") explained with exact Shapley values over
  SGPA's word players (value = log-probability of the model's own answer) under each masking of ``--maskings``: how
  often the slot word has the largest phi, and its share of sum |phi|. Side by side, under the first masking, the
  same value explained with the model's native 80 ms tokens as players (kernel estimate, summed back onto words by
  time overlap) and with as many uniform windows as words (exact, summed back onto words);
* **controls**: "Say the word X." with the prompt's words as players too (exact): A-SHAP, the audio players' share
  of sum |phi|, should be small;
* **timing**: the wall time of one exact explanation (align + explain) of a held-out utterance of up to 12 words.

    python benchmarks/oracle_model.py --corpus work_data/tasks/heldout --n 200 --n-accuracy 400 --n-controls 100

writes ``benchmarks/results/oracle_model.json`` and ``.md``.
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

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token lists (no library in the environment does words and chars alike)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def accuracy(backend, items: list[dict]) -> dict:
    """Greedy answers to every task question about every item; exact-match accuracy per task, ASR error rates."""
    from sgpa.corpus.tasks import TASKS, make_example

    hits: dict[str, list[bool]] = {t: [] for t in TASKS}
    char_errors = char_total = word_errors = word_total = 0
    by_voice: dict[str, dict[str, list[bool]]] = {}
    examples = []
    for item in items:
        rng = np.random.default_rng([7, item["index"]])
        for task in TASKS:
            example = make_example(item["text"], task, rng)
            answer = backend.answer(item["waveform"], example.prompt)
            ok = answer == example.answer
            hits[task].append(ok)
            by_voice.setdefault(item["voice"], {t: [] for t in TASKS})[task].append(ok)
            if task == "asr":
                char_errors += edit_distance(list(example.answer), list(answer))
                char_total += len(example.answer)
                word_errors += edit_distance(example.answer.split(), answer.split())
                word_total += len(example.answer.split())
            if len(examples) < 12:
                examples.append({"task": task, "prompt": example.prompt, "expected": example.answer, "answer": answer})
    return {
        "n_utterances": len(items),
        "accuracy": {t: float(np.mean(v)) for t, v in hits.items()},
        "accuracy_by_voice": {voice: {t: float(np.mean(v)) for t, v in tasks.items()} for voice, tasks in by_voice.items()},
        "asr_cer": char_errors / max(char_total, 1),
        "asr_wer": word_errors / max(word_total, 1),
        "examples": examples,
    }


def word_spans_s(segmentation) -> np.ndarray:
    return np.array([[w.start, w.end] for w in segmentation.words])


def slot_figures(phi_on_words: np.ndarray, slot: int) -> dict:
    magnitude = np.abs(phi_on_words)
    return {
        "slot_is_top": bool(int(np.argmax(phi_on_words)) == slot),
        "slot_rank": int(np.flatnonzero(np.argsort(-phi_on_words, kind="stable") == slot)[0]) + 1,
        "slot_share": float(magnitude[slot] / magnitude.sum()) if magnitude.sum() > 0 else float("nan"),
    }


def faithfulness(backend, aligner, items: list[dict], token_budget_per_player: int, maskings: list[str],
                 n_side_by_side: int) -> dict:
    """Slot-question explanations: word players under each of ``maskings``, and tokens and windows under the first;
    per-utterance records and summary rates."""
    import sgpa
    from sgpa.attribution.bench import player_segmentation, player_spans
    from sgpa.attribution.diagnostics import map_onto_words
    from sgpa.corpus.tasks import make_example

    records = []
    for position, item in enumerate(items):
        if position % 20 == 0:
            print(f"faithfulness {position}/{len(items)}", file=sys.stderr, flush=True)
        example = make_example(item["text"], "slot", np.random.default_rng([7, item["index"]]))
        words = sgpa.align(item["waveform"], item["text"], aligner=aligner, grid="lfm2-audio", sample_rate=16000)
        record = {"id": item["id"], "voice": item["voice"], "prompt": example.prompt, "expected": example.answer,
                  "slot": example.answer_word}
        spans_words = word_spans_s(words)
        runs = [("words", masking) for masking in maskings]
        if position < n_side_by_side:
            runs += [("tokens", maskings[0]), ("windows", maskings[0])]
        for name, masking in runs:
            label = name if masking == maskings[0] else f"{name}, {masking}"
            segmentation = player_segmentation(name, words, item["waveform"], "lfm2-audio")
            n = segmentation.n_words
            options = {"estimator": "exact"} if name != "tokens" else {
                "estimator": "kernel", "budget": token_budget_per_player * n, "seed": 0}
            clock = time.perf_counter()
            explanation = sgpa.explain(item["waveform"], segmentation, backend=backend, prompt=example.prompt,
                                       masking=masking, sample_rate=16000, **options)
            phi = np.asarray(explanation.phi_total, dtype=float)
            if name != "words":
                spans = np.array([[a, b] for _, a, b in player_spans(name, words, words.audio.duration_s)])
                phi = map_onto_words(phi, spans, spans_words)
            record[label] = {"n_players": n, "masking": masking, "answer": explanation.response["text"], "phi_on_words": phi.tolist(),
                            "evaluations": explanation.cost.n_evaluations,
                            "seconds": time.perf_counter() - clock, **slot_figures(phi, example.answer_word)}
        record["correct"] = record["words"]["answer"].replace("<|im_end|>", "").strip() == example.answer
        records.append(record)
    summary = {}
    labels = list(dict.fromkeys(k for r in records for k in r if isinstance(r[k], dict)))
    for name in labels:
        having = [r for r in records if name in r]
        for subset, rows in (("all", having), ("answered correctly", [r for r in having if r["correct"]])):
            if not rows:
                continue
            summary.setdefault(name, {})[subset] = {
                "n": len(rows),
                "slot_top_rate": float(np.mean([r[name]["slot_is_top"] for r in rows])),
                "slot_share_median": float(np.median([r[name]["slot_share"] for r in rows])),
                "slot_share_quartiles": np.quantile([r[name]["slot_share"] for r in rows], [0.25, 0.75]).tolist(),
                "mean_evaluations": float(np.mean([r[name]["evaluations"] for r in rows])),
                "mean_seconds": float(np.mean([r[name]["seconds"] for r in rows])),
            }
    return {"summary": summary, "records": records}


def controls(backend, aligner, items: list[dict], masking: str | None = None) -> dict:
    """Text-only controls explained with the prompt's words as players: A-SHAP per utterance."""
    import sgpa
    from sgpa.corpus.tasks import make_example

    shares, correct = [], []
    for item in items:
        example = make_example(item["text"], "control", np.random.default_rng([8, item["index"]]))
        words = sgpa.align(item["waveform"], item["text"], aligner=aligner, grid="lfm2-audio", sample_rate=16000)
        explanation = sgpa.explain(item["waveform"], words, backend=backend, prompt=example.prompt, text_players=True,
                                   estimator="exact", masking=masking, sample_rate=16000)
        shares.append(float(explanation.details["audio_share"]))
        correct.append(explanation.response["text"].replace("<|im_end|>", "").strip() == example.answer)
    return {"n": len(items), "masking": backend.check_masking(masking), "a_shap_median": float(np.median(shares)),
            "a_shap_quartiles": np.quantile(shares, [0.25, 0.75]).tolist(),
            "answered_correctly": float(np.mean(correct)), "a_shap": shares}


def timing(backend, aligner, items: list[dict], repeats: int = 5) -> dict:
    """Wall time of align + exact explain for the held-out utterances with the most words (at most 12)."""
    import sgpa
    from sgpa.corpus.tasks import make_example

    longest = sorted((i for i in items if len(i["text"].split()) <= 12), key=lambda i: -len(i["text"].split()))
    seconds, n_words = [], []
    for item in longest[:repeats]:
        example = make_example(item["text"], "slot", np.random.default_rng([7, item["index"]]))
        clock = time.perf_counter()
        explanation = sgpa.explain(item["waveform"], item["text"], backend=backend, prompt=example.prompt,
                                   aligner=aligner, estimator="exact", sample_rate=16000)
        seconds.append(time.perf_counter() - clock)
        n_words.append(explanation.n_players)
    return {"seconds": seconds, "n_words": n_words, "max_seconds": max(seconds)}


def load_items(corpus: Path, n: int) -> list[dict]:
    import soundfile

    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    items = []
    for index, row in enumerate(rows[:n]):
        waveform, rate = soundfile.read(corpus / row["audio"], dtype="float32")
        assert rate == 16000
        items.append({"id": row["id"], "text": row["text"], "voice": f"{row['engine']}:{row['voice']}",
                      "waveform": waveform, "index": index})
    return items


def markdown(results: dict) -> str:
    lines = [
        "# The oracle LFM2-Audio model (sgpa-lfm2-oracle) on held-out voices",
        "",
        f"Machine: {results['machine']}. Command: `{results['command']}`. Held-out voices: festival "
        "cmu_us_slt_arctic_hts, flite slt, espeak-ng en-us+f3.",
        "",
    ]
    if "accuracy" in results:
        lines += accuracy_markdown(results["accuracy"])
    return "\n".join(lines + other_markdown(results))


def accuracy_markdown(acc: dict) -> list[str]:
    lines = [
        f"## Task accuracy ({acc['n_utterances']} utterances, greedy answers, exact match)",
        "",
        "| task | accuracy | " + " | ".join(sorted(acc["accuracy_by_voice"])) + " |",
        "|---|---|" + "---|" * len(acc["accuracy_by_voice"]),
    ]
    for task, value in acc["accuracy"].items():
        per_voice = " | ".join(f"{acc['accuracy_by_voice'][v][task]:.3f}" for v in sorted(acc["accuracy_by_voice"]))
        lines.append(f"| {task} | {value:.3f} | {per_voice} |")
    return lines + ["", f"ASR (\"Perform ASR.\"): CER {acc['asr_cer']:.3f}, WER {acc['asr_wer']:.3f}.", ""]


def other_markdown(results: dict) -> list[str]:
    lines = []
    if "faithfulness" in results:
        lines += ["## Oracle faithfulness: slot questions, exact Shapley over word players", "",
                  f"Maskings: {results['maskings']} (tokens and windows under the first).", "",
                  "| players | utterances | slot word top-1 | median share of Σ|φ| (IQR) | evaluations | seconds |",
                  "|---|---|---|---|---|---|"]
        for name, subsets in results["faithfulness"]["summary"].items():
            for subset, row in subsets.items():
                q = row["slot_share_quartiles"]
                lines.append(f"| {name} ({subset}) | {row['n']} | {row['slot_top_rate']:.3f} | "
                             f"{row['slot_share_median']:.3f} ({q[0]:.2f}-{q[1]:.2f}) | {row['mean_evaluations']:.0f} | "
                             f"{row['mean_seconds']:.2f} |")
        lines += ["", f"tokens and windows: the first {results['n_side_by_side']} utterances. "
                  "tokens: the model's 80 ms encoder tokens as players (kernel estimate, "
                  f"{results['token_budget_per_player']} n evaluations), summed back onto words by time overlap; "
                  "windows: as many uniform windows as words (exact), summed back onto words.", ""]
    if "controls" in results:
        c = results["controls"]
        lines += ["## Text-only controls (\"Say the word X.\"), prompt words as players too, exact", "",
                  f"{c['n']} utterances, masking {c.get('masking', 'embedding')}: A-SHAP median {c['a_shap_median']:.3f} (IQR {c['a_shap_quartiles'][0]:.3f}-"
                  f"{c['a_shap_quartiles'][1]:.3f}); answered correctly {c['answered_correctly']:.3f}.", ""]
    if "timing" in results:
        t = results["timing"]
        lines += ["## One exact explanation (align + explain)", "",
                  f"{', '.join(f'{s:.2f} s ({n} words)' for s, n in zip(t['seconds'], t['n_words']))}; "
                  f"max {t['max_seconds']:.2f} s.", ""]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="work_data/tasks/heldout")
    parser.add_argument("--model", default=None, help="default: the shipped sgpa-lfm2-oracle")
    parser.add_argument("--n", type=int, default=200, help="utterances for faithfulness and controls")
    parser.add_argument("--n-accuracy", type=int, default=400, help="utterances for task accuracy")
    parser.add_argument("--n-controls", type=int, default=100, help="utterances for the text-only controls")
    parser.add_argument("--controls-masking", default=None, help="masking of the controls (default: the backend's)")
    parser.add_argument("--token-budget-per-player", type=int, default=40)
    parser.add_argument("--n-side-by-side", type=int, default=200,
                        help="faithfulness: the first N utterances also with tokens and windows as players")
    parser.add_argument("--parts", default="accuracy,faithfulness,controls,timing")
    parser.add_argument("--maskings", default="encoder-input,embedding",
                        help="faithfulness: word players under each; tokens and windows under the first")
    parser.add_argument("--out", default=str(RESULTS / "oracle_model"))
    args = parser.parse_args(argv)

    import torch

    import sgpa

    torch.set_num_threads(2)
    backend = sgpa.load_backend(args.model, "lfm2-audio")
    aligner = sgpa.load_aligner()
    items = load_items(Path(args.corpus), max(args.n, args.n_accuracy, args.n_controls))
    parts = args.parts.split(",")
    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}",
        "command": "python benchmarks/oracle_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": backend.model_id, "model_revision": backend.revision,
        "token_budget_per_player": args.token_budget_per_player,
        "maskings": args.maskings,
        "n_side_by_side": args.n_side_by_side,
    }
    started = time.perf_counter()
    if "accuracy" in parts:
        results["accuracy"] = accuracy(backend, items[: args.n_accuracy])
        print(json.dumps(results["accuracy"]["accuracy"]), flush=True)
    if "faithfulness" in parts:
        results["faithfulness"] = faithfulness(backend, aligner, items[: args.n], args.token_budget_per_player,
                                               args.maskings.split(","), args.n_side_by_side)
        print(json.dumps(results["faithfulness"]["summary"]), flush=True)
    if "controls" in parts:
        results["controls"] = controls(backend, aligner, items[: args.n_controls], args.controls_masking)
        print(results["controls"]["a_shap_median"], flush=True)
    if "timing" in parts:
        results["timing"] = timing(backend, aligner, items)
        print(results["timing"], flush=True)
    results["seconds"] = time.perf_counter() - started
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(results) + "\n")
    print(f"wrote {out.with_suffix('.md')}", flush=True)


if __name__ == "__main__":
    main()
