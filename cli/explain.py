"""``sgpa explain``: word-level Shapley attributions of a model's answer about an utterance (JSON, PNG, shap)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.common import reports_input_errors
from sgpa.errors import InputError

BACKENDS = ("ctc", "lfm2-audio")
ESTIMATORS = ("auto", "exact", "permutation", "kernel", "loo", "banzhaf")


def detect_backend(model: str | None) -> str:
    """``lfm2-audio`` for an LFM2-Audio checkpoint (local ``config.json`` with an ``lfm`` section, or a hub id
    naming LFM2-Audio), ``ctc`` otherwise (including no model: the shipped CTC recogniser)."""
    if model is None:
        return "ctc"
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        try:
            return "lfm2-audio" if "lfm" in json.loads(config.read_text(encoding="utf-8")) else "ctc"
        except (OSError, json.JSONDecodeError):
            return "ctc"
    return "lfm2-audio" if "lfm2" in model.lower() and "audio" in model.lower() else "ctc"


def load_segments(path: Path, audio_info) -> object:
    """A Segmentation from JSON that must describe this very audio (same sha256 and duration)."""
    from sgpa.segmentation import Segmentation

    if not path.is_file():
        raise InputError(f"{path}: no such segments file")
    try:
        segmentation = Segmentation.load(path)
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not an sgpa segments file ({' '.join(str(error).split())[:200]})") from None
    if segmentation.audio.sha256 != audio_info.sha256:
        raise InputError(
            f"{path}: the segments were computed on different audio (sha256 {segmentation.audio.sha256[:12]}... "
            f"!= {audio_info.sha256[:12]}...)"
        )
    if abs(segmentation.audio.duration_s - audio_info.duration_s) > 0.01:
        raise InputError(
            f"{path}: the segments describe {segmentation.audio.duration_s:.3f} s of audio, the file has "
            f"{audio_info.duration_s:.3f} s"
        )
    return segmentation


def load_backend(backend: str, model: str | None, max_new_tokens: int, device: str, dtype: str = "float32"):
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    if backend == "ctc":
        from attribution.models.ctc import CtcBackend

        return CtcBackend.load(model)
    from attribution.models.lfm2_audio import Lfm2AudioBackend

    if model is None:
        raise InputError("the lfm2-audio backend needs --model (a local folder or a hub id such as LiquidAI/LFM2-Audio-1.5B)")
    return Lfm2AudioBackend.load(model, device=device, dtype=dtype, max_new_tokens=max_new_tokens)


@click.command("explain")
@click.argument("audio_path", metavar="AUDIO", type=click.Path(path_type=Path))
@click.option("-t", "--transcript", help="What is said; the audio is aligned first (with the CTC model).")
@click.option("-s", "--segments", type=click.Path(path_type=Path), help="Segments JSON from `sgpa align`.")
@click.option("--model", default=None,
              help="Local folder or hub id. Default: the shipped CTC recogniser (sgpa-ctc-en).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Model family. Default: detected from --model (ctc without --model).")
@click.option("--align-model", default=None,
              help="CTC model for --transcript alignment. Default: --model for the ctc backend, else the shipped one.")
@click.option("--prompt", default=None, help="Instruction for LFM2-Audio (system turn). Default: 'Perform ASR.'")
@click.option("--text-players", is_flag=True,
              help="lfm2-audio: the prompt's words are players too (joint audio + text game; reports A-SHAP).")
@click.option("--estimator", type=click.Choice(ESTIMATORS), default="auto", show_default=True,
              help="auto = exact when 2^n fits the budget, else kernel (paired regression).")
@click.option("--budget", type=int, default=None, help="Most model evaluations. Default: 2^n up to 12 words, else 20 n.")
@click.option("--tolerance", type=float, default=None, help="Sampled estimators stop when every stderr is below it.")
@click.option("--masking", default=None,
              help="How absent words are removed: embedding, embedding-mean (lfm2-audio), silence, noise, deletion; "
                   "embedding (ctc: its SpecAugment mask vector). Default: embedding (lfm2-audio), silence (ctc).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of sampled estimators and noise masking.")
@click.option("--max-new-tokens", type=int, default=32, show_default=True, help="Length cap of the reference response.")
@click.option("--batch-size", type=int, default=None, help="Coalitions per model call. Default: chosen from memory.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for LFM2-Audio (cpu, cuda).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
              help="Weights and activations of LFM2-Audio (bfloat16 on a GPU; log-probs are taken in float32).")
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option("--shap", "write_shap", is_flag=True, help="Also write <stem>.shap.pkl (a pickled shap.Explanation).")
@click.option("--no-plot", is_flag=True, help="Do not write <stem>.explanation.png.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@reports_input_errors
def explain(
    audio_path: Path,
    transcript: str | None,
    segments: Path | None,
    model: str | None,
    backend: str | None,
    align_model: str | None,
    prompt: str | None,
    text_players: bool,
    estimator: str,
    budget: int | None,
    tolerance: float | None,
    masking: str | None,
    seed: int,
    max_new_tokens: int,
    batch_size: int | None,
    device: str,
    dtype: str,
    output_dir: Path,
    write_shap: bool,
    no_plot: bool,
    quiet: bool,
) -> None:
    """Explain which spoken words of AUDIO a model's answer rests on, with word-level Shapley values.

    Writes <stem>.explanation.json and <stem>.explanation.png (and <stem>.shap.pkl with --shap) into the output
    directory. Give either --transcript (the audio is aligned first) or --segments (from `sgpa align`).
    """
    from attribution.explanation import explain as run_explanation
    from attribution.plots import save_explanation_plot
    from sgpa.audio import load_audio

    if (transcript is None) == (segments is None):
        raise InputError("give exactly one of --transcript and --segments")
    if budget is not None and budget < 2:
        raise InputError(f"budget {budget} is too small: an explanation needs at least the empty and full coalition")
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if max_new_tokens < 1:
        raise InputError("--max-new-tokens must be at least 1")
    backend = backend or detect_backend(model)
    waveform, audio_info = load_audio(audio_path, sample_rate=16000)
    if segments is not None:
        segmentation = load_segments(segments, audio_info)
    explainer = load_backend(backend, model, max_new_tokens, device, dtype)
    if transcript is not None:
        from sgpa.ctc import load_ctc_model
        from sgpa.pipeline import align

        if backend == "ctc" and align_model is None:
            acoustic_model = explainer.acoustic_model
        else:
            acoustic_model = load_ctc_model(align_model)
        segmentation = align(audio_path, transcript, acoustic_model, "lfm2-audio")

    explanation = run_explanation(
        explainer, waveform, segmentation, prompt=prompt, masking=masking, method=estimator, budget=budget,
        tolerance=tolerance, seed=seed, batch_size=batch_size, progress=not quiet, text_players=text_players,
    )
    explanation.parameters.update({"max_new_tokens": max_new_tokens if backend == "lfm2-audio" else None,
                                   "device": device, "dtype": dtype if backend == "lfm2-audio" else None,
                                   "segments": str(segments) if segments is not None else None})
    stem = audio_path.stem
    written = [explanation.save(output_dir / f"{stem}.explanation.json")]
    if not no_plot:
        written.append(save_explanation_plot(explanation, waveform, 16000, output_dir / f"{stem}.explanation.png"))
    if write_shap:
        written.append(explanation.save_shap(output_dir / f"{stem}.shap.pkl"))
    if not quiet:
        top = sorted(zip(explanation.phi_total, (p.name for p in explanation.players)), reverse=True)[:3]
        click.echo(
            f"{explanation.method} {explanation.index} over {explanation.n_players} words, "
            f"{explanation.cost.n_evaluations} evaluations in {explanation.cost.wall_seconds:.1f} s; "
            f"top: {', '.join(f'{name} {value:+.3f}' for value, name in top)}",
            err=True,
        )
        if "audio_share" in explanation.details:
            click.echo(f"audio share (A-SHAP): {explanation.details['audio_share']:.3f}", err=True)
        for path in written:
            click.echo(str(path), err=True)
