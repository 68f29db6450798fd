"""The engine under :class:`renyicert.Smoothed`: noisy copies of inputs in, class votes out, as fast as the machine allows.

Private: users call :class:`renyicert.Smoothed`; plugin authors never import it.
One module per job:

``engine``
    :class:`VoteEngine`, the one object ``Smoothed`` asks for votes; every choice
    of path (native C++, Triton, compiled, eager, the mechanism's own sampler) is
    made there.
``streams``
    The row scheduler of sequential certification: many inputs' streams of copies, counted to each one's next stop.
``sampler``
    :class:`FusedSampler`: ``x + noise`` for many rows, written once into a buffer.
``noise_checks``
    A plugin's own noise checked on its way into a batch.
``votes``
    The batch loop: the model's votes counted, natively or with torch.
``tuning``
    ``batch_size="auto"``: the batch size with the least time per noisy copy.
``compiled``
    The opt-in ``torch.compile``-d model.
``native``, ``cpp/``
    The C++ kernels, built on first use.
``philox``
    Philox-4x32-10 in torch integer ops (the reference every path reproduces).
"""
