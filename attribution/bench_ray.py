"""``sgpa bench --executor ray``: utterances as Ray tasks on a local or existing Ray cluster.

Each worker is a Ray actor that loads the model (and the aligner) once, through the same
:func:`sgpa.api.load_backend` / :func:`sgpa.api.load_aligner` the in-process bench uses, and runs
:func:`sgpa.attribution.bench.bench_utterance` on the items it is handed. The driver keeps every actor busy with
one item at a time and appends each finished utterance to the run folder as soon as it arrives, so a Ray run
resumes exactly like a local one. Ray is imported only here, and only when this executor is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgpa.attribution.bench import BenchConfig, BenchItem, BenchRun, bench_utterance
from sgpa.errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """What every worker loads: the arguments of :func:`sgpa.api.load_backend` and of the aligner."""

    model: str | None
    backend: str | None
    align_model: str | None
    device: str = "cpu"


class BenchWorker:
    """One Ray actor: the backend and the aligner, loaded once; benches the items it is given."""

    def __init__(self, spec: ModelSpec, threads: int) -> None:
        import torch

        from sgpa.api import load_aligner, load_backend

        torch.set_num_threads(max(1, threads))
        self.backend = load_backend(spec.model, spec.backend, device=spec.device)
        if self.backend.name == "ctc" and spec.align_model is None:
            self.aligner = self.backend.acoustic_model  # as the local bench does: one CTC model
        else:
            self.aligner = load_aligner(spec.align_model, spec.device)

    def run(self, item: BenchItem, config: BenchConfig) -> tuple[str, dict | str]:
        try:
            return "done", bench_utterance(item, self.backend, self.aligner, config)
        except InputError as error:
            return "failed", " ".join(str(error).split())


def run_bench_ray(
    items: list[BenchItem],
    spec: ModelSpec,
    config: BenchConfig,
    folder: Path,
    meta: dict,
    *,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_worker: float | None = None,
    on_progress: Any = None,
) -> tuple[BenchRun, list[tuple[str, str]]]:
    """Like :func:`sgpa.attribution.bench.run_bench`, with ``workers`` Ray actors (default: one per two CPUs of the
    cluster). Connects to ``address`` (``"auto"`` or ``ray://...``), or to the Ray already initialised in this
    process, or starts a local one. ``gpus_per_worker`` defaults to 1 on a CUDA device, else 0."""
    import ray

    config = config.validate()
    run = BenchRun(folder, config, meta)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise InputError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {error}") from error
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = workers or max(1, cpus // 2)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    threads = max(1, cpus // workers)
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if str(spec.device).startswith("cuda") else 0.0
    actor_class = ray.remote(num_cpus=threads, num_gpus=gpus_per_worker)(BenchWorker)
    pending_items = []
    for item in items:
        if item.id in run.done:
            if on_progress:
                on_progress(item, run.done[item.id], "already done")
        else:
            pending_items.append(item)
    actors = [actor_class.remote(spec, threads) for _ in range(min(workers, len(pending_items)))]
    config_ref = ray.put(config)
    in_flight: dict[Any, tuple[Any, BenchItem]] = {}
    queue = list(pending_items)
    for actor in actors:
        if queue:
            item = queue.pop(0)
            in_flight[actor.run.remote(item, config_ref)] = (actor, item)
    failures: list[tuple[str, str]] = []
    try:
        while in_flight:
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            actor, item = in_flight.pop(ready)
            status, payload = ray.get(ready)
            if status == "done":
                run.add(payload)
                if on_progress:
                    on_progress(item, payload, "done")
            else:
                failures.append((item.id, payload))
                if on_progress:
                    on_progress(item, None, payload)
            if queue:
                next_item = queue.pop(0)
                in_flight[actor.run.remote(next_item, config_ref)] = (actor, next_item)
    finally:
        for actor in actors:
            ray.kill(actor)
    return run, failures
