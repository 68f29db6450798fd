"""What a user does with a smoothed classifier: data, models, training, attacks, dataset certification, reports.

Built on the core (:class:`renyicert.Smoothed`, the solver) and never imported by it.
One module per job:

``data``
    :class:`~renyicert.workflow.data.LabelledData`, the embedded digits, ``.npz``/``.pt`` files, the input range.
``datasets``
    CIFAR-10's python batches and image folders, read a batch at a time.
``models``
    The model zoo (MLP, CNN, ResNet-20), user models, plain weights and checkpoints.
``training``
    Noise augmentation and stability training.
``attacks``
    Empirical robustness of the smoothed classifier (PGD on the soft classifier, ART).
``evaluation``
    Dataset certification (records), certified accuracy, plots.
``records``, ``distributed``
    Crash-safe JSONL records; sharding under ``torchrun``.
``report``, ``demo``
    The main job's report and the main job itself.
"""
