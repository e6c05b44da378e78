"""Shapley attribution for audio-language models: games, estimators, model backends, diagnostics."""
