"""The ``sgpa`` command line: argument parsing, progress and exit codes, no logic."""
