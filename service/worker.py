"""The models the service holds (loaded once) and the bounded pool of threads that runs explanation jobs.

Workers are threads of the server process, so every job shares the models the process loaded once (through
:func:`sgpa.api.load_aligner` / :func:`sgpa.api.load_backend`, which keep them). A job reports progress through the
game's ``on_progress`` hook, and the same hook is where a cancelled job stops: it raises, the estimator unwinds, and
nothing of the job is written.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgpa.errors import InputError
from sgpa.service.jobs import CANCELLED, DONE, FAILED, QUEUED, Job, JobStore

log = logging.getLogger("sgpa.serve")

#: Progress is written to the database at most this often per job (the in-memory figure is always current).
PROGRESS_WRITE_INTERVAL_S = 0.5


@dataclass(frozen=True)
class ModelEntry:
    """A model the service explains, named by the server: clients choose a name, never a path."""

    name: str
    backend: str
    source: str | None  # hub id or local folder; None = the backend's shipped model

    def to_dict(self, default: bool) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "default": default}


class Models:
    """The aligner and the explained models, each loaded on first use (or by :meth:`preload`) and then kept."""

    def __init__(self, entries: list[ModelEntry], align_model: str | None, device: str = "cpu") -> None:
        if not entries:
            raise InputError("the service needs at least one model to explain")
        names = [entry.name for entry in entries]
        if len(set(names)) != len(names):
            raise InputError(f"model names must be unique, got {', '.join(names)}")
        self.entries = {entry.name: entry for entry in entries}
        self.default_name = entries[0].name
        self.align_model = align_model
        self.device = device
        self._lock = threading.Lock()  # two threads asking for one model at once load it once
        self.loaded: set[str] = set()

    def entry(self, name: str | None) -> ModelEntry:
        name = name or self.default_name
        if name not in self.entries:
            raise InputError(f"unknown model {name!r}; this server explains {', '.join(self.entries)}")
        return self.entries[name]

    def aligner(self) -> Any:
        from sgpa.api import load_aligner

        with self._lock:
            model = load_aligner(self.align_model, self.device)
            self.loaded.add("aligner")
        return model

    def backend(self, name: str | None) -> Any:
        from sgpa.api import load_backend

        entry = self.entry(name)
        with self._lock:
            backend = load_backend(entry.source, entry.backend, device=self.device)
            self.loaded.add(entry.name)
        return backend

    def preload(self, names: list[str]) -> None:
        self.aligner()
        for name in names:
            self.backend(name)


class JobStopped(Exception):
    """Raised inside a running job's progress hook: cancelled by a client, or interrupted by a shutdown."""


class WorkerPool:
    """``n_workers`` threads taking queued jobs from ``store`` oldest first, running them with ``models``."""

    def __init__(self, store: JobStore, models: Models, n_workers: int = 1,
                 max_duration_s: float | None = None) -> None:
        if n_workers < 1:
            raise InputError(f"the service needs at least one worker, not {n_workers}")
        self.store = store
        self.models = models
        self.n_workers = n_workers
        self.max_duration_s = max_duration_s
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._running: dict[str, threading.Event] = {}  # job id -> "stop it" flag
        self._progress: dict[str, tuple[int, int | None]] = {}
        self._threads: list[threading.Thread] = []

    # --- control --------------------------------------------------------------------------------------

    def start(self) -> None:
        for number in range(self.n_workers):
            thread = threading.Thread(target=self._work, name=f"sgpa-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """A job was queued: wake an idle worker."""
        with self._wake:
            self._wake.notify()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs; interrupt the running ones (they are queued again, to run after a restart)."""
        self._stopping.set()
        for flag in list(self._running.values()):
            flag.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    def cancel(self, job_id: str) -> None:
        """Stop a running job at its next model call (the store already says ``cancelled``)."""
        flag = self._running.get(job_id)
        if flag is not None:
            flag.set()

    def progress(self, job_id: str) -> tuple[int, int | None] | None:
        """The current ``(done, planned)`` of a running job, fresher than the database's."""
        return self._progress.get(job_id)

    @property
    def n_running(self) -> int:
        return len(self._running)

    # --- the worker loop ------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            job = self.store.claim_next()
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            stop = threading.Event()
            self._running[job.id] = stop
            try:
                self._run(job, stop)
            finally:
                self._running.pop(job.id, None)
                self._progress.pop(job.id, None)

    def _run(self, job: Job, stop: threading.Event) -> None:
        started = time.perf_counter()
        last_write = [0.0]

        def on_progress(done: int, planned: int | None) -> None:
            self._progress[job.id] = (done, planned)
            now = time.perf_counter()
            if now - last_write[0] >= PROGRESS_WRITE_INTERVAL_S:
                self.store.set_progress(job.id, done, planned)
                last_write[0] = now
            if stop.is_set():
                raise JobStopped

        try:
            outputs = run_explanation(job, self.store.folder(job.id), self.models, on_progress, self.max_duration_s)
        except JobStopped:
            if self._stopping.is_set() and self.store.get(job.id).status != CANCELLED:
                self._requeue(job.id)
            log.info("job %s stopped after %.1f s", job.id, time.perf_counter() - started)
            return
        except InputError as error:
            self.store.finish(job.id, FAILED, " ".join(str(error).split()))
            log.info("job %s failed: %s", job.id, error)
            return
        except Exception as error:  # a bug: the job fails, the server keeps serving, the log has the traceback
            log.error("job %s: internal error\n%s", job.id, traceback.format_exc())
            self.store.finish(job.id, FAILED, f"internal error: {type(error).__name__}: {error}")
            return
        if not self.store.finish(job.id, DONE):  # cancelled while its files were being written
            for path in outputs:
                path.unlink(missing_ok=True)
        else:
            log.info("job %s done in %.1f s", job.id, time.perf_counter() - started)

    def _requeue(self, job_id: str) -> None:
        self.store.finish(job_id, QUEUED)


def run_explanation(job: Job, folder: Path, models: Models, on_progress: Any,
                    max_duration_s: float | None) -> list[Path]:
    """Align and explain a job's audio, and write its result files together (JSON, segments, TextGrid, plots)."""
    from sgpa.api import align, explain
    from sgpa.attribution.models import BACKEND_GRIDS
    from sgpa.audio import load_audio
    from sgpa.io import write_together
    from sgpa.pipeline import AlignConfig, SAMPLE_RATE
    from sgpa.textgrid import save_textgrid

    parameters = job.parameters
    waveform, audio_info = load_audio(folder / JobStore.AUDIO_FILE, max_duration_s=max_duration_s)
    audio_info.path = job.audio_name  # what the client called it; the server's path stays private
    backend = models.backend(parameters["model"])
    config = AlignConfig(**parameters.get("align", {})).with_overrides(grid=BACKEND_GRIDS[backend.name])
    segmentation = align(waveform, parameters["transcript"], aligner=models.aligner(), config=config,
                         sample_rate=SAMPLE_RATE)
    explanation = explain(
        waveform, segmentation, backend=backend, prompt=parameters.get("prompt"), masking=parameters.get("masking"),
        normalization=parameters.get("normalization"), estimator=parameters.get("estimator", "auto"),
        budget=parameters.get("budget"),
        tolerance=parameters.get("tolerance"), seed=parameters.get("seed", 0),
        text_players=parameters.get("text_players", False), on_progress=on_progress,
    )
    # Both were computed on the decoded samples; what they describe is the uploaded file (its sha256, its label).
    segmentation.audio = audio_info
    explanation.audio = {"path": audio_info.path, "sha256": audio_info.sha256, "duration_s": audio_info.duration_s,
                         "sample_rate": audio_info.sample_rate}
    figure = explanation.plot()
    spectrogram = spectrogram_image(waveform, SAMPLE_RATE)
    json_text = explanation.to_json() + "\n"
    segments_text = segmentation.to_json() + "\n"
    return write_together([
        (folder / JobStore.EXPLANATION_FILE, lambda tmp: tmp.write_text(json_text, encoding="utf-8")),
        (folder / JobStore.SEGMENTS_FILE, lambda tmp: tmp.write_text(segments_text, encoding="utf-8")),
        (folder / "words.TextGrid", lambda tmp: save_textgrid(segmentation, tmp)),
        (folder / JobStore.PLOT_FILE, lambda tmp: figure.savefig(tmp, format="png", dpi=110)),
        (folder / "spectrogram.png", lambda tmp: spectrogram.savefig(tmp, format="png")),
    ])


def spectrogram_image(waveform: Any, sample_rate: int, width_px: int = 1200, height_px: int = 240) -> Any:
    """A bare log-mel spectrogram (no axes or margins: its x axis spans exactly the audio), for the viewer to lay
    under its word spans. Returns a matplotlib Figure of ``width_px`` x ``height_px`` pixels."""
    import librosa
    import numpy as np
    from matplotlib.figure import Figure

    mel = librosa.feature.melspectrogram(y=np.asarray(waveform, dtype=np.float32), sr=sample_rate, n_fft=400,
                                         hop_length=160, n_mels=80, fmax=sample_rate / 2)
    decibels = librosa.power_to_db(mel, ref=np.max, top_db=80.0)
    dpi = 100
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(decibels, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
    axes.set_axis_off()
    return figure
