"""What every sub-command shares: bad input becomes one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from sgpa.errors import InputError

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """Print ``sgpa: error: <message>`` as a single line on stderr and exit with code 2."""
    one_line = " ".join(str(message).split())
    print(f"sgpa: error: {one_line}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click callback so an :class:`InputError` ends the program with one clear line."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as error:
            fail(str(error))

    return wrapper
