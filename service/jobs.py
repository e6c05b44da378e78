"""Durable explanation jobs: their state in an embedded SQLite database, their files in one folder per job.

A job's life: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled`` (a queued or running job can be
cancelled). What survives a crash or ``kill -9``:

- a job row is inserted only after its audio file is completely on disk, so a queued job can always run;
- results are written into the job's folder atomically (all files together or none) *before* the row says
  ``done``, so a ``done`` job always has its files;
- at start-up, jobs left ``running`` by a dead process are queued again (at most :data:`MAX_ATTEMPTS` times in all,
  so a job that kills the server every time ends ``failed`` instead of looping).

SQLite is used through one connection guarded by a lock: the service's few threads (HTTP handlers, workers) make
short transactions, far below what a single connection serves.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
UNFINISHED = (QUEUED, RUNNING)
#: Runs of one job before it is given up (a job whose run killed the server is retried after a restart).
MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    parameters TEXT NOT NULL,
    audio_name TEXT NOT NULL,
    evaluations_done INTEGER NOT NULL DEFAULT 0,
    evaluations_planned INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
"""


@dataclass
class Job:
    """One explanation job as stored: its parameters (the request's fields), state and progress."""

    id: str
    created_at: float
    updated_at: float
    status: str
    parameters: dict[str, Any]
    audio_name: str
    evaluations_done: int
    evaluations_planned: int | None
    error: str | None
    attempts: int

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it (no server-side paths)."""
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "audio_name": self.audio_name,
            "parameters": self.parameters,
            "progress": {"evaluations_done": self.evaluations_done, "evaluations_planned": self.evaluations_planned},
            "error": self.error,
            "attempts": self.attempts,
        }


class JobStore:
    """The jobs of one data folder: ``<data_dir>/sgpa-serve.sqlite3`` and ``<data_dir>/jobs/<id>/``."""

    AUDIO_FILE = "audio"  # the upload, under a fixed name: a client's file name is a label, never a path
    EXPLANATION_FILE = "explanation.json"
    PLOT_FILE = "plot.png"
    SEGMENTS_FILE = "segments.json"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.data_dir / "sgpa-serve.sqlite3", check_same_thread=False,
                                           isolation_level=None)  # autocommit; transactions are explicit
        self._connection.row_factory = sqlite3.Row
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")  # a committed row survives power loss too
            self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # --- files ----------------------------------------------------------------------------------------

    def folder(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def file(self, job_id: str, name: str) -> Path:
        return self.folder(job_id) / name

    # --- life cycle -----------------------------------------------------------------------------------

    def recover(self) -> int:
        """At start-up: requeue the jobs a dead process left ``running`` (fail those out of attempts), remove
        folders of uploads that never became a job. Returns how many jobs were queued again."""
        now = time.time()
        with self._lock:
            self._connection.execute(
                "UPDATE jobs SET status=?, updated_at=?, error=? WHERE status=? AND attempts>=?",
                (FAILED, now, f"the server stopped during each of {MAX_ATTEMPTS} runs of this job", RUNNING,
                 MAX_ATTEMPTS))
            requeued = self._connection.execute(
                "UPDATE jobs SET status=?, updated_at=?, evaluations_done=0 WHERE status=?",
                (QUEUED, now, RUNNING)).rowcount
            known = {row["id"] for row in self._connection.execute("SELECT id FROM jobs")}
        for folder in self.jobs_dir.iterdir():
            if folder.is_dir() and folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
        return requeued

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its (empty) folder, for the upload to be written into before :meth:`add`."""
        job_id = uuid.uuid4().hex
        folder = self.folder(job_id)
        folder.mkdir(parents=True)
        return job_id, folder

    def add(self, job_id: str, parameters: dict[str, Any], audio_name: str) -> Job:
        now = time.time()
        with self._lock:
            self._connection.execute(
                "INSERT INTO jobs (id, created_at, updated_at, status, parameters, audio_name) VALUES (?,?,?,?,?,?)",
                (job_id, now, now, QUEUED, json.dumps(parameters), audio_name))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._connection.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def count(self, *statuses: str) -> int:
        marks = ",".join("?" * len(statuses))
        with self._lock:
            return self._connection.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})",
                                            statuses).fetchone()[0]

    def list(self, limit: int = 100) -> list[Job]:
        with self._lock:
            rows = self._connection.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_job(row) for row in rows]

    def claim_next(self) -> Job | None:
        """The oldest queued job, marked ``running`` (one attempt more), or ``None``."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                row = self._connection.execute(
                    "SELECT id FROM jobs WHERE status=? ORDER BY created_at LIMIT 1", (QUEUED,)).fetchone()
                if row is not None:
                    self._connection.execute(
                        "UPDATE jobs SET status=?, updated_at=?, attempts=attempts+1, evaluations_done=0, "
                        "evaluations_planned=NULL WHERE id=?", (RUNNING, time.time(), row["id"]))
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        return None if row is None else self.get(row["id"])

    def set_progress(self, job_id: str, done: int, planned: int | None) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE jobs SET evaluations_done=?, evaluations_planned=?, updated_at=? WHERE id=? AND status=?",
                (done, planned, time.time(), job_id, RUNNING))

    def finish(self, job_id: str, status: str, error: str | None = None) -> bool:
        """Move a running job to ``status``; False when it is no longer running (it was cancelled meanwhile)."""
        with self._lock:
            changed = self._connection.execute(
                "UPDATE jobs SET status=?, error=?, updated_at=? WHERE id=? AND status=?",
                (status, error, time.time(), job_id, RUNNING)).rowcount
        return changed == 1

    def cancel(self, job_id: str) -> bool:
        """Mark a queued or running job ``cancelled``; False when it had already finished."""
        with self._lock:
            changed = self._connection.execute(
                f"UPDATE jobs SET status=?, updated_at=? WHERE id=? AND status IN ({','.join('?' * len(UNFINISHED))})",
                (CANCELLED, time.time(), job_id, *UNFINISHED)).rowcount
        return changed == 1

    def remove(self, job_id: str) -> None:
        """Forget a finished job and delete its files."""
        with self._lock:
            self._connection.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        shutil.rmtree(self.folder(job_id), ignore_errors=True)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"], status=row["status"],
        parameters=json.loads(row["parameters"]), audio_name=row["audio_name"],
        evaluations_done=row["evaluations_done"], evaluations_planned=row["evaluations_planned"],
        error=row["error"], attempts=row["attempts"],
    )
