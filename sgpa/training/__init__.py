"""Training of the project's own English CTC acoustic model (the offline default of ``sgpa align``).

Modules: ``model`` (vocabulary, processor and architecture), ``data`` (corpus reading, batching, augmentation),
``metrics`` (greedy decoding, character error rate) and ``train_ctc`` (the seeded, time-budgeted training loop,
runnable as ``python -m sgpa.training.train_ctc``). Nothing here is imported by the package at start-up.
"""
