"""``sgpa align``: audio + transcript → word segments on a target model's token grid (JSON, TextGrid, PNG)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sgpa.cli.common import EXIT_BAD_INPUT, fail, output_folder, reports_input_errors
from sgpa.errors import InputError
from sgpa.io import write_together
from sgpa.manifest import ManifestEntry, read_manifest
from sgpa.pipeline import GRIDS, INTERIOR_CUTS, AlignConfig

_DEFAULTS = AlignConfig()

def collect_jobs(
    audio: tuple[Path, ...],
    transcript: str | None,
    transcript_file: Path | None,
    manifest: Path | None,
    allow_outside: bool = False,
) -> tuple[list[ManifestEntry], list[tuple[str, str]]]:
    """All inputs of one invocation, checked for clashes before any work starts, and the manifest rows that are
    unusable (``(where, message)``: each is one failure of the batch, not the end of it)."""
    if (transcript is not None or transcript_file is not None) and len(audio) != 1:
        raise InputError("--transcript and --transcript-file go with exactly one audio file; use a manifest for several")
    if transcript is not None and transcript_file is not None:
        raise InputError("give either --transcript or --transcript-file, not both")
    jobs = [
        ManifestEntry(audio=path, transcript=transcript, transcript_file=transcript_file or path.with_suffix(".txt"))
        for path in audio
    ]
    bad_rows: list[tuple[str, str]] = []
    if manifest is not None:
        entries, bad_rows = read_manifest(manifest, allow_outside=allow_outside)
        jobs.extend(entries)
    if not jobs and not bad_rows:
        raise InputError("no input: give audio files or --manifest")
    if not jobs:
        raise InputError(bad_rows[0][1] if len(bad_rows) == 1 else f"{manifest}: no usable row "
                         f"({len(bad_rows)} failed; the first: {bad_rows[0][1]})")
    stems = [job.audio.stem for job in jobs]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise InputError(f"several inputs would write the same output file: {', '.join(clashes)}")
    return jobs, bad_rows


def _without_prefix(message: str, prefix: str) -> str:
    return message[len(prefix) + 2 :] if message.startswith(prefix + ": ") else message


@click.command("align")
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path))
@click.option("-t", "--transcript", help="What is said in the (single) audio file.")
@click.option("--transcript-file", type=click.Path(path_type=Path),
              help="A text file with the transcript of the (single) audio file. Default: <audio stem>.txt beside it.")
@click.option("-m", "--manifest", type=click.Path(path_type=Path),
              help="JSONL ({\"audio\": ..., \"transcript\": ...} per line) or CSV (columns audio,transcript).")
@click.option("--model", default=None,
              help="CTC model: local directory or hub id. Default: the shipped sgpa-ctc-en model.")
@click.option("--grid", default=_DEFAULTS.grid, show_default=True,
              help=f"Target token grid: {', '.join(GRIDS)} (lfm2-audio 80 ms, whisper / wav2vec2 20 ms).")
@click.option("--token-duration-ms", type=float, help="Custom token duration in ms (overrides --grid).")
@click.option("--token-offset-ms", type=float, default=_DEFAULTS.token_offset_s * 1000, show_default=True,
              help="Start of the first token.")
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option("--format", "formats", type=click.Choice(["json", "textgrid"]), multiple=True, default=("json",),
              show_default=True, help="Output format; repeat for several.")
@click.option("--plot", is_flag=True, help="Also write <stem>.segments.png (waveform, spectrogram, boundaries).")
@click.option("--padding-ms", type=float, default=_DEFAULTS.padding_s * 1000, show_default=True,
              help="Refinement search padding around the raw gap.")
@click.option("--alpha", type=float, default=_DEFAULTS.alpha, show_default=True,
              help="Weight of energy (vs spectral flux) in the cut cost.")
@click.option("--accept-ratio", type=float, default=_DEFAULTS.accept_ratio, show_default=True,
              help="A cut is accepted if its energy is below this fraction of the neighbouring words' median energy.")
@click.option("--min-word-ms", type=float, default=_DEFAULTS.min_word_duration_s * 1000, show_default=True,
              help="Shortest word segment.")
@click.option("--max-players", type=int, default=None, help="Merge adjacent words into at most this many phrases.")
@click.option("--min-pause-ms", type=float, default=_DEFAULTS.min_pause_s * 1000, show_default=True,
              help="Quiet stretches between words at least this long become pause context (0: none).")
@click.option("--max-duration", type=float, default=_DEFAULTS.max_duration_s, show_default=True,
              help="Longest audio accepted (s).")
@click.option("--interior-cut", type=click.Choice(INTERIOR_CUTS), default=_DEFAULTS.interior_cut, show_default=True,
              help="A cut between words: centre of the CTC word delimiter between them, or midpoint of the gap "
                   "between their characters; auto = the delimiter for models trained to put it in the gap "
                   "(the shipped one), else the midpoint.")
@click.option("--refine-interior/--no-refine-interior", default=_DEFAULTS.refine_interior, show_default=True,
              help="Also move the cuts between words to energy dips (default: keep stage 1's cut, which measured closer).")
@click.option("--speech-detector", type=click.Choice(["energy", "silero"]), default=_DEFAULTS.speech_detector,
              show_default=True, help="What finds the speech for the gate and the pauses: an energy threshold or "
                                      "Silero VAD (offline; measured no better on the project's test speech).")
@click.option("--speech-gate/--no-speech-gate", default=_DEFAULTS.speech_gate, show_default=True,
              help="Allow no character before the energy onset or after the offset of the speech.")
@click.option("--allow-outside", is_flag=True,
              help="Let manifest rows name files outside the manifest's folder (refused by default).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@reports_input_errors
def align(
    audio: tuple[Path, ...],
    transcript: str | None,
    transcript_file: Path | None,
    manifest: Path | None,
    model: str | None,
    grid: str,
    token_duration_ms: float | None,
    token_offset_ms: float,
    output_dir: Path,
    formats: tuple[str, ...],
    plot: bool,
    padding_ms: float,
    alpha: float,
    accept_ratio: float,
    min_word_ms: float,
    max_players: int | None,
    min_pause_ms: float,
    max_duration: float,
    interior_cut: str,
    refine_interior: bool,
    speech_detector: str,
    speech_gate: bool,
    allow_outside: bool,
    quiet: bool,
) -> None:
    """Align AUDIO files with their transcripts and map the words onto a model's token grid.

    Writes <stem>.segments.json (and/or <stem>.TextGrid, <stem>.segments.png) per input into the
    output directory. A bad input is reported and skipped; the exit code is 2 if any input failed.
    """
    from tqdm import tqdm

    from sgpa.api import load_aligner

    jobs, bad_rows = collect_jobs(audio, transcript, transcript_file, manifest, allow_outside)
    config = AlignConfig(
        grid=grid if token_duration_ms is None else token_duration_ms / 1000,
        token_offset_s=token_offset_ms / 1000,
        padding_s=padding_ms / 1000,
        alpha=alpha,
        accept_ratio=accept_ratio,
        min_word_duration_s=min_word_ms / 1000,
        max_players=max_players,
        min_pause_s=min_pause_ms / 1000,
        max_duration_s=max_duration,
        interior_cut=interior_cut,
        refine_interior=refine_interior,
        speech_gate=speech_gate,
        speech_detector=speech_detector,
    ).validate()  # a bad setting is a usage error before the model loads
    if len(jobs) == 1 and not bad_rows and not jobs[0].audio.is_file():
        raise InputError(f"{jobs[0].audio}: no such audio file")  # no need to load the model first
    output_folder(output_dir)  # refused before the model loads, not after all the work
    acoustic_model = load_aligner(model)

    failures: list[tuple[str, str]] = list(bad_rows)
    for where, message in bad_rows:
        print(f"sgpa: error: {' '.join(message.split())}", file=sys.stderr)
    single = len(jobs) == 1 and not bad_rows
    progress = tqdm(jobs, file=sys.stderr, unit="file", disable=quiet or single, desc="sgpa align")
    for job in progress:
        try:
            _align_one(job, acoustic_model, config, output_dir, formats, plot)
        except InputError as error:
            message = _without_prefix(str(error), str(job.audio))
            if single:
                fail(f"{job.audio}: {message}")
            failures.append((str(job.audio), message))
            progress.write(f"sgpa: error: {job.audio}: {' '.join(message.split())}", file=sys.stderr)
    if failures:
        names = ", ".join(name for name, _ in failures)
        print(f"sgpa: error: {len(failures)} of {len(jobs) + len(bad_rows)} inputs failed: {names}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _align_one(
    job: ManifestEntry,
    acoustic_model,
    config: AlignConfig,
    output_dir: Path,
    formats: tuple[str, ...],
    plot: bool,
) -> None:
    """Align one input and write its outputs atomically (each file complete or absent)."""
    from sgpa.api import align as run_pipeline

    segmentation = run_pipeline(job.audio, job.read_transcript(), aligner=acoustic_model, config=config)
    for warning in segmentation.quality.warnings:
        print(f"sgpa: warning: {job.audio}: {warning}", file=sys.stderr)
    stem = job.audio.stem
    outputs = []
    if "json" in formats:
        text = segmentation.to_json() + "\n"
        outputs.append((output_dir / f"{stem}.segments.json", lambda tmp: tmp.write_text(text, encoding="utf-8")))
    if "textgrid" in formats:
        from sgpa.textgrid import save_textgrid

        outputs.append((output_dir / f"{stem}.TextGrid", lambda tmp: save_textgrid(segmentation, tmp)))
    if plot:
        from sgpa.plot import segmentation_figure

        figure = segmentation_figure(segmentation, segmentation.waveform())
        outputs.append((output_dir / f"{stem}.segments.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110)))
    write_together(outputs)  # the files of one input appear together or not at all
