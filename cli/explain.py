"""``sgpa explain``: word-level Shapley attributions of a model's answer about an utterance (JSON, PNG, shap)."""

from __future__ import annotations

from pathlib import Path

import click

from sgpa.cli.common import output_folder, reports_input_errors
from sgpa.io import write_together
from sgpa.errors import InputError

from sgpa.attribution.estimators import METHODS as ESTIMATORS
from sgpa.attribution.models import BACKENDS
from sgpa.attribution.models.base import DEFAULT_NORMALIZATION, NORMALIZATIONS


@click.command("explain")
@click.argument("audio_path", metavar="AUDIO", type=click.Path(path_type=Path))
@click.option("-t", "--transcript", help="What is said; the audio is aligned first (with the CTC model).")
@click.option("-s", "--segments", type=click.Path(path_type=Path), help="Segments JSON from `sgpa align`.")
@click.option("--model", default=None,
              help="Local folder or hub id (LFM2-Audio, Whisper, Qwen2-Audio, Voxtral, a CTC model). Default: the backend's "
                   "shipped model: the CTC recogniser sgpa-ctc-en, or with --backend lfm2-audio the oracle "
                   "sgpa-lfm2-oracle (answers spoken questions with known answers).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Model family. Default: detected from --model (ctc without --model).")
@click.option("--align-model", default=None,
              help="CTC model for --transcript alignment. Default: --model for the ctc backend, else the shipped one.")
@click.option("--prompt", default=None,
              help="Instruction for a chat model (LFM2-Audio: 'Perform ASR.'; Qwen2-Audio, Voxtral: 'Transcribe the "
                   "audio.'); for Whisper the task: transcribe (default) or translate, optionally with a language code.")
@click.option("--text-players", is_flag=True,
              help="Chat models (lfm2-audio, qwen2-audio, voxtral): the prompt's words are players too (joint audio + "
                   "text game; reports A-SHAP).")
@click.option("--estimator", type=click.Choice(ESTIMATORS), default="auto", show_default=True,
              help="auto = exact when 2^n fits the budget, else kernel (paired regression).")
@click.option("--budget", type=int, default=None, help="Most model evaluations. Default: 2^n up to 12 words, else 20 n.")
@click.option("--tolerance", type=float, default=None, help="Sampled estimators stop when every stderr is below it.")
@click.option("--masking", default=None,
              help="How absent words are removed: embedding, embedding-mean, encoder-input (lfm2-audio), silence, noise, "
                   "deletion; embedding (ctc: its SpecAugment mask vector). Default: encoder-input (lfm2-audio: it leaks "
                   "least, see the README), silence (ctc, whisper, qwen2-audio, voxtral).")
@click.option("--normalization", type=click.Choice(NORMALIZATIONS), default=DEFAULT_NORMALIZATION, show_default=True,
              help="Waveform maskings: normalise every coalition with the full utterance's statistics (frozen), or "
                   "let the model's front end normalise each masked input anew (per-input).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of sampled estimators and noise masking.")
@click.option("--max-new-tokens", type=int, default=32, show_default=True, help="Length cap of the reference response.")
@click.option("--batch-size", type=int, default=None, help="Coalitions per model call. Default: chosen from memory.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for the model (cpu, cuda).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
              help="Weights and activations of a chat or Whisper model (bfloat16 on a GPU; log-probs are taken in "
                   "float32).")
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
    normalization: str,
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
    from sgpa.api import explain as run_explanation
    from sgpa.api import load_aligner

    if (transcript is None) == (segments is None):
        raise InputError("give exactly one of --transcript and --segments")
    output_folder(output_dir)  # refused before the model loads, not after all the work
    explanation = run_explanation(
        audio_path, segments if segments is not None else transcript, model=model, backend=backend, prompt=prompt,
        masking=masking, normalization=normalization, estimator=estimator, budget=budget, tolerance=tolerance, seed=seed, batch_size=batch_size,
        text_players=text_players, device=device, dtype=dtype, max_new_tokens=max_new_tokens,
        aligner=load_aligner(align_model, device) if align_model is not None else None, progress=not quiet,
    )
    stem = audio_path.stem
    text = explanation.to_json() + "\n"
    outputs = [(output_dir / f"{stem}.explanation.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))]
    if not no_plot:
        figure = explanation.plot()
        outputs.append((output_dir / f"{stem}.explanation.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110)))
    if write_shap:
        outputs.append((output_dir / f"{stem}.shap.pkl", explanation.write_shap))
    written = write_together(outputs)  # JSON, PNG and shap appear together or not at all
    if not quiet:
        top = sorted(zip(explanation.phi_total, (p.name for p in explanation.players)), reverse=True)[:3]
        click.echo(
            f"{explanation.method} {explanation.index} over {explanation.n_players} words, "
            f"{explanation.cost.n_evaluations} evaluations in {explanation.cost.wall_seconds:.1f} s; "
            f"top: {', '.join(f'{name} {value:+.3f}' for value, name in top)}",
            err=True,
        )
        if explanation.method_reason and explanation.method != "exact":
            click.echo(f"auto picked {explanation.method}: {explanation.method_reason}", err=True)
        if explanation.model.get("backend") != "ctc":
            answer = explanation.response["text"].replace("<|im_end|>", "").strip()
            click.echo(f"answer to {explanation.prompt!r}: {answer!r}", err=True)
        if "audio_share" in explanation.details:
            click.echo(f"audio share (A-SHAP): {explanation.details['audio_share']:.3f}", err=True)
        for path in written:
            click.echo(str(path), err=True)
