"""Per-evaluation time of the Whisper, Qwen2-Audio and Voxtral backends: embedding vs waveform masking, batched vs one at a
time, on tiny random models; and on full-size architectures with random weights where memory allows.

The utterance is data_samples/slt_task_0000.wav (1.6 s, 5 words, aligned with the shipped model onto each model's
grid). A cell times ``--coalitions`` random coalitions through the prepared game (the reference response is
generated once, outside the timing): batched = the backend's batch size, one at a time = batch size 1. For the
full-size architecture the exact explanation time of a 4 s utterance (about 10 words, 2^10 evaluations) is
extrapolated from the per-evaluation time. Writes benchmarks/results/hf_backends.{json,md}.

    python benchmarks/hf_backends.py                    # tiny models
    python benchmarks/hf_backends.py --full-size        # + whisper-large-v3's architecture (6 GB of RAM)

On a GPU machine (the full-size timing the README still lacks; Qwen2-Audio-7B needs 17 GB in bfloat16)::

    python benchmarks/hf_backends.py --full-size --full-size-voxtral --full-size-qwen2-audio --device cuda \
        --out benchmarks/results/hf_backends_gpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SAMPLE = ROOT / "data_samples" / "slt_task_0000"


def per_evaluation_seconds(backend, waveform, segmentation, masking: str, batch_size: int | None,
                           n_coalitions: int) -> dict:
    game = backend.prepare(waveform, segmentation, masking=masking, batch_size=batch_size)
    coalitions = np.random.default_rng(0).random((n_coalitions, game.n_players)) < 0.5
    game.log_probs(coalitions[:1])  # warm-up
    started = time.perf_counter()
    game.log_probs(coalitions)
    seconds = time.perf_counter() - started
    return {"masking": masking, "batch_size": game.batch_size, "coalitions": n_coalitions,
            "seconds_per_evaluation": seconds / n_coalitions, "response_tokens": len(game.response.token_ids)}


def time_backend(label: str, backend, grid: str, n_coalitions: int, batched_only: bool = False) -> list[dict]:
    import sgpa
    from sgpa.api import read_waveform

    waveform, _ = read_waveform(SAMPLE.with_suffix(".wav"))
    segmentation = sgpa.align(waveform, SAMPLE.with_suffix(".txt").read_text().strip(), grid=grid, sample_rate=16000)
    rows = []
    for masking in ("embedding", "silence"):
        for batch_size in ((None,) if batched_only else (None, 1)):
            row = per_evaluation_seconds(backend, waveform, segmentation, masking, batch_size, n_coalitions)
            row.update(model=label, batched=batch_size is None)
            rows.append(row)
            print(row, file=sys.stderr)
    return rows


def time_full_size(label: str, backend, grid: str, n_coalitions: int, build_seconds: float,
                   notes: list[str], device: str = "cpu") -> list[dict]:
    """Time a full-size architecture (batched only) and note what an exact 10-word explanation would take."""
    if device != "cpu":
        from sgpa.attribution.models.base import with_gpu_memory_budget

        backend.model.to(device)
        backend.memory_budget_bytes = with_gpu_memory_budget({}, device)["memory_budget_bytes"]
    parameters = sum(p.numel() for p in backend.model.parameters()) / 1e9
    notes.append(f"{label}: built with random weights in {build_seconds:.0f} s ({parameters:.2f} B parameters); its "
                 f"random response is capped at {backend.max_new_tokens} tokens.")
    rows = time_backend(label, backend, grid, n_coalitions, batched_only=True)
    for row in rows:
        hours = 2**10 * row["seconds_per_evaluation"] / 3600
        notes.append(f"{label}, {row['masking']} masking: {row['seconds_per_evaluation']:.2f} s per evaluation; an exact "
                     f"explanation of a 4 s, 10-word utterance (1,024 evaluations) would take about {hours:.1f} h "
                     f"on this {'CPU' if device == 'cpu' else device}.")
    return rows


def markdown(results: dict) -> str:
    lines = ["# Whisper, Qwen2-Audio and Voxtral backends: time per model evaluation", "",
             f"Machine: {results['machine']}. Utterance: data_samples/slt_task_0000.wav (1.6 s, 5 words). "
             "Written by `benchmarks/hf_backends.py`.", "",
             "| model | masking | batch | coalitions | s / evaluation | response tokens |",
             "|---|---|---:|---:|---:|---:|"]
    for row in results["rows"]:
        lines.append(f"| {row['model']} | {row['masking']} | {row['batch_size']} | {row['coalitions']} | "
                     f"{row['seconds_per_evaluation']:.4f} | {row['response_tokens']} |")
    lines.append("")
    for model, ratios in results["ratios"].items():
        lines.append(f"- {model}: waveform / embedding masking {ratios['waveform_over_embedding']:.1f}x per "
                     f"evaluation; one at a time / batched {ratios['single_over_batched']:.1f}x (embedding masking).")
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from sgpa.attribution.models import load_backend
    from sgpa.attribution.models.hf_tiny import random_qwen2_audio, random_whisper, save_random_voxtral
    from sgpa.attribution.models.audio_llm import Qwen2AudioBackend
    from sgpa.attribution.models.whisper import WhisperBackend

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coalitions", type=int, default=32)
    parser.add_argument("--full-size", action="store_true", help="Also whisper-large-v3's architecture.")
    parser.add_argument("--full-size-coalitions", type=int, default=4)
    parser.add_argument("--full-size-voxtral", action="store_true",
                        help="Also Voxtral-Mini-3B's architecture in bfloat16 (10 GB of RAM).")
    parser.add_argument("--full-size-qwen2-audio", action="store_true",
                        help="Also Qwen2-Audio-7B's architecture in bfloat16 (17 GB: a GPU machine's).")
    parser.add_argument("--device", default="cpu", help="where the full-size models run (cpu, cuda)")
    parser.add_argument("--out", default=str(RESULTS / "hf_backends"), help="output path without extension")
    args = parser.parse_args(argv)
    rows = time_backend("whisper (tiny)", WhisperBackend(*random_whisper(), model_id="tiny"), "whisper",
                        args.coalitions)
    model, processor = random_qwen2_audio()
    rows += time_backend("qwen2-audio (tiny)", Qwen2AudioBackend(model, processor, model_id="tiny"), "qwen2-audio",
                         args.coalitions)
    with tempfile.TemporaryDirectory() as folder:  # Voxtral's tokenizer lives in a file
        voxtral = load_backend(save_random_voxtral(Path(folder) / "voxtral"))
        rows += time_backend("voxtral (tiny)", voxtral, "voxtral", args.coalitions)
    notes = []
    if args.full_size:
        started = time.perf_counter()
        backend = WhisperBackend(*random_whisper(full_size=True), model_id="whisper-large-v3 architecture",
                                 max_new_tokens=16)
        rows += time_full_size("whisper-large-v3 (random, fp32)", backend, "whisper", args.full_size_coalitions,
                               time.perf_counter() - started, notes, args.device)
        notes.append("Qwen2-Audio-7B's architecture (8.4 B parameters, 34 GB in float32) does not fit this machine's "
                     "23 GB of RAM; its full-size timing needs the GPU machine.")
        del backend
    if args.full_size_voxtral:
        import torch

        from sgpa.attribution.models.audio_llm import VoxtralBackend
        from sgpa.attribution.models.hf_tiny import random_voxtral

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            model, processor = random_voxtral(Path(folder), full_size=True, dtype=torch.bfloat16)
            backend = VoxtralBackend(model, processor, model_id="Voxtral-Mini-3B architecture", max_new_tokens=16)
            rows += time_full_size("voxtral-mini-3b (random, bf16)", backend, "voxtral", args.full_size_coalitions,
                                   time.perf_counter() - started, notes, args.device)
    if args.full_size_qwen2_audio:
        import torch

        started = time.perf_counter()
        model, processor = random_qwen2_audio(full_size=True)
        backend = Qwen2AudioBackend(model.to(torch.bfloat16), processor, model_id="Qwen2-Audio-7B architecture",
                                    max_new_tokens=16)
        rows += time_full_size("qwen2-audio-7b (random, bf16)", backend, "qwen2-audio", args.full_size_coalitions,
                               time.perf_counter() - started, notes, args.device)
    ratios = {}
    for model in dict.fromkeys(row["model"] for row in rows):
        cell = {(r["masking"], r["batched"]): r["seconds_per_evaluation"] for r in rows if r["model"] == model}
        if ("embedding", False) in cell:
            ratios[model] = {"waveform_over_embedding": cell[("silence", True)] / cell[("embedding", True)],
                             "single_over_batched": cell[("embedding", False)] / cell[("embedding", True)]}
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "rows": rows, "ratios": ratios, "notes": notes}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
