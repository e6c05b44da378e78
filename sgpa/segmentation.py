"""The Segmentation: SGPA's output, the players of the Shapley game.

Plain dataclasses plus JSON round-trip. Times are seconds (float); token indices count on the
target encoder grid described by :class:`TokenGrid`. Spans are half-open: ``[start, end)`` and
``[token_start, token_end)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"


@dataclass
class AudioInfo:
    """The audio a segmentation was computed on (after downmix and resampling)."""

    path: str
    sha256: str
    sample_rate: int
    duration_s: float
    original_sample_rate: int
    original_channels: int


@dataclass
class TranscriptInfo:
    raw: str
    normalized: str


@dataclass
class ModelInfo:
    """The CTC acoustic model used for stage 1."""

    id: str
    revision: str | None
    frame_duration_s: float


@dataclass
class WordSegment:
    """One transcript word: a player of the game.

    ``start``/``end`` are the final (refined) cut points; ``ctc_start``/``ctc_end`` are the raw
    extent of the word's characters on the CTC Viterbi path. ``flags`` records anything a user
    should know, e.g. ``"interpolated"`` (the word could not be spelled by the acoustic model and
    its span was interpolated) or ``"merged"`` (a phrase made of several words).
    """

    index: int
    text: str
    normalized: str
    start: float
    end: float
    ctc_start: float
    ctc_end: float
    start_refined: bool
    end_refined: bool
    confidence: float
    token_start: int = 0
    token_end: int = 0
    flags: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def n_tokens(self) -> int:
        return self.token_end - self.token_start


@dataclass
class ContextSpan:
    """Non-speech outside the words: ``kind`` is ``"leading"`` or ``"trailing"``."""

    kind: str
    start: float
    end: float
    token_start: int = 0
    token_end: int = 0


@dataclass
class TokenGrid:
    """The target model's audio-token grid and who owns each token.

    Token ``t`` covers ``[offset_s + t * token_duration_s, offset_s + (t + 1) * token_duration_s)``.
    ``owner[t]`` is a word index, or ``-1`` for context (leading/trailing non-speech).
    """

    name: str
    token_duration_s: float
    offset_s: float
    n_tokens: int
    owner: list[int]
    straddling_tokens: int


@dataclass
class Quality:
    n_boundaries: int
    refinement_fallback_rate: float
    mean_confidence: float
    min_confidence: float
    n_interpolated_words: int
    straddling_tokens: int


@dataclass
class Segmentation:
    audio: AudioInfo
    transcript: TranscriptInfo
    model: ModelInfo
    parameters: dict[str, Any]
    words: list[WordSegment]
    context: list[ContextSpan]
    grid: TokenGrid
    quality: Quality
    schema_version: str = SCHEMA_VERSION

    @property
    def n_words(self) -> int:
        return len(self.words)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segmentation:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported segmentation schema_version {version!r} (expected {SCHEMA_VERSION})")
        return cls(
            audio=AudioInfo(**data["audio"]),
            transcript=TranscriptInfo(**data["transcript"]),
            model=ModelInfo(**data["model"]),
            parameters=dict(data["parameters"]),
            words=[WordSegment(**w) for w in data["words"]],
            context=[ContextSpan(**c) for c in data["context"]],
            grid=TokenGrid(**data["grid"]),
            quality=Quality(**data["quality"]),
            schema_version=version,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Segmentation:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> Segmentation:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


#: The JSON Schema every written segmentation satisfies.
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "segmentation.schema.json"


def validate_segmentation_json(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` matches :data:`SCHEMA_PATH`."""
    import jsonschema

    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
