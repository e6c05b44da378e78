"""sgpa: Spectrogram-Guided Phonetic Alignment for word-level explanations of audio-language models.

Importing the package is cheap: models and heavy libraries load only when a function needs them.
"""

__version__ = "0.1.0"
