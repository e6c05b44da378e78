"""Greedy character error rate of a CTC model on held-out synthetic voices and on real speech, and the
word-boundary error of ``sgpa align`` with that model (raw CTC and refined).

    python benchmarks/ctc_accuracy.py --model sgpa/models/sgpa-ctc-en --corpus work_data/corpus

Held-out speech: the corpus's ``split == "heldout"`` utterances (see work_data/corpus/README.txt), up to
``--per-voice`` per voice, in id order: synthetic voices never trained on (festival and flite slt, an espeak
variant) and real speakers never trained on (pocketsphinx-testdata's LibriVox and "cards" clips).
Decoding goes through ``sgpa.ctc`` (the path ``sgpa align`` uses): emissions, arg-max per frame, repeats
collapsed, blanks dropped. References are the transcripts spelled with the model's characters (numerals
expanded).

Boundaries: each utterance is aligned with ``sgpa.pipeline.align`` against its transcript. A cut between two
words counts as exact anywhere inside the true inter-word gap (the pipeline tiles the speech, so it must put the
cut somewhere in a pause); its error is the distance to that gap, ``max(0, true_end[i] - cut, cut - true_start[i+1])``.
The first word's start and the last word's end are compared with the truth directly. "raw" takes the CTC spans
(cut = midpoint between ``ctc_end[i]`` and ``ctc_start[i+1]``), "refined" the pipeline's final ``start``/``end``.
Beside it, FA-Bench's convention: the mean of ``|start - true_start|`` and ``|end - true_end|`` over every word
(which charges a word for time it takes from a neighbouring pause).
Truth: exact synthesis times on held-out voices; pocketsphinx's forced alignment on real speech (a silver
reference, 10 ms frames). Writes ``benchmarks/results/ctc_accuracy.{json,md}``.

``--babble-snr-db 10`` adds babble to the synthetic held-out speech first (8 talkers of training voices, a fixed
seed per utterance, :func:`sgpa.corpus.augment.make_babble`; additive, so the word times stay exact); real speech
is left as recorded.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgpa.io import atomic_write_text  # noqa: E402
from sgpa.text import normalize_transcript  # noqa: E402
from sgpa.training.metrics import character_error_rate, greedy_decode  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def spelled_reference(text: str, characters: set[str]) -> str:
    """The transcript as the model should spell it: upper-case words, single spaces."""
    words = [w.normalized for w in normalize_transcript(text, characters) if w.normalized]
    return " ".join(" ".join(words).split())


def transcribe(acoustic_model, samples: np.ndarray) -> str:
    """Greedy transcription of a 16 kHz waveform."""
    from sgpa.ctc import compute_emissions

    log_probs = compute_emissions(acoustic_model, samples)
    id_to_token = {index: token for token, index in acoustic_model.vocabulary.items()}
    return greedy_decode(log_probs.argmax(-1), id_to_token, acoustic_model.blank_id)


SYNTHETIC_ENGINES = ("festival", "flite", "espeak")


def heldout_items(corpus: Path, per_group: int, split: str = "heldout") -> tuple[list[dict], list[dict]]:
    """(synthetic, real) utterances of the corpus's ``split`` (held-out voices by default; ``"train"`` for a dev
    set of training voices), up to ``per_group`` per voice / source, in id order.

    Each item has ``id``, ``text``, ``wav`` and ``group`` (``engine:voice`` or ``real:source``); its word times
    are in the JSON next to the wav (exact for synthetic speech, pocketsphinx's for real speech).
    """
    from sgpa.training.data import read_manifest

    groups: dict[str, list[dict]] = defaultdict(list)
    for entry in sorted(read_manifest(corpus), key=lambda e: e["id"]):
        if entry.get("split") != split:
            continue
        engine = entry.get("engine", "?")
        group = f"{engine}:{entry.get('voice', '?')}" if engine in SYNTHETIC_ENGINES else f"real:{engine}"
        groups[group].append({"id": entry["id"], "text": entry["text"], "wav": entry["wav"], "group": group})
    synthetic, real = [], []
    for group, items in sorted(groups.items()):
        (real if group.startswith("real:") else synthetic).extend(items[:per_group])
    return synthetic, real


def boundary_errors_s(predicted: list[tuple[float, float]], cuts: list[float], truth: list[tuple[float, float]]) -> list[float]:
    """Errors in seconds of the first start, every inter-word cut and the last end (:func:`sgpa.metrics.boundary_errors_s`)."""
    from sgpa.metrics import boundary_errors_s as errors_s

    edges = [predicted[0][0], *cuts, predicted[-1][1]]
    starts, ends = zip(*truth, strict=True)
    return errors_s(np.asarray(edges), np.asarray(starts), np.asarray(ends)).tolist()


def alignment_errors(
    acoustic_model, samples: np.ndarray, text: str, truth: list[tuple[float, float]], align_options: dict
) -> dict:
    """Raw and refined boundary errors of one utterance aligned by ``sgpa.pipeline.align``."""
    from sgpa.pipeline import align

    segmentation = align(samples, text, acoustic_model, sample_rate=16000, **align_options)
    words = segmentation.words
    if len(words) != len(truth):
        raise ValueError(f"{len(words)} aligned words for {len(truth)} true words in {text!r}")
    raw = [(w.ctc_start, w.ctc_end) for w in words]
    raw_cuts = [(raw[i][1] + raw[i + 1][0]) / 2 for i in range(len(raw) - 1)]
    refined = [(w.start, w.end) for w in words]
    refined_cuts = [w.end for w in words[:-1]]
    return {
        "raw": boundary_errors_s(raw, raw_cuts, truth),
        "refined": boundary_errors_s(refined, refined_cuts, truth),
        # FA-Bench's convention: every word's own start and end against the truth (a word that runs into a pause
        # is charged for it here, not in the gap-based error above)
        "refined_start_end": [abs(a - b) for (start, end), (true_start, true_end) in zip(refined, truth)
                              for a, b in ((start, true_start), (end, true_end))],
    }


def error_summary(errors_s: list[float]) -> dict:
    errors = np.asarray(errors_s)
    return {
        "boundaries": int(errors.size),
        "mae_ms": round(float(errors.mean()) * 1000, 1),
        "median_ms": round(float(np.median(errors)) * 1000, 1),
        "within_20ms": round(float((errors <= 0.020).mean()), 3),
        "within_50ms": round(float((errors <= 0.050).mean()), 3),
    }


def true_word_times(item: dict) -> list[tuple[float, float]]:
    """Word (start, end) times from the corpus JSON next to the wav."""
    words = json.loads(Path(item["wav"]).with_suffix(".json").read_text(encoding="utf-8"))["words"]
    return [(w["start"], w["end"]) for w in words]


def with_babble(samples: np.ndarray, snr_db: float, talkers: list[np.ndarray], seed: int) -> np.ndarray:
    """``samples`` plus babble of ``talkers`` at ``snr_db`` (powers over the utterance), the same for a given seed."""
    from sgpa.corpus.augment import make_babble, mix_at_snr

    babble = make_babble(talkers, len(samples), np.random.default_rng([seed, 10_007]))
    return mix_at_snr(samples, babble, snr_db).astype(np.float32)


def evaluate(
    acoustic_model, items: list[dict], boundaries: bool, align_options: dict | None = None,
    babble: tuple[float, list[np.ndarray]] | None = None,
) -> tuple[dict[str, dict], list[dict]]:
    """CER (and boundary errors) per group, and the per-utterance decodes. ``babble``: (SNR in dB, talkers) to add
    to every utterance first."""
    from sgpa.corpus.real import load_16k

    characters = acoustic_model.characters
    rows = []
    for index, item in enumerate(items):
        samples = load_16k(Path(item["wav"]))
        if babble is not None:
            samples = with_babble(samples, babble[0], babble[1], index)
        reference = spelled_reference(item["text"], characters)
        hypothesis = transcribe(acoustic_model, samples)
        row = {**item, "reference": reference, "hypothesis": hypothesis}
        if boundaries:
            truth = true_word_times(item)
            if len(truth) == len(item["text"].split()):
                row["boundary_errors_s"] = alignment_errors(acoustic_model, samples, item["text"], truth, align_options or {})
        rows.append(row)
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    groups["overall"] = rows
    summary = {group: figures(members) for group, members in sorted(groups.items())}
    return summary, rows


def figures(rows: list[dict]) -> dict:
    """CER and, where aligned, raw / refined boundary-error statistics of ``rows``."""
    result = {
        "utterances": len(rows),
        "cer": round(character_error_rate([r["reference"] for r in rows], [r["hypothesis"] for r in rows]), 4),
    }
    aligned = [r["boundary_errors_s"] for r in rows if "boundary_errors_s" in r]
    if aligned:
        result["aligned_utterances"] = len(aligned)
        for kind in ("raw", "refined"):
            result[kind] = error_summary([e for errors in aligned for e in errors[kind]])
        # errors[kind] is [first start, cut 1, ..., cut n-1, last end]: split the cuts from the outer edges.
        interior = [e for errors in aligned for e in errors["refined"][1:-1]]
        if interior:
            result["refined_interior"] = error_summary(interior)
        result["refined_edges"] = error_summary([e for errors in aligned for e in (errors["refined"][0], errors["refined"][-1])])
        result["refined_start_end"] = error_summary([e for errors in aligned for e in errors["refined_start_end"]])
        # the "no utterance's mean error above 100 ms": each utterance's own mean, both conventions
        for kind in ("refined", "refined_start_end"):
            means_ms = [1000 * float(np.mean(errors[kind])) for errors in aligned]
            result[kind]["worst_utterance_mae_ms"] = round(max(means_ms), 1)
            result[kind]["utterances_above_100ms"] = int(sum(m > 100 for m in means_ms))
    return result


def to_markdown(result: dict) -> str:
    lines = [
        "# CTC model accuracy: greedy CER and word-boundary error of `sgpa align`",
        "",
        f"Model `{result['model']}` (revision {result['revision']}); command: `{result['command']}`; "
        f"machine: {result['machine']}; {result['seconds']:.0f} s."
        + (f" Synthetic speech mixed with babble at {result['babble_snr_db']:g} dB SNR." if "babble_snr_db" in result else "")
        + (" **Training voices (a dev set), not held-out ones.**" if result.get("split", "heldout") != "heldout" else ""),
        "Boundary error: distance of each cut to the true inter-word gap, plus first start / last end "
        "(see the script's docstring). Truth: exact synthesis times (synthetic), pocketsphinx (real).",
        "",
        "| set | utts | CER | raw MAE ms | raw ≤20 ms | refined MAE ms | refined median ms | refined ≤20 ms | boundaries "
        "| refined MAE ms: cuts between words / first start + last end | word start/end MAE ms (FA-Bench) "
        "| worst utterance's MAE ms: gap / FA-Bench | utterances above 100 ms: gap / FA-Bench |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in (f"synthetic_{result.get('split', 'heldout')}", "real"):
        for group, fig in result.get(name, {}).items():
            label = f"**{name} overall**" if group == "overall" else group
            raw, refined = fig.get("raw"), fig.get("refined")
            cells = [label, str(fig["utterances"]), f"{fig['cer']:.3f}"]
            if raw and refined:
                cells += [
                    f"{raw['mae_ms']:.1f}",
                    f"{raw['within_20ms']:.0%}",
                    f"{refined['mae_ms']:.1f}",
                    f"{refined['median_ms']:.1f}",
                    f"{refined['within_20ms']:.0%}",
                    str(refined["boundaries"]),
                ]
                interior = fig.get("refined_interior")
                cells.append(f"{interior['mae_ms'] if interior else float('nan'):.1f} / {fig['refined_edges']['mae_ms']:.1f}")
                cells.append(f"{fig['refined_start_end']['mae_ms']:.1f}")
                cells.append(f"{refined['worst_utterance_mae_ms']:.1f} / {fig['refined_start_end']['worst_utterance_mae_ms']:.1f}")
                cells.append(f"{refined['utterances_above_100ms']} / {fig['refined_start_end']['utterances_above_100ms']}")
            else:
                cells += ["–"] * 10
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Examples (reference → hypothesis):", ""]
    for example in result["examples"]:
        lines.append(f"- {example['group']}: `{example['reference']}` → `{example['hypothesis']}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="CTC model directory or hub id (default: the shipped model)")
    parser.add_argument("--corpus", default="work_data/corpus", help="corpus folder with held-out voices")
    parser.add_argument("--per-voice", type=int, default=40, help="held-out utterances per voice / real source")
    parser.add_argument("--no-boundaries", action="store_true", help="only decode (skip sgpa align)")
    parser.add_argument("--out", default=str(RESULTS / "ctc_accuracy"), help="output path without extension")
    parser.add_argument("--interior-cut", default=None, help="sgpa align's interior_cut (default: its default)")
    parser.add_argument("--offset-extension-s", type=float, default=None, help="stage 2's offset_extension_s")
    parser.add_argument("--speech-detector", default=None, help="energy or silero (default: sgpa align's)")
    parser.add_argument("--min-pause-s", type=float, default=None, help="stage 3's min_pause_s (0: no pauses)")
    parser.add_argument("--split", default="heldout",
                        help="which utterances: heldout (voices never trained on) or train (a dev set of training "
                             "voices, for choosing parameters without looking at the held-out ones)")
    parser.add_argument("--babble-snr-db", type=float, default=None,
                        help="add babble of training voices to the synthetic held-out speech at this SNR")
    args = parser.parse_args(argv)
    align_options = {}
    if args.interior_cut is not None:
        align_options["interior_cut"] = args.interior_cut
    if args.offset_extension_s is not None:
        align_options["offset_extension_s"] = args.offset_extension_s
    if args.speech_detector is not None:
        align_options["speech_detector"] = args.speech_detector
    if args.min_pause_s is not None:
        align_options["min_pause_s"] = args.min_pause_s

    import torch

    from sgpa.ctc import load_ctc_model

    torch.set_num_threads(2)
    started = time.time()
    acoustic_model = load_ctc_model(args.model)
    result = {
        "model": acoustic_model.name,
        "revision": acoustic_model.revision,
        "command": "python benchmarks/ctc_accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads (2-core shared machine)",
        "split": args.split,
    }
    examples = []
    synthetic, real = heldout_items(Path(args.corpus), args.per_voice, args.split)
    babble = None
    if args.babble_snr_db is not None:
        from sgpa.corpus.generate import babble_bank

        babble = (args.babble_snr_db, babble_bank(seed=0))
        result["babble_snr_db"] = args.babble_snr_db
    for name, items in ((f"synthetic_{args.split}", synthetic), ("real", real)):
        if not items:
            continue
        groups, rows = evaluate(acoustic_model, items, boundaries=not args.no_boundaries, align_options=align_options,
                                babble=babble if name != "real" else None)
        result[name] = groups
        seen = {"overall"}
        for row in rows:
            if row["group"] not in seen:
                seen.add(row["group"])
                examples.append({k: row[k] for k in ("group", "id", "reference", "hypothesis")})
    result["examples"] = examples
    result["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
