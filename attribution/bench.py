"""``sgpa bench``: what SGPA's word players buy, measured over a dataset.

For every utterance the same value function (a backend's game: the CTC recogniser's transcript log-probability,
or LFM2-Audio's answer log-probability) is explained under several *player sets*:

* ``words`` — SGPA's word segments (stages 1-4);
* ``tokens`` — the model's native audio positions: one player per 80 ms encoder token over the whole audio
  (LFM2-Audio's own grid; for the CTC recogniser, fixed groups of four 20 ms frames);
* ``windows`` — uniform windows over the whole audio, as many as there are words (MM-SHAP's ``n_A = n_T``);
* ``words-raw`` — word spans from stage 1 alone (raw CTC extents, tiled at the gap midpoints: no stage 2).

and :func:`bench_utterance` measures, per player set:

1. **cost at matched accuracy** — a reference (exact where ``2**n`` fits ``exact_cap``, else a high-budget
   ``kernel`` estimate whose own relative standard error is stated), then, over ``seeds`` seeds and a ladder of
   budgets, the fewest evaluations at which each estimator stays within a relative L2 error ``epsilon`` of it;
2. **concentration** of the reference attributions, on the player set itself and mapped onto the words by time
   overlap (so that every set is compared on the same players), and the cumulative ``|phi|`` profile over time;
3. **faithfulness** on the words' own game: deletion / insertion curves and AOPC for each set's word-mapped
   ranking, leave-one-out and random orders; the top-``|phi|`` word's drop against a random and a length-matched
   word; Spearman between ``|phi|`` and single-word drops; the rank of ``answer_word`` where the item names one;
4. the **temporal alignment** grid (input time x output position) and its diagonal score.

Each utterance's figures are one JSON line in ``utterances.jsonl``, written as soon as it is done
(:class:`BenchRun` resumes a folder, skipping finished utterances); :mod:`sgpa.attribution.bench_report` turns the
lines into dataset-level statistics, ``report.md`` and plots. Model evaluations are cached per player set, so a
coalition met by two estimators or seeds is paid once; every cost figure counts distinct evaluations as if the
estimator had run alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.diagnostics import (
    concentration,
    modality_shares,
    cumulative_profile,
    diagonal_score,
    map_onto_words,
    temporal_alignment,
)
from sgpa.attribution.estimators import auto_method, estimate
from sgpa.attribution.faithfulness import (
    aopc,
    deletion_curve,
    insertion_curve,
    random_deletion_aopc,
    ranking,
    single_word_drops,
)
from sgpa.attribution.game import Game
from sgpa.errors import InputError

PLAYER_SETS = ("words", "tokens", "windows", "words-raw")
SAMPLED_METHODS = ("permutation", "kernel")
TOKEN_DURATION_S = 0.08
RESULTS_VERSION = "1.0"


@dataclass(frozen=True)
class BenchConfig:
    """The settings of one bench; an output folder holds utterances computed with one config only.

    Attributes
    ----------
    player_sets : which of :data:`PLAYER_SETS` to explain.
    epsilons : relative L2 errors at which the cost is measured.
    seeds : seeds per estimator and budget (the cost is the budget from which *every* seed stays within epsilon).
    exact_cap : the reference is exact when ``2**n <= exact_cap``.
    max_budget_per_player : the budget ladder runs from ``2n`` to this times ``n`` evaluations.
    reference_budget_per_player : the budget of the non-exact reference (``kernel``), times ``n``.
    masking, normalization : passed to the backend (``None``: its defaults).
    alignment_bins : ``k`` of the ``k x k`` temporal-alignment grid.
    profile_points : points of the cumulative profile over normalised time.
    random_orders : random deletion orders averaged for the random AOPC baseline.
    text_players : chat models: also explain the joint game of the words and the prompt's words, and report its
        modality views (A-SHAP, T-SHAP, Generative SHAP over ``response_windows`` windows of the response).
    """

    player_sets: tuple[str, ...] = PLAYER_SETS
    epsilons: tuple[float, ...] = (0.05, 0.01)
    seeds: int = 3
    exact_cap: int = 4096
    max_budget_per_player: int = 16
    reference_budget_per_player: int = 48
    masking: str | None = None
    normalization: str | None = None
    alignment_bins: int = 8
    profile_points: int = 50
    random_orders: int = 20
    text_players: bool = False
    response_windows: int = 4

    def validate(self) -> BenchConfig:
        unknown = [name for name in self.player_sets if name not in PLAYER_SETS]
        if unknown or not self.player_sets:
            raise InputError(
                f"unknown player set(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PLAYER_SETS)}"
            )
        if "words" not in self.player_sets:
            raise InputError("the player sets must include 'words' (faithfulness is measured on the words' game)")
        if not all(0 < eps < 1 for eps in self.epsilons) or not self.epsilons:
            raise InputError(f"every epsilon must be between 0 and 1, got {list(self.epsilons)}")
        if self.seeds < 1:
            raise InputError(f"seeds must be at least 1, got {self.seeds}")
        if self.max_budget_per_player < 2:
            raise InputError(
                f"max_budget_per_player {self.max_budget_per_player} is too small: the samplers need at least 2 n "
                "evaluations"
            )
        if self.reference_budget_per_player < 4:
            raise InputError(f"reference_budget_per_player must be at least 4, got {self.reference_budget_per_player}")
        if self.response_windows < 1:
            raise InputError(f"response_windows must be at least 1, got {self.response_windows}")
        if self.exact_cap < 4:
            raise InputError(f"exact_cap must be at least 4, got {self.exact_cap}")
        return self

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """A small preset for tests and CI: two seeds, short ladders, a cheap reference."""
        settings = {"seeds": 2, "max_budget_per_player": 6, "reference_budget_per_player": 12, "random_orders": 5,
                    "epsilons": (0.1, 0.05), "exact_cap": 256}
        return cls(**{**settings, **overrides})

    def key(self) -> str:
        """A short hash of the settings, stored with every utterance line (resume refuses a different one)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class BenchItem:
    """One utterance of a bench: an id, its audio (a file, or a waveform at ``sample_rate`` Hz), transcript, and
    optionally a prompt and an answer word. ``source`` says where a waveform came from (``dataset[row]``)."""

    id: str
    audio: Path | np.ndarray
    transcript: str
    prompt: str | None = None
    answer_word: int | None = None
    fields: dict = field(default_factory=dict)
    sample_rate: int | None = None
    source: str | None = None


def items_from_manifest(path: Path, allow_outside: bool = False) -> tuple[list[BenchItem], list[tuple[str, str]]]:
    """The bench items of a JSONL/CSV manifest (see :mod:`sgpa.manifest`), and the rows that cannot be used.

    Optional fields: ``id`` (default: the audio file's stem), ``prompt``, ``answer_word`` (the index of the word an
    oracle answer depends on). A row whose transcript cannot be read becomes a failure, not the end of the bench.
    """
    from sgpa.manifest import read_manifest

    entries, bad_rows = read_manifest(path, allow_outside=allow_outside)
    items, failures = [], [(where, " ".join(message.split())) for where, message in bad_rows]
    for entry in entries:
        name = str(entry.fields.get("id") or entry.audio.stem)
        try:
            transcript = entry.read_transcript()
            answer = entry.fields.get("answer_word")
            answer = None if answer in (None, "") else int(answer)
        except (InputError, ValueError) as error:
            failures.append((name, " ".join(str(error).split())))
            continue
        items.append(BenchItem(id=name, audio=entry.audio, transcript=transcript,
                               prompt=entry.fields.get("prompt") or None, answer_word=answer, fields=entry.fields))
    ids = [item.id for item in items]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    if duplicates:
        raise InputError(f"{path}: several rows share the id(s) {', '.join(duplicates)}")
    return items, failures


def load_dataset_split(location: str, split: str | None = None) -> Any:
    """A Hugging Face ``datasets.Dataset``: a folder written by ``save_to_disk``, or a hub id (needs a network).

    A ``DatasetDict`` needs ``split`` unless it holds a single split.
    """
    import datasets

    folder = Path(location).expanduser()
    try:
        data = datasets.load_from_disk(str(folder)) if folder.exists() else datasets.load_dataset(location, split=split)
    except (FileNotFoundError, ValueError, OSError, ConnectionError) as error:
        raise InputError(f"cannot load dataset {location!r}: {' '.join(str(error).split())}") from error
    if isinstance(data, datasets.DatasetDict):
        if split is None and len(data) == 1:
            split = next(iter(data))
        if split not in data:
            raise InputError(f"dataset {location!r} has the splits {', '.join(data)}: choose one with --split")
        data = data[split]
    return data


def items_from_dataset(
    location: str,
    *,
    split: str | None = None,
    audio_column: str = "audio",
    text_column: str = "text",
    id_column: str | None = None,
) -> tuple[list[BenchItem], list[tuple[str, str]]]:
    """The bench items of a Hugging Face dataset (see :func:`load_dataset_split`), and the rows that cannot be used.

    The audio column is read undecoded (``datasets.Audio(decode=False)``: the file's bytes or path) and decoded with
    soundfile, so no audio back end of ``datasets`` is needed. Optional columns ``prompt`` and ``answer_word``
    are used as in a manifest; ids default to ``<row index>``.
    """
    import io

    import datasets
    import soundfile

    data = load_dataset_split(location, split)
    missing = [c for c in (audio_column, text_column, id_column) if c is not None and c not in data.column_names]
    if missing:
        raise InputError(f"dataset {location!r} has no column {', '.join(map(repr, missing))} "
                         f"(its columns: {', '.join(data.column_names)})")
    if isinstance(data.features[audio_column], datasets.Audio):
        data = data.cast_column(audio_column, datasets.Audio(decode=False))
    items, failures = [], []
    for index, row in enumerate(data):
        name = str(row[id_column]) if id_column else f"{index:06d}"
        audio = row[audio_column]
        try:
            if isinstance(audio, dict) and audio.get("array") is not None:
                waveform, rate = np.asarray(audio["array"], dtype=np.float32), int(audio["sampling_rate"])
            elif isinstance(audio, dict) and (audio.get("bytes") or audio.get("path")):
                source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio["path"]
                try:
                    waveform, rate = soundfile.read(source, dtype="float32")
                except soundfile.LibsndfileError as error:
                    raise InputError(f"cannot decode the audio: {error.error_string}") from error
            else:
                raise InputError(f"column {audio_column!r} holds no audio")
            transcript = str(row[text_column] or "").strip()
            if not transcript:
                raise InputError("the transcript is empty")
            answer = row.get("answer_word")
            answer = None if answer in (None, "") else int(answer)
        except (InputError, ValueError, RuntimeError) as error:
            failures.append((name, f"{name}: {' '.join(str(error).split())}"))
            continue
        items.append(BenchItem(id=name, audio=waveform, transcript=transcript, prompt=row.get("prompt") or None,
                               answer_word=answer, sample_rate=rate, source=f"{location}[{index}]"))
    return items, failures


# --- player sets -----------------------------------------------------------------------------------------------


def player_spans(name: str, words_segmentation: Any, duration_s: float) -> list[tuple[str, float, float]]:
    """``(label, start_s, end_s)`` of every player of a player set (see the module docstring)."""
    words = words_segmentation.words
    if name == "words":
        return [(w.text, w.start, w.end) for w in words]
    if name == "words-raw":
        spans, previous_end = [], 0.0
        for w in words:
            start = max(w.ctc_start, previous_end)  # interpolated words may reach into a neighbour's raw span
            end = max(w.ctc_end, start + 1e-3)
            spans.append((w.text, start, end))
            previous_end = end
        return spans
    if name == "tokens":
        n_tokens = int(np.ceil(duration_s / TOKEN_DURATION_S - 1e-9))
        edges = np.minimum(np.arange(n_tokens + 1) * TOKEN_DURATION_S, duration_s)
        return [(f"{edges[k]:.2f}s", float(edges[k]), float(edges[k + 1])) for k in range(n_tokens)]
    if name == "windows":
        edges = np.linspace(0.0, duration_s, len(words) + 1)
        return [(f"w{k}", float(edges[k]), float(edges[k + 1])) for k in range(len(words))]
    raise InputError(f"unknown player set {name!r}; choose from {', '.join(PLAYER_SETS)}")


def player_segmentation(name: str, words_segmentation: Any, waveform: np.ndarray, grid: str) -> Any:
    """The segmentation whose words are the players of ``name`` (mapped onto ``grid``)."""
    from sgpa.pipeline import segmentation_from_word_times

    if name == "words":
        return words_segmentation
    spans = player_spans(name, words_segmentation, words_segmentation.audio.duration_s)
    segmentation = segmentation_from_word_times(waveform, spans, sample_rate=16000, grid=grid, source=f"bench:{name}")
    segmentation.audio = words_segmentation.audio
    return segmentation


# --- cost at matched accuracy ------------------------------------------------------------------------------------


def relative_error(estimate_: np.ndarray, reference: np.ndarray) -> float:
    """``||estimate - reference|| / ||reference||`` (NaN for an all-zero reference)."""
    norm = float(np.linalg.norm(reference))
    return float(np.linalg.norm(np.asarray(estimate_) - reference) / norm) if norm > 0 else float("nan")


def budget_ladder(n_players: int, max_per_player: int) -> list[int]:
    """Budgets from ``2n`` to ``max_per_player * n`` in steps of about sqrt(2), below ``2**n`` (then exact)."""
    rungs = sorted({int(round(n_players * 2 ** (k / 2))) for k in range(2, 40)
                    if n_players * 2 ** (k / 2) <= max_per_player * n_players + 1e-9})
    return [budget for budget in rungs if budget < 2**n_players]


def counting_view(base: Game) -> Game:
    """A fresh game over ``base``'s cache: it counts its own distinct evaluations as if it ran alone, while the
    model is asked only for coalitions ``base`` has never seen."""
    return Game(base.values, base.n_players, batch_size=base.batch_size, null_players=base.null_players)


def reference_attributions(base: Game, config: BenchConfig) -> dict:
    """Exact Shapley values if ``2**n`` fits the cap, else a high-budget ``kernel`` estimate with its error."""
    n = base.n_players
    if 2**n <= config.exact_cap:
        result = estimate(counting_view(base), "exact")
        return {"result": result, "kind": "exact", "relative_stderr": 0.0, "evaluations": 2**n}
    result = estimate(counting_view(base), "kernel", budget=config.reference_budget_per_player * n, seed=10_000)
    total = result.total()
    norm = float(np.linalg.norm(total.phi[:, 0]))
    relative = float(np.linalg.norm(np.nan_to_num(total.stderr[:, 0])) / norm) if norm > 0 else float("nan")
    return {"result": result, "kind": "kernel", "relative_stderr": relative, "evaluations": result.n_evaluations}


def matched_accuracy(base: Game, reference_total: np.ndarray, reference: dict, config: BenchConfig) -> dict:
    """Error curves over the budget ladder and the fewest evaluations reaching each epsilon, per estimator.

    ``auto`` is read off the named estimators (at a budget below ``2**n`` it is the one :func:`auto_method` names,
    with the same seed), and reaches zero error at ``2**n`` where exact enumeration fits the cap. An epsilon is
    *resolved* only when the reference's own relative standard error is at most half of it. Where epsilon is not
    reached on the ladder — or the reference cannot resolve it but the error at the top rung exceeds it by more than
    twice the reference's error — the top rung's evaluations are a *lower bound* of the cost (``cost_lower_bound``).
    """
    n = base.n_players
    ladder = budget_ladder(n, config.max_budget_per_player)
    errors: dict[str, list[list[float]]] = {method: [] for method in SAMPLED_METHODS}
    used: dict[str, list[list[int]]] = {method: [] for method in SAMPLED_METHODS}
    for method in SAMPLED_METHODS:
        for seed in range(config.seeds):
            row, spent = [], []
            for budget in ladder:
                result = estimate(counting_view(base), method, budget=budget, seed=seed).total()
                row.append(relative_error(result.phi[:, 0], reference_total))
                spent.append(int(result.n_evaluations))
            errors[method].append(row)
            used[method].append(spent)
    errors["auto"] = [[errors[auto_method(n, budget)][seed][j] for j, budget in enumerate(ladder)]
                      for seed in range(config.seeds)]
    used["auto"] = [[used[auto_method(n, budget)][seed][j] for j, budget in enumerate(ladder)]
                    for seed in range(config.seeds)]
    exact_fits = 2**n <= config.exact_cap
    cost, lower_bound = costs_from_curves(errors, used, ladder, reference["relative_stderr"],
                                          2**n if exact_fits else None, config.epsilons)
    return {"ladder": ladder, "errors": {m: np.asarray(e).tolist() for m, e in errors.items()},
            "evaluations": {m: np.asarray(u).tolist() for m, u in used.items()}, "cost": cost,
            "cost_lower_bound": lower_bound,
            "exact_evaluations": 2**n if exact_fits else None}


def costs_from_curves(
    errors: dict[str, Any],
    used: dict[str, Any],
    ladder: list[int],
    reference_stderr: float,
    exact_evaluations: int | None,
    epsilons: tuple[float, ...],
) -> tuple[dict, dict]:
    """The cost (and, where epsilon was not reached, a lower bound of it) of each estimator at each epsilon.

    ``errors[method]`` / ``used[method]``: ``[seeds][rungs]`` relative errors and evaluations along ``ladder``. Pure,
    so a report can read the costs at other epsilons off the stored curves of a finished bench.
    """
    cost: dict[str, dict[str, int | None]] = {}
    lower_bound: dict[str, dict[str, int | None]] = {}
    for method in errors:
        if not ladder:  # 2n already reaches 2**n: only exact enumeration is left
            cost[method] = {str(eps): exact_evaluations if method == "auto" else None for eps in epsilons}
            lower_bound[method] = {str(eps): None for eps in epsilons}
            continue
        method_errors = np.asarray(errors[method], dtype=float).reshape(-1, len(ladder))
        method_used = np.asarray(used[method]).reshape(-1, len(ladder))
        cost[method], lower_bound[method] = {}, {}
        worst = method_errors.max(axis=0)
        for eps in epsilons:
            key = str(eps)
            cost[method][key] = lower_bound[method][key] = None
            if reference_stderr > eps / 2:
                # The reference cannot tell errors of this size apart; but an error far above epsilon at the top
                # rung (by more than twice the reference's own error) still shows the budget was not enough.
                if float(method_errors[:, -1].min()) - 2 * reference_stderr > eps:
                    lower_bound[method][key] = int(method_used[:, -1].max())
                continue
            within = worst <= eps
            # the first rung from which every seed stays within epsilon on every larger rung
            stays = np.flip(np.cumprod(np.flip(within))).astype(bool)
            if stays.any():
                cost[method][key] = int(method_used[:, int(np.argmax(stays))].max())
            elif method == "auto" and exact_evaluations is not None:
                cost[method][key] = exact_evaluations
            else:
                lower_bound[method][key] = int(method_used[:, -1].max())
    return cost, lower_bound


# --- one utterance ----------------------------------------------------------------------------------------------


@dataclass
class PlayerSetResult:
    """What one player set gave on one utterance (the JSON of :func:`bench_utterance`)."""

    name: str
    n_players: int
    log10_coalitions: float
    reference_kind: str
    reference_relative_stderr: float
    phi_total: list[float]
    phi_on_words: list[float]
    concentration: dict
    concentration_on_words: dict
    profile: list[float]
    matched_accuracy: dict
    faithfulness: dict
    alignment_grid: list[list[float]]
    diagonal_score: float
    model_evaluations: int
    seconds: float


def faithfulness_figures(value, phi_on_words: np.ndarray, drops: np.ndarray, durations_s: np.ndarray,
                         random_aopc: float, answer_word: int | None) -> dict:
    """Deletion/insertion AOPC of a word ranking, the top-|phi| word test, the rank test and the answer word."""
    from scipy.stats import spearmanr

    order = ranking(phi_on_words)
    magnitude = np.abs(phi_on_words)
    top = int(np.argmax(magnitude))
    others = np.delete(np.arange(len(drops)), top)
    matched = int(others[np.argmin(np.abs(durations_s[others] - durations_s[top]))]) if others.size else top
    rho = spearmanr(magnitude, np.abs(drops)).statistic if len(drops) > 2 else float("nan")
    return {
        "deletion_curve": deletion_curve(value, order).tolist(),
        "insertion_curve": insertion_curve(value, order).tolist(),
        "aopc_deletion": aopc(deletion_curve(value, order), "deletion"),
        "aopc_insertion": aopc(insertion_curve(value, order), "insertion"),
        "aopc_random": random_aopc,
        "top_word": top,
        "top_word_drop": float(abs(drops[top])),
        "random_word_drop": float(np.mean(np.abs(drops[others]))) if others.size else float("nan"),
        "length_matched_word_drop": float(abs(drops[matched])),
        "spearman_abs_phi_vs_drop": float(rho) if rho == rho else float("nan"),
        "answer_word_rank": None if answer_word is None else int(np.flatnonzero(order == answer_word)[0]) + 1,
    }


def bench_utterance(item: BenchItem, backend: Any, aligner: Any, config: BenchConfig, progress: bool = False) -> dict:
    """Every figure of one utterance (see the module docstring) as a JSON-ready dict."""
    from sgpa.api import read_waveform
    from sgpa.attribution.diagnostics import log10_coalitions
    from sgpa.attribution.models import BACKEND_GRIDS
    from sgpa.pipeline import align

    started = time.perf_counter()
    waveform, audio_info = read_waveform(item.audio, item.sample_rate)
    grid = BACKEND_GRIDS[backend.name]
    words = align(waveform, item.transcript, aligner, grid=grid, sample_rate=16000)
    words.audio = audio_info
    if item.answer_word is not None and not 0 <= item.answer_word < words.n_words:
        raise InputError(f"answer_word {item.answer_word} is not a word index (the transcript has {words.n_words})")
    word_spans = np.array([[w.start, w.end] for w in words.words])
    response_words = [w.normalized or w.text for w in words.words]
    speech_start, speech_end = float(word_spans[0, 0]), float(word_spans[-1, 1])

    games: dict[str, Game] = {}
    prepared_games: dict[str, Any] = {}
    for name in config.player_sets:
        segmentation = player_segmentation(name, words, waveform, grid)
        prepared = backend.prepare(waveform, segmentation, prompt=item.prompt, masking=config.masking,
                                   normalization=config.normalization, response_words=response_words)
        prepared_games[name] = prepared
        games[name] = Game(prepared.log_probs, prepared.n_players, batch_size=prepared.batch_size,
                           null_players=prepared.null_players, progress=progress)

    words_game = games["words"]

    def word_value(coalitions: np.ndarray) -> np.ndarray:
        return words_game.values(coalitions).sum(axis=1)

    drops = single_word_drops(word_value, words.n_words)
    random_aopc = random_deletion_aopc(word_value, words.n_words, config.random_orders)
    durations = word_spans[:, 1] - word_spans[:, 0]
    loo = faithfulness_figures(word_value, drops, drops, durations, random_aopc, item.answer_word)

    results = {}
    for name in config.player_sets:
        clock = time.perf_counter()
        base = games[name]
        spans = np.array([[start, end] for _, start, end in player_spans(name, words, audio_info.duration_s)])
        reference = reference_attributions(base, config)
        phi = np.asarray(reference["result"].phi)  # players x response tokens
        phi_total = phi.sum(axis=1)
        on_words = phi_total if name in ("words", "words-raw") else map_onto_words(phi_total, spans, word_spans)
        grid_k = temporal_alignment(phi, spans.mean(axis=1), speech_start, speech_end, config.alignment_bins)
        results[name] = PlayerSetResult(
            name=name,
            n_players=base.n_players,
            log10_coalitions=log10_coalitions(base.n_players),
            reference_kind=reference["kind"],
            reference_relative_stderr=reference["relative_stderr"],
            phi_total=phi_total.tolist(),
            phi_on_words=np.asarray(on_words).tolist(),
            concentration=concentration(phi_total),
            concentration_on_words=concentration(on_words),
            profile=cumulative_profile(phi_total, spans, speech_start, speech_end, config.profile_points).tolist(),
            matched_accuracy=matched_accuracy(base, phi_total, reference, config),
            faithfulness=faithfulness_figures(word_value, np.asarray(on_words), drops, durations, random_aopc,
                                              item.answer_word),
            alignment_grid=grid_k.tolist(),
            diagonal_score=diagonal_score(grid_k),
            model_evaluations=int(base.n_evaluations),
            seconds=time.perf_counter() - clock,
        )
    modality = modality_figures(backend, waveform, words, item, config) if config.text_players else None
    return {
        "id": item.id,
        "audio": item.source or str(item.audio),
        "transcript": item.transcript,
        "prompt": item.prompt,
        "answer_word": item.answer_word,
        "words": [w.text for w in words.words],
        "duration_s": audio_info.duration_s,
        "response": prepared_games["words"].response.tokens,
        "leave_one_out": loo,
        "player_sets": {name: asdict(result) for name, result in results.items()},
        "modality": modality,
        "seconds": time.perf_counter() - started,
    }


def modality_figures(backend: Any, waveform: np.ndarray, words: Any, item: BenchItem, config: BenchConfig) -> dict:
    """The joint game of the spoken words and the prompt's words (a chat model's ``text_players``): its reference
    attributions' A-SHAP, T-SHAP and Generative SHAP (:func:`sgpa.attribution.diagnostics.modality_shares`)."""
    if backend.name == "ctc":
        raise InputError("text players need a chat model with a prompt (--backend lfm2-audio), not the CTC recogniser")
    prepared = backend.prepare(waveform, words, prompt=item.prompt, masking=config.masking,
                               normalization=config.normalization, text_players=True)
    game = Game(prepared.log_probs, prepared.n_players, batch_size=prepared.batch_size,
                null_players=prepared.null_players)
    reference = reference_attributions(game, config)
    is_audio = np.arange(prepared.n_players) < words.n_words
    return {
        "n_text_players": int(prepared.n_players - words.n_words),
        "reference_kind": reference["kind"],
        "model_evaluations": int(game.n_evaluations),
        **modality_shares(np.asarray(reference["result"].phi), is_audio, config.response_windows),
    }


# --- a resumable run over a dataset -----------------------------------------------------------------------------


class BenchRun:
    """An output folder holding one bench: ``utterances.jsonl`` (one line per finished utterance) and, written by
    :func:`sgpa.attribution.bench_report.write_report`, ``results.json``, ``report.md`` and plots.

    A line is appended (and fsync'ed) only when its utterance is complete; a line cut short by a killed process is
    dropped when the folder is opened again, so a rerun loses at most the utterance in flight.
    """

    def __init__(self, folder: Path, config: BenchConfig, meta: dict) -> None:
        self.folder = Path(folder)
        self.config = config
        self.meta = meta
        self.lines_path = self.folder / "utterances.jsonl"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create the output folder {self.folder}: {error.strerror}") from None
        if not os.access(self.folder, os.W_OK):
            raise InputError(f"the output folder {self.folder} is not writable")
        self.done = self._read_finished()

    def _read_finished(self) -> dict[str, dict]:
        if not self.lines_path.is_file():
            return {}
        raw = self.lines_path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]  # a last line without its newline was cut short
        if len(complete) != len(raw):
            with open(self.lines_path, "r+b") as handle:
                handle.truncate(len(complete))
        finished = {}
        for line in complete.decode("utf-8").splitlines():
            record = json.loads(line)
            if record.get("config_key") != self.config.key() or record.get("meta") != self.meta:
                raise InputError(
                    f"{self.folder} holds a bench run with other settings (model, masking or bench options); "
                    "use another output folder"
                )
            finished[record["id"]] = record
        return finished

    def add(self, record: dict) -> None:
        record = {**record, "config_key": self.config.key(), "meta": self.meta}
        line = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
        with open(self.lines_path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.done[record["id"]] = record

    def records(self) -> list[dict]:
        return list(self.done.values())


def run_bench(
    items: list[BenchItem],
    backend: Any,
    aligner: Any,
    config: BenchConfig,
    folder: Path,
    meta: dict,
    *,
    on_progress: Any = None,
) -> tuple[BenchRun, list[tuple[str, str]]]:
    """Bench every item not finished yet in ``folder``; bad items are listed, never the end of the run.

    ``on_progress(item, record_or_None, message)`` is called after every item (for a progress bar).
    """
    config = config.validate()
    run = BenchRun(folder, config, meta)
    failures = []
    for item in items:
        if item.id in run.done:
            if on_progress:
                on_progress(item, run.done[item.id], "already done")
            continue
        try:
            record = bench_utterance(item, backend, aligner, config)
        except InputError as error:
            message = " ".join(str(error).split())
            failures.append((item.id, message))
            if on_progress:
                on_progress(item, None, message)
            continue
        run.add(record)
        if on_progress:
            on_progress(item, record, "done")
    return run, failures


def with_quick(config: BenchConfig) -> BenchConfig:
    """``config`` with the :meth:`BenchConfig.quick` sizes (its player sets, masking and epsilons kept)."""
    quick = BenchConfig.quick()
    return replace(config, seeds=quick.seeds, max_budget_per_player=quick.max_budget_per_player,
                   reference_budget_per_player=quick.reference_budget_per_player, random_orders=quick.random_orders,
                   exact_cap=quick.exact_cap)
