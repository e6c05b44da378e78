"""Offline English speech with exact word times: synthetic (festival, flite, espeak-ng) and real.

Modules: :mod:`sentences` (transcripts), :mod:`festival`, :mod:`flite`, :mod:`espeak` (one engine
each, ``synthesize(texts, voice) -> list[Utterance | None]``), :mod:`augment` (time-exact
augmentations), :mod:`real` (asterisk prompts, pocketsphinx-testdata clips, pocketsphinx
alignment), :mod:`generate` (the corpus command line) and :mod:`samples` (``data_samples/``). Nothing heavy is imported here.
"""
