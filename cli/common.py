"""What every sub-command shares: bad input becomes one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgpa.errors import InputError

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """Print ``sgpa: error: <message>`` as a single line on stderr and exit with code 2."""
    one_line = " ".join(str(message).split())
    print(f"sgpa: error: {one_line}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def output_folder(path: Path) -> Path:
    """``path`` created if needed and checked writable, before any work is done; ``InputError`` otherwise."""
    if path.exists() and not path.is_dir():
        raise InputError(f"the output directory {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output directory {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"the output directory {path} is not writable")
    return path


def exit_cleanly_on_signals() -> None:
    """SIGTERM becomes ``SystemExit(143)``, so that the cleanup of half-written files runs as for an error (the
    default action would end the process on the spot, leaving temporary files behind); SIGINT is handled in
    :func:`sgpa.cli.main.main` (exit 130)."""

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click callback so an :class:`InputError` ends the program with one clear line."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as error:
            fail(str(error))

    return wrapper
