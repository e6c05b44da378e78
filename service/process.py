"""Run ``sgpa serve`` as a separate process on a free loopback port, and know when it is ready.

Used by the tests and ``benchmarks/serve_load.py``, which talk to a real server over HTTP, and handy in a notebook.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LISTENING = re.compile(r"sgpa serve: (http://\S+?)/ ")


@dataclass
class ServerProcess:
    """A running ``sgpa serve``: its base URL (no trailing slash), process and log file."""

    process: subprocess.Popen
    url: str
    data_dir: Path
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM (a graceful shutdown: running jobs are queued again), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """``kill -9``: no cleanup of any kind."""
        self.process.kill()
        self.process.wait()


def start_server(data_dir: str | Path, *args: str, host: str = "127.0.0.1", ready_timeout_s: float = 120.0,
                 env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``sgpa serve --port 0 --data-dir DATA_DIR ARGS…`` and return once ``/healthz`` answers 200.

    Raises ``RuntimeError`` with the server's log if it exits or is not ready within ``ready_timeout_s``.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.with_name(data_dir.name + ".log")
    command = [sys.executable, "-m", "sgpa.cli.main", "serve", "--host", host, "--port", "0",
               "--data-dir", str(data_dir), "--log-level", "warning", *args]
    log_file = open(log_path, "w", encoding="utf-8")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    log_file.close()
    deadline = time.monotonic() + ready_timeout_s
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sgpa serve exited with {process.returncode}:\n{log_path.read_text()}")
        if url is None:
            match = _LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
            url = match.group(1) if match else None
        if url is not None:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return ServerProcess(process, url, data_dir, log_path, list(args))
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"sgpa serve was not ready after {ready_timeout_s} s:\n{log_path.read_text()}")


def headless_chromium(width_px: int = 1300, height_px: int = 1200) -> Any:
    """A selenium driver for Debian's headless Chromium through the system chromedriver (nothing is downloaded);
    audio may play without a user gesture. ``RuntimeError`` when chromium or chromedriver is not installed."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver_path is None:
        raise RuntimeError("Debian's chromium and chromium-driver are not installed (make speech-tools installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width_px},{height_px}",
                     "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)
