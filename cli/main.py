"""Entry point of the ``sgpa`` command: a click group; each sub-command lives in its own module."""

from __future__ import annotations

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

    cli.add_command(align)
    cli.add_command(explain)
    cli.add_command(bench)


def main() -> None:
    _register_commands()
    cli()
