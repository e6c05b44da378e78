"""Manifests: many inputs in one file, for ``sgpa align`` and ``sgpa bench``.

A JSONL file (one object per line) or a CSV file (with a header) names each input's audio (``audio``, ``path``,
``audio_path`` or ``file``) and its transcript (``transcript`` or ``text``, or ``transcript_file``). A UTF-8 byte
order mark and CRLF line ends are accepted. Relative paths are relative to the manifest's folder, and a path that
leads outside that folder (``../x.wav``, an absolute path elsewhere) is refused unless ``allow_outside`` is set:
a manifest, or a request built from one, must not be able to read arbitrary files. Every other field of a row is
kept in :attr:`ManifestEntry.fields`.

Rows are read one by one: a bad row (not JSON, no audio field, a path outside the folder) becomes one listed
failure, and the good rows still run.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from sgpa.errors import InputError

_AUDIO_KEYS = ("audio", "path", "audio_path", "file")
_TEXT_KEYS = ("text", "transcript")


@dataclass
class ManifestEntry:
    """One input: an audio file and where its transcript comes from (text, or a file to read)."""

    audio: Path
    transcript: str | None = None
    transcript_file: Path | None = None
    fields: dict = field(default_factory=dict)
    where: str = ""

    def read_transcript(self) -> str:
        if self.transcript is not None:
            return self.transcript
        if self.transcript_file is None or not self.transcript_file.is_file():
            raise InputError(f"no transcript: give --transcript, --transcript-file or a {self.audio.stem}.txt file")
        try:
            return self.transcript_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the transcript {self.transcript_file}: {error}") from None


def _pick(row: dict, keys: tuple[str, ...], what: str, where: str) -> str:
    for key in keys:
        if row.get(key) not in (None, ""):
            return str(row[key])
    raise InputError(f"{where}: no {what} field (expected one of {', '.join(keys)})")


def resolve_inside(folder: Path, name: str, where: str, allow_outside: bool) -> Path:
    """``name`` relative to ``folder``; ``InputError`` if it leads outside ``folder`` and that is not allowed."""
    path = Path(name).expanduser()
    path = path if path.is_absolute() else folder / path
    if not allow_outside:
        try:
            path.resolve().relative_to(folder.resolve())
        except ValueError:
            raise InputError(
                f"{where}: {name!r} is outside the manifest's folder {folder} (pass --allow-outside to allow it)"
            ) from None
    return path


def _rows(path: Path, text: str) -> list[tuple[str, dict | None, str | None]]:
    """``(where, row, error)`` for every non-empty row of the manifest text."""
    rows: list[tuple[str, dict | None, str | None]] = []
    if path.suffix.lower() == ".csv":
        for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            rows.append((f"{path}:{number}", dict(row), None))
        return rows
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append((where, None, f"{where}: not a JSON object ({error.msg})"))
            continue
        if not isinstance(row, dict):
            rows.append((where, None, f"{where}: not a JSON object"))
            continue
        rows.append((where, row, None))
    return rows


def _entry(path: Path, where: str, row: dict, allow_outside: bool) -> ManifestEntry:
    folder = path.parent
    audio = resolve_inside(folder, _pick(row, _AUDIO_KEYS, "audio path", where), where, allow_outside)
    if row.get("transcript_file"):
        named = resolve_inside(folder, str(row["transcript_file"]), where, allow_outside)
        return ManifestEntry(audio=audio, transcript_file=named, fields=row, where=where)
    transcript = _pick(row, _TEXT_KEYS, "transcript", where)
    if transcript.endswith(".txt") and " " not in transcript and (folder / transcript).is_file():
        # data_samples/manifest.jsonl style: "transcript" names a text file beside the manifest
        named = resolve_inside(folder, transcript, where, allow_outside)
        return ManifestEntry(audio=audio, transcript_file=named, fields=row, where=where)
    return ManifestEntry(audio=audio, transcript=transcript, fields=row, where=where)


def read_manifest(path: Path, allow_outside: bool = False) -> tuple[list[ManifestEntry], list[tuple[str, str]]]:
    """The usable entries of a JSONL or CSV manifest, and ``(where, message)`` for every row that is not.

    Raises
    ------
    InputError
        The manifest itself cannot be read, or it lists no rows at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark is not part of the first row
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read the manifest ({error})") from None
    entries, failures = [], []
    for where, row, error in _rows(path, text):
        if row is None:
            failures.append((where, error))
            continue
        try:
            entries.append(_entry(path, where, row, allow_outside))
        except InputError as problem:
            failures.append((where, str(problem)))
    if not entries and not failures:
        raise InputError(f"{path}: the manifest lists no inputs")
    return entries, failures
