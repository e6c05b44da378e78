"""The Explanation: what ``sgpa explain`` found, as plain data with schema-versioned JSON.

An explanation holds the players (words with times and token spans), the attribution matrix ``phi``
(players x response tokens) with standard errors where sampled, the scalar attribution (summed over response
tokens), the reference response, ``v(empty)``, ``v(full)`` and the efficiency gap, what the explanation cost
(distinct model evaluations, batches, seconds), and every parameter needed to reproduce it.

``to_shap()`` gives a ``shap.Explanation`` of the scalar game, so ``shap.plots.bar`` / ``waterfall`` work on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.diagnostics import concentration, evaluation_cost
from sgpa.errors import InputError
from sgpa.io import atomic_write, atomic_write_text

SCHEMA_VERSION = "1.0"

_NUMBER_LIST = {"type": "array", "items": {"type": "number"}}
_MATRIX = {"type": "array", "items": _NUMBER_LIST}
# standard errors: null where a sampled estimate has no error estimate (see "stderr_note")
_STDERR_LIST = {"type": "array", "items": {"type": ["number", "null"]}}
_STDERR_MATRIX = {"type": "array", "items": _STDERR_LIST}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sgpa explanation",
    "type": "object",
    "required": [
        "schema_version", "audio", "model", "response", "players", "method", "index", "phi", "stderr",
        "phi_total", "stderr_total", "v_empty", "v_full", "efficiency_gap", "cost", "parameters",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "audio": {"type": "object", "required": ["path", "sha256", "duration_s", "sample_rate"]},
        "transcript": {"type": "string"},
        "model": {"type": "object", "required": ["backend", "id", "revision"]},
        "prompt": {"type": ["string", "null"]},
        "response": {
            "type": "object",
            "required": ["text", "token_ids", "tokens"],
            "properties": {"tokens": {"type": "array", "items": {"type": "string"}}},
        },
        "players": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "name", "kind", "start_s", "end_s", "token_start", "token_end"],
            },
        },
        "method": {"enum": ["exact", "permutation", "kernel", "loo", "banzhaf"]},
        "index": {"enum": ["shapley", "banzhaf", "loo"]},
        "phi": _MATRIX,
        "stderr": {"oneOf": [_STDERR_MATRIX, {"type": "null"}]},
        "stderr_dof": {"type": ["number", "null"]},
        "stderr_note": {"type": ["string", "null"]},
        "method_reason": {"type": ["string", "null"]},
        "phi_total": _NUMBER_LIST,
        "stderr_total": {"oneOf": [_STDERR_LIST, {"type": "null"}]},
        "v_empty": _NUMBER_LIST,
        "v_full": _NUMBER_LIST,
        "efficiency_gap": _NUMBER_LIST,
        "cost": {
            "type": "object",
            "required": ["n_evaluations", "n_batches", "eval_seconds", "wall_seconds", "budget", "converged"],
        },
        "parameters": {"type": "object"},
        "details": {"type": "object"},
    },
}


@dataclass
class Player:
    """One player: a transcript word (``kind="word"``) with its time span and its span on the encoder token grid,
    or a word of the prompt (``kind="text"``, joint audio + text game) with no times and no audio tokens."""

    index: int
    name: str
    kind: str
    start_s: float | None
    end_s: float | None
    token_start: int | None
    token_end: int | None


@dataclass
class Cost:
    """What the explanation cost: distinct model evaluations (empty and full coalition included), model calls,
    seconds inside the model, seconds in all (encoding and reference generation included), the budget allowed."""

    n_evaluations: int
    n_batches: int
    eval_seconds: float
    wall_seconds: float
    budget: int
    converged: bool


@dataclass
class Explanation:
    """Attributions of one utterance. Arrays: ``phi``/``stderr`` ``(n, T)``; ``phi_total``/``stderr_total`` ``(n,)``;
    ``v_empty``/``v_full``/``efficiency_gap`` ``(T,)``. ``stderr`` is ``None`` where ``phi`` is exact, and NaN (``null``
    in the JSON) where a sampled estimate has no error estimate (``stderr_note`` says why). ``stderr_dof`` is the
    degrees of freedom of the t distribution behind :meth:`interval` (``inf``: normal; ``None`` when exact)."""

    audio: dict[str, Any]
    transcript: str
    model: dict[str, Any]
    prompt: str | None
    response: dict[str, Any]
    players: list[Player]
    method: str
    index: str
    phi: np.ndarray
    stderr: np.ndarray | None
    phi_total: np.ndarray
    stderr_total: np.ndarray | None
    v_empty: np.ndarray
    v_full: np.ndarray
    efficiency_gap: np.ndarray
    cost: Cost
    parameters: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    stderr_dof: float | None = None
    stderr_note: str | None = None
    #: Why the estimator "auto" picked ``method``; None where the method was named.
    method_reason: str | None = None
    schema_version: str = SCHEMA_VERSION
    #: The explained audio (float32 ``(n_samples,)`` at 16 kHz) when it is at hand; not part of the JSON.
    waveform: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_players(self) -> int:
        return len(self.players)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)`` of the per-word values ``phi_total`` at ``level`` (t quantile with ``stderr_dof``); None
        where the values are exact. NaN where there is no error estimate."""
        from sgpa.attribution.estimators.result import t_quantile

        if self.stderr_total is None:
            return None
        half = t_quantile(level, self.stderr_dof) * np.asarray(self.stderr_total)
        return self.phi_total - half, self.phi_total + half

    @property
    def v_empty_total(self) -> float:
        return float(np.sum(self.v_empty))

    @property
    def v_full_total(self) -> float:
        return float(np.sum(self.v_full))

    @property
    def efficiency_gap_total(self) -> float:
        """``|sum_i phi_total[i] - (v(N) - v(empty))|`` of the scalar game."""
        return float(abs(np.sum(self.phi_total) - (self.v_full_total - self.v_empty_total)))

    # --- JSON ------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def listed(array: np.ndarray | None) -> Any:
            if array is None:
                return None
            values = np.asarray(array, dtype=float)
            return np.where(np.isfinite(values), values, None).tolist()  # NaN (no estimate) -> null: valid JSON

        return {
            "schema_version": self.schema_version,
            "audio": self.audio,
            "transcript": self.transcript,
            "model": self.model,
            "prompt": self.prompt,
            "response": self.response,
            "players": [asdict(p) for p in self.players],
            "method": self.method,
            "method_reason": self.method_reason,
            "index": self.index,
            "phi": listed(self.phi),
            "stderr": listed(self.stderr),
            "phi_total": listed(self.phi_total),
            "stderr_total": listed(self.stderr_total),
            "stderr_dof": None if self.stderr_dof is None or not np.isfinite(self.stderr_dof) else self.stderr_dof,
            "stderr_note": self.stderr_note,
            "v_empty": listed(self.v_empty),
            "v_full": listed(self.v_full),
            "v_empty_total": self.v_empty_total,
            "v_full_total": self.v_full_total,
            "efficiency_gap": listed(self.efficiency_gap),
            "efficiency_gap_total": self.efficiency_gap_total,
            "cost": asdict(self.cost),
            "parameters": self.parameters,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """Validate against :data:`JSON_SCHEMA` and build; ``InputError`` for anything that does not fit."""
        import jsonschema

        try:
            jsonschema.validate(data, JSON_SCHEMA)
        except jsonschema.ValidationError as error:
            raise InputError(f"not an sgpa explanation (schema {SCHEMA_VERSION}): {error.message}") from None

        def array(value: Any) -> np.ndarray | None:
            return None if value is None else np.asarray(value, dtype=float)

        return cls(
            audio=data["audio"],
            transcript=data.get("transcript", ""),
            model=data["model"],
            prompt=data.get("prompt"),
            response=data["response"],
            players=[Player(**p) for p in data["players"]],
            method=data["method"],
            index=data["index"],
            phi=array(data["phi"]).reshape(len(data["players"]), -1),
            stderr=None if data["stderr"] is None else array(data["stderr"]).reshape(len(data["players"]), -1),
            phi_total=array(data["phi_total"]),
            stderr_total=array(data["stderr_total"]),
            v_empty=array(data["v_empty"]),
            v_full=array(data["v_full"]),
            efficiency_gap=array(data["efficiency_gap"]),
            cost=Cost(**data["cost"]),
            parameters=data["parameters"],
            details=data.get("details", {}),
            stderr_dof=(None if data["stderr"] is None else
                        float("inf") if data.get("stderr_dof") is None else float(data["stderr_dof"])),
            stderr_note=data.get("stderr_note"),
            method_reason=data.get("method_reason"),
            schema_version=data["schema_version"],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | Path) -> Explanation:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"{path}: cannot read explanation ({error})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the JSON atomically (complete or absent)."""
        return atomic_write_text(path, self.to_json() + "\n")

    # --- pictures --------------------------------------------------------------------------------------------

    def plot(self, audio: np.ndarray | None = None, sample_rate: int = 16000) -> Any:
        """A matplotlib ``Figure``: the spectrogram with each word shaded by phi, and phi per word with 95 % error
        bars where sampled (:func:`sgpa.attribution.plots.explanation_figure`).

        ``audio`` defaults to the waveform the explanation was computed on, or else its audio file (checked against
        the recorded sha256).
        """
        from sgpa.attribution.plots import explanation_figure

        return explanation_figure(self, *self._audio(audio, sample_rate))

    def save_plot(self, path: str | Path, audio: np.ndarray | None = None, sample_rate: int = 16000) -> Path:
        """Write :meth:`plot` as a PNG, atomically."""
        from sgpa.attribution.plots import save_explanation_plot

        return save_explanation_plot(self, *self._audio(audio, sample_rate), path)

    def _audio(self, audio: np.ndarray | None, sample_rate: int) -> tuple[np.ndarray, int]:
        if audio is not None:
            return np.asarray(audio, dtype=np.float32), sample_rate
        if self.waveform is not None:
            return self.waveform, 16000
        from sgpa.audio import load_audio

        waveform, info = load_audio(self.audio["path"], sample_rate=16000, max_duration_s=None)
        if info.sha256 != self.audio["sha256"]:
            raise InputError(f"{self.audio['path']}: the file has changed since it was explained (sha256 differs)")
        return waveform, 16000

    # --- shap ------------------------------------------------------------------------------------------------

    def to_shap(self) -> Any:
        """A ``shap.Explanation`` of the scalar game: one value per word, base value ``v(empty)``.

        ``values + base_values`` sums to ``v(N)`` for Shapley estimates (up to the efficiency gap); ``data`` is 1 for
        every word (all present in the explained input); feature names carry the word and its time span.
        """
        import shap

        names = [f"{p.name} [{p.start_s:.2f}-{p.end_s:.2f} s]" for p in self.players]
        return shap.Explanation(
            values=np.asarray(self.phi_total, dtype=float),
            base_values=self.v_empty_total,
            data=np.ones(self.n_players),
            feature_names=names,
            display_data=np.array([p.name for p in self.players], dtype=object),
        )

    def write_shap(self, path: str | Path) -> None:
        """Pickle :meth:`to_shap` to ``path`` directly (see :meth:`save_shap` for the atomic version)."""
        import pickle

        explanation = self.to_shap()
        with open(path, "wb") as handle:
            pickle.dump(explanation, handle)

    def save_shap(self, path: str | Path) -> Path:
        """Pickle :meth:`to_shap` atomically; ``pickle.load`` gives back a ``shap.Explanation``."""
        return atomic_write(path, self.write_shap)


def players_from_segmentation(segmentation: Any) -> list[Player]:
    """One :class:`Player` per word of a :class:`sgpa.segmentation.Segmentation`."""
    return [
        Player(
            index=w.index, name=w.text, kind="word", start_s=float(w.start), end_s=float(w.end),
            token_start=int(w.token_start), token_end=int(w.token_end),
        )
        for w in segmentation.words
    ]


def build_explanation(
    result: Any,
    *,
    segmentation: Any,
    prepared: Any,
    game: Any,
    backend: Any,
    parameters: dict[str, Any],
    wall_seconds: float,
) -> Explanation:
    """Assemble an :class:`Explanation` from an estimator result, the backend's prepared game and the engine's game.

    The cost is read from the engine's :class:`sgpa.attribution.game.Game` (every distinct coalition it ever sent to the
    model); ``wall_seconds`` covers the whole explanation (encoding, reference generation, all evaluations).
    """
    game, engine_game = prepared, game
    total = result.total()
    audio = segmentation.audio
    players = players_from_segmentation(segmentation)
    text_words = prepared.details.get("text_players") or []
    players += [Player(index=len(players) + j, name=w, kind="text", start_s=None, end_s=None, token_start=None,
                       token_end=None) for j, w in enumerate(text_words)]
    details = dict(prepared.details)
    is_word = [p.kind == "word" for p in players]
    if text_words:
        details["audio_share"] = audio_share(np.asarray(total.phi[:, 0]), is_word)
    details["evaluation_cost"] = evaluation_cost(len(segmentation.words), segmentation.grid.n_tokens)
    details["concentration"] = concentration(np.asarray(total.phi[:, 0])[np.asarray(is_word, dtype=bool)])
    return Explanation(
        audio={"path": audio.path, "sha256": audio.sha256, "duration_s": audio.duration_s, "sample_rate": audio.sample_rate},
        transcript=segmentation.transcript.raw,
        model={"backend": backend.name, "id": backend.model_id, "revision": backend.revision},
        prompt=game.details.get("prompt"),
        response={"text": game.response.text, "token_ids": game.response.token_ids, "tokens": game.response.tokens},
        players=players,
        method=result.method,
        index=result.index,
        phi=np.asarray(result.phi, dtype=float),
        stderr=None if result.stderr is None else np.asarray(result.stderr, dtype=float),
        phi_total=np.asarray(total.phi[:, 0], dtype=float),
        stderr_total=None if total.stderr is None else np.asarray(total.stderr[:, 0], dtype=float),
        v_empty=np.asarray(result.v_empty, dtype=float),
        v_full=np.asarray(result.v_full, dtype=float),
        efficiency_gap=np.asarray(result.efficiency_gap, dtype=float),
        stderr_dof=result.dof,
        stderr_note=result.note,
        method_reason=result.method_reason,
        cost=Cost(
            n_evaluations=int(engine_game.n_evaluations),
            n_batches=int(engine_game.n_batches),
            eval_seconds=float(engine_game.eval_seconds),
            wall_seconds=float(wall_seconds),
            budget=int(result.budget),
            converged=bool(result.converged),
        ),
        parameters=dict(parameters, masking=game.masking, batch_size=game.batch_size),
        details=details,
    )


def audio_share(phi_total: np.ndarray, is_audio: list[bool]) -> float:
    """A-SHAP: the audio players' share of the total absolute attribution, ``sum |phi_audio| / sum |phi|``."""
    magnitude = np.abs(np.asarray(phi_total, dtype=float))
    total = magnitude.sum()
    return float(magnitude[np.asarray(is_audio, dtype=bool)].sum() / total) if total > 0 else float("nan")


def explain(
    backend: Any,
    audio: np.ndarray,
    segmentation: Any,
    *,
    prompt: str | None = None,
    masking: str | None = None,
    method: str = "auto",
    budget: int | None = None,
    tolerance: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    text_players: bool = False,
    normalization: str | None = None,
    on_progress: Any = None,
) -> Explanation:
    """Explain one utterance: prepare the backend's game, attribute it with the engine, assemble the result.

    Parameters
    ----------
    backend : a loaded :class:`sgpa.attribution.models.base.Backend`.
    audio : float32 ``(n_samples,)`` at 16 kHz, the audio ``segmentation`` was computed on.
    segmentation : the players (words with times and token spans).
    prompt, masking : passed to the backend (``None``: its defaults).
    method, budget, tolerance, seed : passed to :func:`sgpa.attribution.estimators.estimate`.
    batch_size : coalitions per model call (``None``: chosen from memory by the backend).
    progress : show a progress bar over the evaluations.
    on_progress : ``on_progress(done, planned)`` after every model call (see :class:`sgpa.attribution.game.Game`).
    text_players : make the prompt's words players too (LFM2-Audio; reports the audio share A-SHAP).
    normalization : waveform maskings: ``"frozen"`` (default) or ``"per-input"`` front-end normalisation (see
        :data:`sgpa.attribution.models.base.NORMALIZATIONS`).
    """
    import time

    from sgpa.attribution.estimators import estimate
    from sgpa.attribution.game import Game

    started = time.perf_counter()
    options = {"text_players": True} if text_players else {}
    prepared = backend.prepare(audio, segmentation, prompt=prompt, masking=masking, seed=seed, batch_size=batch_size,
                               normalization=normalization, **options)
    game = Game(prepared.log_probs, prepared.n_players, batch_size=prepared.batch_size,
                player_names=prepared.player_names, progress=progress, null_players=prepared.null_players,
                on_progress=on_progress)
    result = estimate(game, method=method, budget=budget, tolerance=tolerance, seed=seed, progress=progress)
    parameters = {"estimator": method, "budget": budget, "tolerance": tolerance, "seed": seed,
                  "text_players": text_players, "normalization": prepared.details.get("normalization"),
                  "null_players": [i for i, null in enumerate(game.null_players) if null]}
    explanation = build_explanation(
        result, segmentation=segmentation, prepared=prepared, game=game, backend=backend,
        parameters=parameters, wall_seconds=time.perf_counter() - started,
    )
    explanation.waveform = np.asarray(audio, dtype=np.float32)
    return explanation
