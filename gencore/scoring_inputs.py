"""What `gen score` scores: user files, a folder or built-in corpus (with its classes and any
ground-truth anomaly labels), optional labels, and the run's own training items left out."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gencore.errors import GenError


@dataclass
class ScoreBatch:
    items: torch.Tensor
    names: list[str]
    labels: np.ndarray | None
    excluded: int = 0
    data: object = None  # what the domain's read_scored returned, for its score_report
    index: np.ndarray | None = None  # which of data.items were scored


def _row_hashes(items: torch.Tensor) -> list[str]:
    flat = items.reshape(items.shape[0], -1).float().numpy()
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in flat]


def _training_hashes(run) -> set[str]:
    from gencore.training.data import reload

    data = reload(run.config, run.domain)
    train = torch.ones(data.items.shape[0], dtype=torch.bool)
    train[torch.tensor(run.config["split"]["val_indices"], dtype=torch.long)] = False
    return set(_row_hashes(data.items[train]))


def gather(run, inputs: list[str], anomaly_classes: list[str], labels_by_name: dict[str, int] | None,
           exclude_training: bool) -> ScoreBatch:
    corpus = len(inputs) == 1 and (inputs[0].startswith("builtin:") or Path(inputs[0]).is_dir())
    labels = None
    own = None if anomaly_classes else run.domain.read_scored(inputs, run.config["data"], labels_by_name)
    if own is not None:  # the domain reads many items per input (series windows, table rows)
        items, names = own.items, list(own.sources)
        labels = None if own.anomaly_labels is None else own.anomaly_labels.numpy().astype(int)
        labels_by_name = None
    elif corpus:
        data = run.domain.load(inputs[0], run.config["data"]["options"])
        if list(data.item_shape) != run.config["model"]["item_shape"]:
            raise GenError(f"items of shape {list(data.item_shape)} do not fit this run's "
                           f"{run.config['model']['item_shape']}", where=inputs[0])
        items = data.items
        names = (list(data.sources) if len(data.sources) == items.shape[0]
                 else [f"{inputs[0]}#{i}" for i in range(items.shape[0])])
        if anomaly_classes:
            if data.conditions is None:
                raise GenError("the input data has no classes", where="--anomaly-class",
                               hint="use --labels with a CSV of input,label")
            from gencore.plugin import resolve_class_index

            picked = [resolve_class_index(c, data.class_names) for c in anomaly_classes]
            labels = (data.conditions[:, picked].sum(dim=1) > 0).numpy().astype(int)
        elif data.anomaly_labels is not None:
            labels = data.anomaly_labels.numpy().astype(int)
    else:
        if anomaly_classes:
            raise GenError("--anomaly-class needs a labelled folder or builtin corpus as input",
                           where="--anomaly-class", hint="use --labels for single files")
        paths = [Path(p) for p in inputs]
        from gencore.storage import check_input_file

        for path in paths:
            check_input_file(path, hint="score files, a folder, or builtin:NAME")
        items, _ = run.domain.load_files(paths, run.config["data"], {})
        names = [str(p) for p in paths]
    if labels_by_name is not None:
        missing = [n for n in names if n not in labels_by_name and Path(n).name not in labels_by_name]
        if missing:
            raise GenError(f"no label for {len(missing)} inputs, e.g. {missing[0]!r}", where="--labels")
        labels = np.array([labels_by_name.get(n, labels_by_name.get(Path(n).name)) for n in names])
    excluded = 0
    keep = np.ones(items.shape[0], dtype=bool)
    if exclude_training:
        seen = _training_hashes(run)
        keep = np.array([h not in seen for h in _row_hashes(items)])
        excluded = int((~keep).sum())
        items = items[torch.from_numpy(keep)]
        names = [n for n, k in zip(names, keep) if k]
        labels = None if labels is None else labels[keep]
    if items.shape[0] == 0:
        raise GenError("nothing left to score", where=" ".join(inputs))
    return ScoreBatch(items, names, labels, excluded, own, np.flatnonzero(keep))
