"""The one exception type for bad user input.

The command line turns an :class:`InputError` into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """The user's input (audio, transcript, segments, parameters, model path) cannot be used."""
