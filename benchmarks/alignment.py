"""Word-boundary accuracy and speed of the SGPA alignment pipeline.

Two measurements, written as JSON + markdown to ``benchmarks/results/``:

1. **Refinement (stage 2) tuned on simulated CTC spans.** Until a trained CTC model exists, raw
   CTC spans are simulated from exact word times (festival and flite speech): each word's span
   starts a little late and ends early (CTC spans are peaky), plus Gaussian jitter of tens of ms,
   quantised to 20 ms frames. Padding, alpha and the acceptance ratio are grid-searched on a dev
   set; the chosen values are evaluated on held-out synthetic speech and on real recorded speech
   (pocketsphinx-testdata LibriVox clips, pocketsphinx alignment as a silver reference). Errors are
   measured against the reference word times, never against spectral flux.
2. **The whole pipeline with a CTC model** (``--model DIR|hub-id``, or ``random-base``: a
   base-size Wav2Vec2ForCTC with random weights, for timing only): raw CTC cuts vs final cuts, the
   fallback rate, and the real-time factor split into model forward and the four stages.

Boundary error of a tiled cut: distance from the cut to the true inter-word gap
``[end_i, start_{i+1}]`` (0 inside it); for the first start and last end, distance to the true
speech onset / offset.

    .venv/bin/python benchmarks/alignment.py                      # simulation + tuning only
    .venv/bin/python benchmarks/alignment.py --model random-base  # + pipeline timing
    .venv/bin/python benchmarks/alignment.py --model sgpa/models/sgpa-ctc-en --skip-tuning
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpa.metrics import boundary_errors_s  # noqa: E402
from sgpa.refine import RefinementParameters, refine_boundaries  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FRAME_S = 0.02
GRID = {
    "padding_s": [0.01, 0.02, 0.04, 0.06, 0.08],
    "alpha": [0.5, 0.65, 0.8, 0.9, 1.0],
    "accept_ratio": [0.05, 0.1, 0.2, 0.3, 0.5],
}
EDGE_PADDINGS = [0.05, 0.1, 0.15, 0.2, 0.3]


@dataclass
class Reference:
    """One utterance with reference word times (exact for TTS, silver for real speech)."""

    id: str
    samples: np.ndarray
    sample_rate: int
    text: str
    starts: np.ndarray
    ends: np.ndarray
    source: str

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


# ----------------------------------------------------------------------------- corpora


def synthetic_corpus(n_sentences: int, seed: int, split: str) -> list[Reference]:
    """Festival (slt) and flite (kal16, awb) speech of the same sentences, exact word times."""
    from sgpa.corpus import festival, flite
    from sgpa.corpus.sentences import make_sentences

    sentences = make_sentences(n_sentences, seed)
    corpus = []
    for engine, voice, synthesize in (
        ("festival", "slt", lambda texts: festival.synthesize(texts)),
        ("flite", "kal16", lambda texts: flite.synthesize(texts, "kal16")),
        ("flite", "awb", lambda texts: flite.synthesize(texts, "awb")),
    ):
        for number, utterance in enumerate(synthesize(sentences)):
            if utterance is None or utterance.sample_rate != 16000:
                continue
            corpus.append(reference(utterance, f"{split}-{engine}-{voice}-{number:03d}", f"{engine}/{voice}"))
    return corpus


def reference(utterance, id: str, source: str) -> Reference:
    """A :class:`Reference` from a corpus utterance with known word times."""
    return Reference(
        id=id,
        samples=utterance.samples,
        sample_rate=utterance.sample_rate,
        text=utterance.text,
        starts=np.array([w.start for w in utterance.words]),
        ends=np.array([w.end for w in utterance.words]),
        source=source,
    )


def real_corpus() -> list[Reference]:
    """pocketsphinx-testdata LibriVox + cards clips with pocketsphinx word times (silver)."""
    from sgpa.corpus.real import load_recording, make_aligner, testdata_clips

    decoder = make_aligner()
    corpus = []
    for recording in testdata_clips():
        utterance = load_recording(recording, decoder)
        if utterance is None:
            continue
        corpus.append(reference(utterance, recording.id, f"real/{recording.source}"))
    return corpus


# ----------------------------------------------------------------------------- metrics


def summarise(errors_s: np.ndarray) -> dict[str, float]:
    errors_ms = 1000 * np.asarray(errors_s)
    return {
        "n": int(errors_ms.size),
        "mean_ms": round(float(errors_ms.mean()), 2),
        "median_ms": round(float(np.median(errors_ms)), 2),
        "p90_ms": round(float(np.percentile(errors_ms, 90)), 2),
        "within_20ms": round(float(np.mean(errors_ms <= 20)), 4),
        "within_50ms": round(float(np.mean(errors_ms <= 50)), 4),
    }


# ----------------------------------------------------------------------------- simulation


def simulate_ctc_spans(
    reference: Reference, rng: np.random.Generator, jitter_s: float
) -> list[tuple[float, float]]:
    """CTC-like raw word spans: late by U(0, 30) ms, ending U(0, 80) ms early, N(0, jitter) noise,
    on a 20 ms frame grid, in order, at least one frame long."""
    starts = reference.starts + rng.uniform(0, 0.03, reference.starts.size) + rng.normal(0, jitter_s, reference.starts.size)
    ends = reference.ends - rng.uniform(0, 0.08, reference.ends.size) + rng.normal(0, jitter_s, reference.ends.size)
    starts = np.round(np.clip(starts, 0, reference.duration_s) / FRAME_S) * FRAME_S
    ends = np.round(np.clip(ends, 0, reference.duration_s) / FRAME_S) * FRAME_S
    spans = []
    previous_end = 0.0
    for start, end in zip(starts, ends):
        start = max(start, previous_end)
        end = max(end, start + FRAME_S)
        spans.append((float(start), float(end)))
        previous_end = end
    return spans


def raw_cuts_s(spans: list[tuple[float, float]]) -> np.ndarray:
    """Cuts without refinement: raw edges outside, raw gap midpoints inside."""
    cuts = [spans[0][0]]
    cuts += [(left[1] + right[0]) / 2 for left, right in zip(spans, spans[1:])]
    cuts.append(spans[-1][1])
    return np.array(cuts)


def evaluate_refinement(
    corpus: list[Reference], simulated: dict[str, list], parameters: RefinementParameters
) -> dict:
    raw_errors, refined_errors = [], []
    n_interior, n_fallback = 0, 0
    for reference in corpus:
        spans = simulated[reference.id]
        cuts, refined = refine_boundaries(reference.samples, reference.sample_rate, spans, parameters)
        raw_errors.append(boundary_errors_s(raw_cuts_s(spans), reference.starts, reference.ends))
        refined_errors.append(boundary_errors_s(cuts, reference.starts, reference.ends))
        n_interior += refined.size - 2
        n_fallback += int(np.count_nonzero(~refined[1:-1]))
    raw, final = np.concatenate(raw_errors), np.concatenate(refined_errors)
    interior = np.concatenate([e[1:-1] for e in refined_errors])
    raw_interior = np.concatenate([e[1:-1] for e in raw_errors])
    return {
        "raw": summarise(raw),
        "refined": summarise(final),
        "raw_interior": summarise(raw_interior),
        "refined_interior": summarise(interior),
        "fallback_rate": round(n_fallback / max(n_interior, 1), 4),
    }


def tune(dev: list[Reference], simulated: dict[str, list]) -> tuple[RefinementParameters, list[dict]]:
    """Grid search minimising the mean boundary error on ``dev``; then the edge padding alone.

    The interior search is switched on here (``refine_interior=True``) so that the tables compare searched cuts
    with the raw gap midpoints; the package's default leaves interior cuts to stage 1.
    """
    table = []
    best, best_error = None, np.inf
    for padding, alpha, ratio in itertools.product(GRID["padding_s"], GRID["alpha"], GRID["accept_ratio"]):
        parameters = RefinementParameters(padding_s=padding, alpha=alpha, accept_ratio=ratio, refine_interior=True)
        result = evaluate_refinement(dev, simulated, parameters)
        row = {"padding_s": padding, "alpha": alpha, "accept_ratio": ratio,
               "mean_ms": result["refined"]["mean_ms"], "interior_mean_ms": result["refined_interior"]["mean_ms"],
               "fallback_rate": result["fallback_rate"]}
        table.append(row)
        if result["refined"]["mean_ms"] < best_error:
            best, best_error = parameters, result["refined"]["mean_ms"]
    for edge in EDGE_PADDINGS:
        candidate = RefinementParameters(
            best.padding_s, best.alpha, best.accept_ratio, edge_padding_s=edge, refine_interior=True
        )
        error = evaluate_refinement(dev, simulated, candidate)["refined"]["mean_ms"]
        table.append({"padding_s": best.padding_s, "alpha": best.alpha, "accept_ratio": best.accept_ratio,
                      "edge_padding_s": edge, "mean_ms": error})
        if error < best_error:
            best, best_error = candidate, error
    return best, table


# ----------------------------------------------------------------------------- pipeline


def random_base_model(directory: Path) -> Path:
    """A wav2vec2-base-sized Wav2Vec2ForCTC with random weights (timing only) and a 960h-like vocabulary."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(vocab), pad_token_id=0)).save_pretrained(directory)
    return directory


def model_spans(corpus: list[Reference], acoustic_model) -> dict[str, list[tuple[float, float]]]:
    """Raw word spans from the model's own stage 1 (for tuning stage 2 on real CTC behaviour)."""
    from sgpa.audio import resample
    from sgpa.ctc import align_characters, compute_emissions, label_sequence
    from sgpa.errors import InputError
    from sgpa.text import normalize_transcript
    from sgpa.word_spans import raw_word_spans

    spans = {}
    for reference in corpus:
        waveform = resample(reference.samples, reference.sample_rate, acoustic_model.sample_rate)
        words = normalize_transcript(reference.text, acoustic_model.characters)
        labels, owners = label_sequence(words, acoustic_model.vocabulary, acoustic_model.word_delimiter)
        try:
            characters = align_characters(compute_emissions(acoustic_model, waveform), labels, owners,
                                          acoustic_model.blank_id, acoustic_model.frame_duration_s)
        except InputError:
            continue
        raw = raw_word_spans(characters, len(words), reference.duration_s)
        if len(raw) == reference.starts.size:
            spans[reference.id] = [(span.start_s, span.end_s) for span in raw]
    return spans


def evaluate_pipeline(corpus: list[Reference], acoustic_model, parameters: RefinementParameters) -> dict:
    from sgpa.errors import InputError
    from sgpa.pipeline import align_timed

    raw_errors, final_errors, fallback_rates = [], [], []
    totals = {key: 0.0 for key in ("forward_s", "stage1_s", "stage2_s", "stage3_s", "stage4_s")}
    audio_s, failures = 0.0, []
    for reference in corpus:
        try:
            segmentation, timings = align_timed(
                reference.samples, reference.text, acoustic_model, sample_rate=reference.sample_rate,
                padding_s=parameters.padding_s, alpha=parameters.alpha, accept_ratio=parameters.accept_ratio,
                edge_padding_s=parameters.edge_padding_s,
            )
        except InputError as error:
            failures.append(f"{reference.id}: {error}")
            continue
        words = segmentation.words
        if len(words) != reference.starts.size:
            failures.append(f"{reference.id}: {len(words)} words vs {reference.starts.size} reference words")
            continue
        raw = raw_cuts_s([(w.ctc_start, w.ctc_end) for w in words])
        final = np.array([w.start for w in words] + [words[-1].end])
        raw_errors.append(boundary_errors_s(raw, reference.starts, reference.ends))
        final_errors.append(boundary_errors_s(final, reference.starts, reference.ends))
        fallback_rates.append(segmentation.quality.refinement_fallback_rate)
        for key in totals:
            totals[key] += timings[key]
        audio_s += reference.duration_s
    stages_s = sum(totals[f"stage{i}_s"] for i in range(1, 5))
    result = {"n_utterances": len(final_errors), "failures": failures}
    if final_errors:
        result.update({
            "raw_ctc": summarise(np.concatenate(raw_errors)),
            "final": summarise(np.concatenate(final_errors)),
            "fallback_rate": round(float(np.mean(fallback_rates)), 4),
            "audio_s": round(audio_s, 2),
            "rtf_forward": round(totals["forward_s"] / audio_s, 5),
            "rtf_stages": {f"stage{i}": round(totals[f"stage{i}_s"] / audio_s, 6) for i in range(1, 5)},
            "stages_over_forward": round(stages_s / totals["forward_s"], 4),
        })
    return result


def long_audio_stage1(minutes: float) -> dict:
    """Time and peak memory of forced alignment on ``minutes`` of emissions (random, 20 ms frames,
    15 characters per second): the checkpointed Viterbi that long inputs use."""
    import tracemalloc

    from sgpa.ctc import MAX_TRELLIS_CELLS, align_characters

    rng = np.random.default_rng(0)
    n_frames = int(minutes * 60 / FRAME_S)
    labels = rng.integers(1, 32, size=int(minutes * 60 * 15))
    log_probs = np.log(rng.dirichlet(np.ones(32), size=n_frames)).astype(np.float32)
    cells = n_frames * (2 * labels.size + 1)
    align_characters(log_probs[:50], labels[:10], np.zeros(10, dtype=int), 0, FRAME_S)  # imports, warm-up
    started = time.perf_counter()
    align_characters(log_probs, labels, np.zeros_like(labels), 0, FRAME_S)
    seconds = time.perf_counter() - started
    tracemalloc.start()  # a second run for memory: tracing slows numpy down
    align_characters(log_probs, labels, np.zeros_like(labels), 0, FRAME_S)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"minutes": minutes, "n_frames": n_frames, "n_labels": int(labels.size),
            "checkpointed": cells > MAX_TRELLIS_CELLS, "seconds": round(seconds, 2),
            "peak_mib": round(peak / 2**20, 1), "full_trellis_backpointers_mib": round(cells / 2**20, 1)}


# ----------------------------------------------------------------------------- report


def markdown(report: dict) -> str:
    lines = ["# Alignment benchmark", "", f"Machine: {report['machine']}. Command: `{report['command']}`.", ""]
    def metric_row(name: str, m: dict) -> str:
        return (f"| {name} | {m['n']} | {m['mean_ms']} | {m['median_ms']} | {m['p90_ms']} | "
                f"{100 * m['within_20ms']:.1f}% | {100 * m['within_50ms']:.1f}% |")
    header = ["| boundaries | n | mean ms | median ms | p90 ms | ≤ 20 ms | ≤ 50 ms |", "|---|---|---|---|---|---|---|"]
    if "refinement" in report:
        refinement = report["refinement"]
        chosen = refinement["chosen"]
        lines += ["## Stage 2 on simulated CTC spans", "",
                  f"Simulation: {refinement['simulation']}", "",
                  f"Chosen on the dev set ({refinement['n_dev']} utterances): padding {chosen['padding_s'] * 1000:g} ms, "
                  f"alpha {chosen['alpha']}, accept_ratio {chosen['accept_ratio']}, edge padding "
                  f"{chosen['edge_padding_s'] * 1000:g} ms.", ""]
        for name, result in refinement["evaluation"].items():
            lines += [f"### {name} (fallback rate {100 * result['fallback_rate']:.1f}%)", "", *header,
                      metric_row("raw (gap midpoints)", result["raw"]),
                      metric_row("refined", result["refined"]),
                      metric_row("raw, interior cuts", result["raw_interior"]),
                      metric_row("refined, interior cuts", result["refined_interior"]), ""]
        lines += ["### Sensitivity on dev (mean error, ms; accept_ratio as chosen)", ""]
        alphas = GRID["alpha"]
        lines += ["| padding \\ alpha | " + " | ".join(str(a) for a in alphas) + " |",
                  "|---|" + "---|" * len(alphas)]
        for padding in GRID["padding_s"]:
            cells = []
            for alpha in alphas:
                match = [r for r in refinement["grid"] if r.get("padding_s") == padding and r.get("alpha") == alpha
                         and r.get("accept_ratio") == chosen["accept_ratio"] and "edge_padding_s" not in r]
                cells.append(f"{match[0]['mean_ms']:.1f}" if match else "")
            lines.append(f"| {padding * 1000:g} ms | " + " | ".join(cells) + " |")
        ratios = [r for r in refinement["grid"] if r.get("padding_s") == chosen["padding_s"]
                  and r.get("alpha") == chosen["alpha"] and "edge_padding_s" not in r]
        lines += ["", "| accept_ratio | mean ms | fallback |", "|---|---|---|"]
        lines += [f"| {r['accept_ratio']} | {r['mean_ms']:.1f} | {100 * r['fallback_rate']:.1f}% |" for r in ratios]
        lines.append("")
    if "pipeline" in report:
        lines += [f"## Whole pipeline with model `{report['pipeline']['model']}`", "",
                  report["pipeline"].get("note", ""), ""]
        for name, result in report["pipeline"]["evaluation"].items():
            if "final" not in result:
                lines += [f"### {name}: no utterance aligned", ""]
                continue
            stages = result["rtf_stages"]
            lines += [f"### {name} ({result['n_utterances']} utterances, {result['audio_s']} s of audio)", "",
                      *header, metric_row("raw CTC", result["raw_ctc"]), metric_row("final", result["final"]), "",
                      f"Fallback rate {100 * result['fallback_rate']:.1f}%. Real-time factor: forward "
                      f"{result['rtf_forward']:.4f}; stages 1–4: {stages['stage1']:.5f}, {stages['stage2']:.5f}, "
                      f"{stages['stage3']:.6f}, {stages['stage4']:.6f}; stages / forward = "
                      f"{100 * result['stages_over_forward']:.1f}%.", ""]
            if result["failures"]:
                lines += [f"Failures: {len(result['failures'])} (first: {result['failures'][0]})", ""]
    if "long_audio_stage1" in report:
        long = report["long_audio_stage1"]
        lines += ["## Long audio, stage 1", "",
                  f"{long['minutes']:g} min of emissions ({long['n_frames']} frames × {long['n_labels']} labels): "
                  f"forced alignment {'(checkpointed Viterbi) ' if long['checkpointed'] else ''}took "
                  f"{long['seconds']} s with a peak of {long['peak_mib']} MiB traced memory; the full trellis's "
                  f"back-pointers alone would take {long['full_trellis_backpointers_mib']} MiB.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="CTC model directory or hub id, or 'random-base' (timing only)")
    parser.add_argument("--n-sentences", type=int, default=12, help="sentences per split (x3 voices)")
    parser.add_argument("--skip-tuning", action="store_true", help="use the package defaults, no grid search")
    parser.add_argument("--tune-on-model", action="store_true",
                        help="tune stage 2 on the --model's own raw CTC spans instead of simulated ones")
    parser.add_argument("--jitter-ms", type=float, default=25.0, help="Gaussian jitter of simulated CTC edges")
    parser.add_argument("--name", default="alignment", help="results file stem")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long-minutes", type=float, default=10.0,
                        help="also time stage 1 on this many minutes of emissions (0: skip)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    report: dict = {
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads, {platform.python_version()}",
        "command": "python benchmarks/alignment.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    started = time.perf_counter()
    dev = synthetic_corpus(args.n_sentences, seed=101, split="dev")
    test = synthetic_corpus(args.n_sentences, seed=202, split="test")
    real = real_corpus()
    print(f"corpora: dev {len(dev)}, test {len(test)}, real {len(real)} utterances", file=sys.stderr)

    rng = np.random.default_rng(0)
    jitter = args.jitter_ms / 1000
    simulated = {ref.id: simulate_ctc_spans(ref, rng, jitter) for ref in dev + test + real}
    simulation = (f"raw word spans start U(0,30) ms late, end U(0,80) ms early, N(0,{args.jitter_ms:g} ms) "
                  "jitter on both edges, quantised to 20 ms frames")
    acoustic_model = None
    if args.model and args.model != "random-base":
        from sgpa.ctc import load_ctc_model

        acoustic_model = load_ctc_model(args.model)
    if args.tune_on_model and acoustic_model is not None:
        simulated = model_spans(dev + test + real, acoustic_model)
        simulation = f"raw word spans from the model {args.model} (stage 1), not simulated"
        dev, test, real = ([r for r in part if r.id in simulated] for part in (dev, test, real))
    if args.skip_tuning:
        chosen, grid = RefinementParameters(), []
    else:
        chosen, grid = tune(dev, simulated)
    wide = {ref.id: simulate_ctc_spans(ref, rng, 2 * jitter) for ref in test + real}
    report["refinement"] = {
        "simulation": simulation,
        "n_dev": len(dev),
        "chosen": chosen.to_dict(),
        "defaults_in_package": RefinementParameters().to_dict(),
        "evaluation": {
            "dev (synthetic)": evaluate_refinement(dev, simulated, chosen),
            "test (synthetic, held out)": evaluate_refinement(test, simulated, chosen),
            "real speech (silver: pocketsphinx)": evaluate_refinement(real, simulated, chosen),
            "package defaults, test (synthetic)": evaluate_refinement(test, simulated, RefinementParameters()),
            "package defaults, real speech": evaluate_refinement(real, simulated, RefinementParameters()),
            f"test, simulated jitter {2 * args.jitter_ms:g} ms": evaluate_refinement(test, wide, chosen),
            f"real, simulated jitter {2 * args.jitter_ms:g} ms": evaluate_refinement(real, wide, chosen),
        },
        "grid": grid,
    }
    print(f"chosen: {chosen}", file=sys.stderr)

    if args.model:
        from sgpa.ctc import load_ctc_model

        with tempfile.TemporaryDirectory() as scratch:
            note = ""
            if args.model == "random-base":
                note = ("Random weights at wav2vec2-base size (94 M parameters): the timings are real, the "
                        "boundary errors are meaningless.")
                acoustic_model = load_ctc_model(random_base_model(Path(scratch)))
            report["pipeline"] = {
                "model": str(args.model),
                "note": note,
                "frame_duration_s": acoustic_model.frame_duration_s,
                "parameters": chosen.to_dict(),
                "evaluation": {
                    "test (synthetic)": evaluate_pipeline(test, acoustic_model, chosen),
                    "real speech (silver)": evaluate_pipeline(real, acoustic_model, chosen),
                },
            }
    if args.long_minutes > 0:
        report["long_audio_stage1"] = long_audio_stage1(args.long_minutes)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
