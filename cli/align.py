"""``sgpa align``: audio + transcript → word segments on a target model's token grid (JSON, TextGrid, PNG)."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from cli.common import EXIT_BAD_INPUT, fail, reports_input_errors
from sgpa.errors import InputError
from sgpa.refine import RefinementParameters

_DEFAULTS = RefinementParameters()

_AUDIO_KEYS = ("audio", "path", "audio_path", "file")
_TEXT_KEYS = ("text", "transcript")


@dataclass
class AlignJob:
    """One input: an audio file and where its transcript comes from (text, or a file to read)."""

    audio: Path
    transcript: str | None = None
    transcript_file: Path | None = None

    def read_transcript(self) -> str:
        if self.transcript is not None:
            return self.transcript
        if self.transcript_file is None or not self.transcript_file.is_file():
            raise InputError(f"no transcript: give --transcript, --transcript-file or a {self.audio.stem}.txt file")
        try:
            return self.transcript_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the transcript {self.transcript_file}: {error}") from None


def _pick(row: dict, keys: tuple[str, ...], what: str, where: str) -> str:
    for key in keys:
        if row.get(key) not in (None, ""):
            return str(row[key])
    raise InputError(f"{where}: no {what} field (expected one of {', '.join(keys)})")


def read_manifest(path: Path) -> list[AlignJob]:
    """Jobs from a JSONL (one object per line) or CSV (with a header) manifest of audio + transcript.

    Relative audio paths are relative to the manifest's folder.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[str, dict]] = []
    if path.suffix.lower() == ".csv":
        for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            rows.append((f"{path}:{number}", row))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}:{number}: not a JSON object ({error.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: not a JSON object")
            rows.append((f"{path}:{number}", row))
    jobs = []
    for where, row in rows:
        audio = Path(_pick(row, _AUDIO_KEYS, "audio path", where))
        audio = audio if audio.is_absolute() else path.parent / audio
        if row.get("transcript_file"):
            jobs.append(AlignJob(audio=audio, transcript_file=path.parent / str(row["transcript_file"])))
            continue
        transcript = _pick(row, _TEXT_KEYS, "transcript", where)
        named_file = path.parent / transcript
        if transcript.endswith(".txt") and " " not in transcript and named_file.is_file():
            # data_samples/manifest.jsonl style: "transcript" names a text file beside the manifest
            jobs.append(AlignJob(audio=audio, transcript_file=named_file))
        else:
            jobs.append(AlignJob(audio=audio, transcript=transcript))
    if not jobs:
        raise InputError(f"{path}: the manifest lists no inputs")
    return jobs


def collect_jobs(
    audio: tuple[Path, ...], transcript: str | None, transcript_file: Path | None, manifest: Path | None
) -> list[AlignJob]:
    """All inputs of one invocation, checked for clashes before any work starts."""
    if (transcript is not None or transcript_file is not None) and len(audio) != 1:
        raise InputError("--transcript and --transcript-file go with exactly one audio file; use a manifest for several")
    if transcript is not None and transcript_file is not None:
        raise InputError("give either --transcript or --transcript-file, not both")
    jobs = [
        AlignJob(audio=path, transcript=transcript, transcript_file=transcript_file or path.with_suffix(".txt"))
        for path in audio
    ]
    if manifest is not None:
        jobs.extend(read_manifest(manifest))
    if not jobs:
        raise InputError("no input: give audio files or --manifest")
    stems = [job.audio.stem for job in jobs]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise InputError(f"several inputs would write the same output file: {', '.join(clashes)}")
    return jobs


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
@click.option("--grid", default="lfm2-audio", show_default=True,
              help="Target token grid: lfm2-audio (80 ms), whisper (20 ms), wav2vec2 (20 ms).")
@click.option("--token-duration-ms", type=float, help="Custom token duration in ms (overrides --grid).")
@click.option("--token-offset-ms", type=float, default=0.0, show_default=True, help="Start of the first token.")
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option("--format", "formats", type=click.Choice(["json", "textgrid"]), multiple=True, default=("json",),
              show_default=True, help="Output format; repeat for several.")
@click.option("--plot", is_flag=True, help="Also write <stem>.segments.png (waveform, spectrogram, boundaries).")
@click.option("--padding-ms", type=float, default=None,
              help=f"Refinement search padding around the raw gap. [default: {_DEFAULTS.padding_s * 1000:g}]")
@click.option("--alpha", type=float, default=None,
              help=f"Weight of energy (vs spectral flux) in the cut cost. [default: {_DEFAULTS.alpha:g}]")
@click.option("--accept-ratio", type=float, default=None,
              help="A cut is accepted if its energy is below this fraction of the neighbouring words' median "
                   f"energy. [default: {_DEFAULTS.accept_ratio:g}]")
@click.option("--min-word-ms", type=float, default=50.0, show_default=True, help="Shortest word segment.")
@click.option("--max-players", type=int, default=None, help="Merge adjacent words into at most this many phrases.")
@click.option("--max-duration", type=float, default=1200.0, show_default=True, help="Longest audio accepted (s).")
@click.option("--interior-cut", type=click.Choice(["auto", "delimiter", "midpoint"]), default="auto", show_default=True,
              help="A cut between words: centre of the CTC word delimiter between them, or midpoint of the gap "
                   "between their characters; auto = the delimiter for models trained to put it in the gap "
                   "(the shipped one), else the midpoint.")
@click.option("--refine-interior/--no-refine-interior", default=_DEFAULTS.refine_interior, show_default=True,
              help="Also move the cuts between words to energy dips (default: keep stage 1's cut, which measured closer).")
@click.option("--speech-gate/--no-speech-gate", default=True, show_default=True,
              help="Allow no character before the energy onset or after the offset of the speech.")
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
    padding_ms: float | None,
    alpha: float | None,
    accept_ratio: float | None,
    min_word_ms: float,
    max_players: int | None,
    max_duration: float,
    interior_cut: str,
    refine_interior: bool,
    speech_gate: bool,
    quiet: bool,
) -> None:
    """Align AUDIO files with their transcripts and map the words onto a model's token grid.

    Writes <stem>.segments.json (and/or <stem>.TextGrid, <stem>.segments.png) per input into the
    output directory. A bad input is reported and skipped; the exit code is 2 if any input failed.
    """
    from tqdm import tqdm

    jobs = collect_jobs(audio, transcript, transcript_file, manifest)
    grid_choice: str | float = grid if token_duration_ms is None else token_duration_ms / 1000
    parameters = dict(
        token_offset_s=token_offset_ms / 1000,
        padding_s=_DEFAULTS.padding_s if padding_ms is None else padding_ms / 1000,
        alpha=_DEFAULTS.alpha if alpha is None else alpha,
        accept_ratio=_DEFAULTS.accept_ratio if accept_ratio is None else accept_ratio,
        min_word_duration_s=min_word_ms / 1000,
        max_players=max_players,
        max_duration_s=max_duration,
        interior_cut=interior_cut,
        refine_interior=refine_interior,
        speech_gate=speech_gate,
    )
    from sgpa.tokens import resolve_grid

    resolve_grid(grid_choice)  # a bad grid is a usage error before the model loads
    if len(jobs) == 1 and not jobs[0].audio.is_file():
        raise InputError(f"{jobs[0].audio}: no such audio file")  # no need to load the model first
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output directory {output_dir}: {error.strerror}") from None
    acoustic_model = _load_model_quietly(model)

    failures: list[tuple[Path, str]] = []
    progress = tqdm(jobs, file=sys.stderr, unit="file", disable=quiet or len(jobs) == 1, desc="sgpa align")
    for job in progress:
        try:
            _align_one(job, acoustic_model, grid_choice, parameters, output_dir, formats, plot)
        except InputError as error:
            message = _without_prefix(str(error), str(job.audio))
            if len(jobs) == 1:
                fail(f"{job.audio}: {message}")
            failures.append((job.audio, message))
            progress.write(f"sgpa: error: {job.audio}: {' '.join(message.split())}", file=sys.stderr)
    if failures:
        names = ", ".join(str(path) for path, _ in failures)
        print(f"sgpa: error: {len(failures)} of {len(jobs)} inputs failed: {names}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _load_model_quietly(model: str | None):
    from transformers.utils import logging as transformers_logging

    from sgpa.ctc import load_ctc_model

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    return load_ctc_model(model)


def _align_one(
    job: AlignJob,
    acoustic_model,
    grid: str | float,
    parameters: dict,
    output_dir: Path,
    formats: tuple[str, ...],
    plot: bool,
) -> None:
    """Align one input and write its outputs atomically (each file complete or absent)."""
    from sgpa.audio import load_audio
    from sgpa.io import atomic_write_text
    from sgpa.pipeline import align as run_pipeline

    transcript = job.read_transcript()
    segmentation = run_pipeline(job.audio, transcript, acoustic_model, grid, **parameters)
    stem = job.audio.stem
    if "json" in formats:
        atomic_write_text(output_dir / f"{stem}.segments.json", segmentation.to_json() + "\n")
    if "textgrid" in formats:
        from sgpa.textgrid import write_textgrid

        write_textgrid(segmentation, output_dir / f"{stem}.TextGrid")
    if plot:
        from sgpa.plot import plot_segmentation

        waveform, _ = load_audio(job.audio, acoustic_model.sample_rate, max_duration_s=None)
        plot_segmentation(segmentation, waveform, output_dir / f"{stem}.segments.png")
