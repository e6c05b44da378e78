"""``sgpa serve``: run the alignment and explanation service (FastAPI on uvicorn) with its web viewer."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import click

from sgpa.cli.common import output_folder, reports_input_errors
from sgpa.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_model(value: str) -> tuple[str, str]:
    """``NAME=SOURCE`` or a bare ``SOURCE`` (a hub id or folder; its last part becomes the name)."""
    name, separator, source = value.partition("=")
    if not separator:
        source, name = value, Path(value.rstrip("/")).name
    if not name or not source:
        raise InputError(f"--model {value!r}: give NAME=SOURCE (a hub id or a local folder)")
    return name, source


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket, so that a taken port is one clear error before any model loads."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(128)
    return sock


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; anything else should go with --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: a free one, printed at start).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("sgpa-serve-data"), show_default=True,
              help="Job database, uploads and results (kept across restarts).")
@click.option("--model", "models", multiple=True, metavar="NAME=SOURCE",
              help="A model clients may explain (hub id or local folder; repeat for several; the first is the "
                   "default). Default: the shipped sgpa-ctc-en and sgpa-lfm2-oracle.")
@click.option("--align-model", default=None, help="CTC model for alignment. Default: the shipped sgpa-ctc-en.")
@click.option("--token", envvar="SGPA_SERVE_TOKEN", default=None,
              help="Require 'Authorization: Bearer TOKEN' on every request (or set SGPA_SERVE_TOKEN).")
@click.option("--workers", type=int, default=1, show_default=True, help="Explanation jobs running at once.")
@click.option("--max-queue", type=int, default=32, show_default=True, help="Jobs waiting to run (429 above).")
@click.option("--max-aligns", type=int, default=2, show_default=True, help="Alignments running at once.")
@click.option("--max-waiting-aligns", type=int, default=8, show_default=True,
              help="Alignments waiting for a slot (503 above).")
@click.option("--max-upload-mb", type=float, default=25.0, show_default=True, help="Largest upload (413 above).")
@click.option("--max-duration", type=float, default=300.0, show_default=True, help="Longest audio in s (422 above).")
@click.option("--max-budget", type=int, default=20_000, show_default=True,
              help="Most model evaluations per explanation (422 above).")
@click.option("--preload", multiple=True, help="Model names to load at start (the aligner always is).")
@click.option("--device", default="cpu", show_default=True, help="Torch device for the models.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@reports_input_errors
def serve(host: str, port: int, data_dir: Path, models: tuple[str, ...], align_model: str | None,
          token: str | None, workers: int, max_queue: int, max_aligns: int, max_waiting_aligns: int,
          max_upload_mb: float, max_duration: float, max_budget: int, preload: tuple[str, ...], device: str,
          log_level: str) -> None:
    """Serve alignment and explanations over HTTP, with a web viewer at /.

    POST /v1/align, POST /v1/explanations (a job), GET /v1/explanations/{id}, GET /v1/models, GET /healthz;
    OpenAPI docs at /docs. Jobs survive restarts (SQLite in --data-dir).
    """
    try:
        import uvicorn

        from sgpa.service.app import ServiceConfig, create_app, default_models
        from sgpa.service.worker import ModelEntry
    except ImportError as error:
        raise InputError(f"sgpa serve needs the serve extra ({error.name} is missing): "
                         "pip install 'sgpa[serve]'") from None
    from sgpa.attribution.models import detect_backend

    entries = default_models()
    if models:
        entries = [ModelEntry(name, detect_backend(source), source) for name, source in map(parse_model, models)]
    config = ServiceConfig(
        data_dir=output_folder(data_dir), models=entries, align_model=align_model, token=token, workers=workers,
        max_queued_jobs=max_queue, max_concurrent_aligns=max_aligns, max_waiting_aligns=max_waiting_aligns,
        max_upload_bytes=int(max_upload_mb * 2**20), max_duration_s=max_duration, max_budget=max_budget,
        preload=preload, device=device,
    ).validate()
    if token is None and host not in LOOPBACK:
        click.echo(f"sgpa: warning: listening on {host} without --token: anyone who reaches it can use it", err=True)
    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=10))
    click.echo(f"sgpa serve: http://{host}:{bound_port}/ (data in {data_dir})", err=True)
    sys.stderr.flush()
    server.run(sockets=[sock])
