"""What a user does with a smoothed classifier, by task: inputs, certification, records, summaries, plots, training, attacks.

Built on the core (:class:`renyicert.Smoothed`, the radii) and never imported by it.
One module per job:

``inputs``
    The model, the data, the device and the noise of a run, from plain keywords.
``certify``
    A whole data set certified (fixed n, or sequentially at given radii), predicted, or recertified from its counts.
``runs``
    The run around a data set's certification: the lock, the settings, resumption, this rank's chunks, the merge.
``records``
    The records file, its one owner: crash-safe JSONL, the settings beside it, per-rank parts, the merge, the record format.
``record_checks``
    What a records file can check about itself before anything is summarised or recomputed from it.
``distributed``
    ``torch.distributed`` only: ranks, the barrier, fixed chunks, the records lock.
``summary``, ``plots``, ``tables``
    What records say (certified accuracy, ACR), as curves and as the command line's tables.
``reports``
    ``renyicert report`` and ``recertify`` as functions over records files.
``data``, ``datasets``, ``models``, ``zoo``, ``published``
    Labelled data (the embedded digits, files, CIFAR-10, image folders) and models (the zoo, user models, checkpoints).
``training``, ``trades``, ``lipschitz``, ``attacks``
    Noise augmentation and stability training; the paper's baselines; empirical robustness.
``jobs``
    The scripted runs: the demo (the main job) and the comparison, with their reports.

The face is lazy (PEP 562, as scipy's): ``renyicert.workflow.certify_dataset``
imports :mod:`renyicert.workflow.certify` on first use, so the command line
starts without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Where each name of the face is defined.
_HOMES = {
    "ATTACKS": "attacks",
    "CertifiedSummary": "summary",
    "DEFAULT_ATTACKS": "attacks",
    "DEFAULT_GAMMA": "training",
    "FixedNReport": "reports",
    "LabelledData": "data",
    "METHODS": "training",
    "RECORDS_FORMAT": "records",
    "RecordWriter": "records",
    "RobustnessResult": "attacks",
    "SequentialReport": "reports",
    "SequentialSummary": "summary",
    "TENG_NOTE": "plots",
    "bound_label": "plots",
    "build_model": "models",
    "certified_accuracy": "summary",
    "certify_dataset": "certify",
    "certify_dataset_at": "certify",
    "check_checkpoint_path": "inputs",
    "curve_radii": "summary",
    "empirical_robustness": "attacks",
    "fixed_n_summary": "tables",
    "fixed_n_table": "tables",
    "join_torchrun": "distributed",
    "load_checkpoint": "checkpoints",
    "load_data": "data",
    "load_digits": "data",
    "load_model": "inputs",
    "load_model_and_data": "inputs",
    "load_split": "inputs",
    "noise_to_certify": "inputs",
    "norm_name": "plots",
    "plot_certified_accuracy": "plots",
    "predict_dataset": "certify",
    "predictions_summary": "tables",
    "predictions_table": "tables",
    "radius_grid": "summary",
    "read_records": "records",
    "read_settings": "records",
    "recertify_file": "reports",
    "recertify_records": "certify",
    "recorded_norm": "inputs",
    "records_report_table": "tables",
    "report_records": "reports",
    "resolve_device": "inputs",
    "robustness_table": "tables",
    "run_mode": "reports",
    "save_checkpoint": "checkpoints",
    "sequential_json": "tables",
    "sequential_report_json": "reports",
    "sequential_table": "tables",
    "settings_mechanism": "inputs",
    "smoothed_classifier": "inputs",
    "stored_mechanism": "inputs",
    "summarize_certified": "summary",
    "summarize_sequential": "summary",
    "train": "training",
    "train_new_model": "training",
    "write_csv": "records",
}

__all__ = [
    "ATTACKS",
    "CertifiedSummary",
    "DEFAULT_ATTACKS",
    "DEFAULT_GAMMA",
    "FixedNReport",
    "LabelledData",
    "METHODS",
    "RECORDS_FORMAT",
    "RecordWriter",
    "RobustnessResult",
    "SequentialReport",
    "SequentialSummary",
    "TENG_NOTE",
    "bound_label",
    "build_model",
    "certified_accuracy",
    "certify_dataset",
    "certify_dataset_at",
    "check_checkpoint_path",
    "curve_radii",
    "empirical_robustness",
    "fixed_n_summary",
    "fixed_n_table",
    "join_torchrun",
    "load_checkpoint",
    "load_data",
    "load_digits",
    "load_model",
    "load_model_and_data",
    "load_split",
    "noise_to_certify",
    "norm_name",
    "plot_certified_accuracy",
    "predict_dataset",
    "predictions_summary",
    "predictions_table",
    "radius_grid",
    "read_records",
    "read_settings",
    "recertify_file",
    "recertify_records",
    "recorded_norm",
    "records_report_table",
    "report_records",
    "resolve_device",
    "robustness_table",
    "run_mode",
    "save_checkpoint",
    "sequential_json",
    "sequential_report_json",
    "sequential_table",
    "settings_mechanism",
    "smoothed_classifier",
    "stored_mechanism",
    "summarize_certified",
    "summarize_sequential",
    "train",
    "train_new_model",
    "write_csv",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from .attacks import ATTACKS, DEFAULT_ATTACKS, RobustnessResult, empirical_robustness
    from .certify import certify_dataset, certify_dataset_at, predict_dataset, recertify_records
    from .checkpoints import load_checkpoint, save_checkpoint
    from .data import LabelledData, load_data, load_digits
    from .distributed import join_torchrun
    from .inputs import (
        check_checkpoint_path,
        load_model,
        load_model_and_data,
        load_split,
        noise_to_certify,
        recorded_norm,
        resolve_device,
        settings_mechanism,
        smoothed_classifier,
        stored_mechanism,
    )
    from .models import build_model
    from .plots import TENG_NOTE, bound_label, norm_name, plot_certified_accuracy
    from .records import RECORDS_FORMAT, RecordWriter, read_records, read_settings, write_csv
    from .reports import (
        FixedNReport,
        SequentialReport,
        recertify_file,
        report_records,
        run_mode,
        sequential_report_json,
    )
    from .summary import (
        CertifiedSummary,
        SequentialSummary,
        certified_accuracy,
        curve_radii,
        radius_grid,
        summarize_certified,
        summarize_sequential,
    )
    from .tables import (
        fixed_n_summary,
        fixed_n_table,
        predictions_summary,
        predictions_table,
        records_report_table,
        robustness_table,
        sequential_json,
        sequential_table,
    )
    from .training import DEFAULT_GAMMA, METHODS, train, train_new_model
