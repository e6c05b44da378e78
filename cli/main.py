"""Entry point of the ``sgpa`` command: a click group; each sub-command lives in its own module."""

from __future__ import annotations

import sys

import click

from sgpa import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgpa")
def cli() -> None:
    """Word-level Shapley explanations of audio-language models (SGPA)."""


def _register_commands() -> None:
    from sgpa.cli.align import align
    from sgpa.cli.bench import bench
    from sgpa.cli.explain import explain
    from sgpa.cli.serve import serve

    cli.add_command(align)
    cli.add_command(explain)
    cli.add_command(bench)
    cli.add_command(serve)


def main() -> None:
    from sgpa.cli.common import exit_cleanly_on_signals

    exit_cleanly_on_signals()
    _register_commands()
    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C: half-written files were removed on the way up
        print("sgpa: interrupted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
