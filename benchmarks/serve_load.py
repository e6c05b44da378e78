"""A bounded load test of `sgpa serve` on loopback, and the server's alignment speed next to `sgpa align`.

1. Steady load: C concurrent clients each send R alignment requests (data_samples/slt_0000.wav, 3.4 s) to one
   server process: throughput, p50/p95/max latency, every status seen, and the server's resident memory sampled
   every 0.2 s (peak, the first and last tenth, and each quarter of the run: flat means no growth per request).
2. Burst beyond the limits: B simultaneous alignments (more than --max-aligns + --max-waiting-aligns) and more
   explanation jobs than the queue holds; only 200/503 and 202/429 may come back.
3. Side by side, one file at a time: the server vs one `sgpa align` process per file (loading the model each time),
   on the same N short files; the ratio of seconds per file.

Writes benchmarks/results/serve_load.{json,md}.

    python benchmarks/serve_load.py --clients 8 --requests 50
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SAMPLES = ROOT / "data_samples"
SHORT_FILES = ["slt_0000", "slt_0001", "kal_0000", "awb_0000", "espeak_f3_0000", "slt_task_0000",
               "espeak_f3_task_0000", "librivox_0000"]


class MemorySampler:
    """The resident set size of one process, sampled on a thread every ``interval_s``."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples_mib: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples_mib.append(self.process.memory_info().rss / 2**20)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def align_request(client, name: str) -> tuple[int, float]:
    audio = (SAMPLES / f"{name}.wav").read_bytes()
    transcript = (SAMPLES / f"{name}.txt").read_text().strip()
    started = time.perf_counter()
    response = client.post("/v1/align", files={"audio": (f"{name}.wav", audio)}, data={"transcript": transcript})
    return response.status_code, time.perf_counter() - started


def steady_load(url: str, pid: int, n_clients: int, n_requests: int) -> dict:
    import httpx

    def client_run(_: int) -> list[tuple[int, float]]:
        with httpx.Client(base_url=url, timeout=300) as client:
            return [align_request(client, "slt_0000") for _ in range(n_requests)]

    with MemorySampler(pid) as memory:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(n_clients) as pool:
            results = [item for batch in pool.map(client_run, range(n_clients)) for item in batch]
        wall = time.perf_counter() - started
    latencies = np.array([seconds for _, seconds in results])
    statuses = Counter(status for status, _ in results)
    tenth = max(1, len(memory.samples_mib) // 10)
    quarters = np.array_split(np.array(memory.samples_mib), 4)
    return {
        "clients": n_clients, "requests_per_client": n_requests, "requests": len(results),
        "wall_seconds": round(wall, 2), "throughput_per_s": round(len(results) / wall, 2),
        "latency_s": {"p50": round(float(np.percentile(latencies, 50)), 3),
                      "p95": round(float(np.percentile(latencies, 95)), 3), "max": round(float(latencies.max()), 3)},
        "statuses": dict(statuses), "failures": sum(n for status, n in statuses.items() if status != 200),
        "rss_mib": {"start": round(memory.samples_mib[0], 1), "peak": round(max(memory.samples_mib), 1),
                    "first_tenth_mean": round(float(np.mean(memory.samples_mib[:tenth])), 1),
                    "last_tenth_mean": round(float(np.mean(memory.samples_mib[-tenth:])), 1),
                    "quarter_means": [round(float(q.mean()), 1) for q in quarters]},
    }


def burst(url: str, n_aligns: int, n_jobs: int) -> dict:
    import httpx

    def one(_: int) -> int:
        with httpx.Client(base_url=url, timeout=300) as client:
            return align_request(client, "librivox_0000")[0]

    with concurrent.futures.ThreadPoolExecutor(n_aligns) as pool:
        align_statuses = Counter(pool.map(one, range(n_aligns)))
    job_statuses: Counter = Counter()
    audio = (SAMPLES / "slt_0000.wav").read_bytes()
    with httpx.Client(base_url=url, timeout=300) as client:
        accepted = []
        for _ in range(n_jobs):
            response = client.post("/v1/explanations", files={"audio": ("slt_0000.wav", audio)},
                                   data={"transcript": "the old man found a small red box near the river"})
            job_statuses[response.status_code] += 1
            if response.status_code == 202:
                accepted.append(response.json()["id"])
        for job_id in accepted:  # leave the server idle for the next phase
            client.delete(f"/v1/explanations/{job_id}")
    allowed = {200, 503}, {202, 429}
    return {
        "simultaneous_aligns": n_aligns, "align_statuses": dict(align_statuses),
        "jobs_submitted": n_jobs, "job_statuses": dict(job_statuses),
        "only_allowed_statuses": set(align_statuses) <= allowed[0] and set(job_statuses) <= allowed[1],
    }


def side_by_side(url: str, names: list[str]) -> dict:
    import httpx

    sgpa_command = str(Path(sys.executable).with_name("sgpa"))
    with httpx.Client(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        statuses = [align_request(client, name)[0] for name in names]
        server_seconds = time.perf_counter() - started
    assert set(statuses) == {200}, statuses
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        for name in names:
            subprocess.run([sgpa_command, "align", str(SAMPLES / f"{name}.wav"), "-o", folder, "-q"], check=True,
                           capture_output=True)
        cli_seconds = time.perf_counter() - started
    return {
        "files": names, "server_seconds_per_file": round(server_seconds / len(names), 3),
        "cli_process_seconds_per_file": round(cli_seconds / len(names), 3),
        "speedup": round(cli_seconds / server_seconds, 1),
    }


def markdown(results: dict) -> str:
    steady, burst_result, pair = results["steady"], results["burst"], results["side_by_side"]
    return "\n".join([
        "# `sgpa serve` under load (loopback)", "",
        f"Machine: {results['machine']}. Server: `sgpa serve {' '.join(results['server_args'])}` "
        "(shipped sgpa-ctc-en aligner). Written by `benchmarks/serve_load.py`.", "",
        "## Steady load", "",
        f"{steady['clients']} concurrent clients x {steady['requests_per_client']} alignment requests of "
        f"data_samples/slt_0000.wav (3.4 s): {steady['requests']} requests in {steady['wall_seconds']} s.", "",
        "| throughput | p50 latency | p95 latency | max latency | failures | statuses |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {steady['throughput_per_s']} req/s | {steady['latency_s']['p50']} s | {steady['latency_s']['p95']} s | "
        f"{steady['latency_s']['max']} s | {steady['failures']} | {steady['statuses']} |", "",
        f"Server RSS: {steady['rss_mib']['start']} MiB at the start, peak {steady['rss_mib']['peak']} MiB; mean of "
        f"the first tenth {steady['rss_mib']['first_tenth_mean']} MiB, of the last tenth "
        f"{steady['rss_mib']['last_tenth_mean']} MiB; by quarter of the run: "
        f"{', '.join(str(q) for q in steady['rss_mib']['quarter_means'])} MiB.", "",
        "## Burst beyond the limits", "",
        f"{burst_result['simultaneous_aligns']} simultaneous alignments: {burst_result['align_statuses']}; "
        f"{burst_result['jobs_submitted']} explanation jobs submitted at once: {burst_result['job_statuses']}. "
        f"Only 200/503 and 202/429: {burst_result['only_allowed_statuses']}.", "",
        "## One file at a time: the server vs one `sgpa align` process per file", "",
        f"{len(pair['files'])} short files ({', '.join(pair['files'])}): server "
        f"{pair['server_seconds_per_file']} s per file, `sgpa align` process {pair['cli_process_seconds_per_file']} s "
        f"per file: **{pair['speedup']}x** faster with the model loaded once.", "",
    ])


def main(argv: list[str] | None = None) -> None:
    from sgpa.service.process import start_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--burst", type=int, default=30, help="Simultaneous alignments in the burst.")
    parser.add_argument("--max-aligns", type=int, default=2)
    parser.add_argument("--max-waiting-aligns", type=int, default=8)
    parser.add_argument("--max-queue", type=int, default=4)
    args = parser.parse_args(argv)
    server_args = ["--max-aligns", str(args.max_aligns), "--max-waiting-aligns", str(args.max_waiting_aligns),
                   "--max-queue", str(args.max_queue)]
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "data", *server_args)
        try:
            print(f"server at {server.url} (pid {server.pid})", file=sys.stderr)
            steady = steady_load(server.url, server.pid, args.clients, args.requests)
            print(f"steady: {steady}", file=sys.stderr)
            burst_result = burst(server.url, args.burst, args.max_queue + 6)
            print(f"burst: {burst_result}", file=sys.stderr)
            pair = side_by_side(server.url, SHORT_FILES)
            print(f"side by side: {pair}", file=sys.stderr)
        finally:
            server.stop()
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "server_args": server_args, "steady": steady, "burst": burst_result, "side_by_side": pair,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "serve_load.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(RESULTS / "serve_load.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
