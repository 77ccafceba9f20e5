"""Finding run folders: `-r RUN`, `latest`, and the listing behind `gen runs`. No torch here."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gencore.errors import GenError
from gencore.storage import READABLE_FORMAT_VERSIONS, READABLE_HINT, read_json, read_jsonl

RUNS_ROOT = Path("runs")
CONFIG = "config.json"
COMPLETE = "complete.json"


@dataclass
class RunSummary:
    path: Path
    config: dict | None
    complete: dict | None
    error: str | None = None

    @property
    def finished_at(self) -> str:
        return (self.complete or {}).get("finished", "")


def summarise(path: Path) -> RunSummary:
    try:
        config = read_json(path / CONFIG, "run config")
    except GenError as exc:
        return RunSummary(path, None, None, exc.problem)
    complete = None
    if (path / COMPLETE).exists():
        try:
            complete = read_json(path / COMPLETE, "completion marker")
        except GenError:
            complete = None
    return RunSummary(path, config, complete)


def list_runs(root: Path = RUNS_ROOT) -> list[RunSummary]:
    if not root.is_dir():
        return []
    found = [summarise(p) for p in sorted(root.iterdir()) if (p / CONFIG).exists()]
    return sorted(found, key=lambda r: ((r.config or {}).get("created", ""), str(r.path)))


def resolve_run(run: str | None, root: Path = RUNS_ROOT, complete_only: bool = True) -> Path:
    """A run folder from `-r`: a path, or `latest`/None for the newest completed run under ./runs."""
    if run in (None, "latest"):
        runs = [r for r in list_runs(root) if r.config and (r.complete or not complete_only)]
        if not runs:
            raise GenError(f"no {'completed ' if complete_only else ''}run under ./{root}",
                           where="--run", hint="train one with `gen train images`, or pass -r RUN_DIR")
        return runs[-1].path
    path = Path(run)
    if not path.exists():
        raise GenError("no such run folder", where=str(path), hint="`gen runs` lists the runs under ./runs")
    if not (path / CONFIG).is_file():
        raise GenError("not a run folder (no config.json)", where=str(path),
                       hint="pass the folder that `gen train` wrote")
    return path


def check_config(config: dict, path: Path) -> None:
    edited = "the file is corrupt or was edited by hand"
    if not isinstance(config, dict):
        raise GenError(f"run config is a JSON {type(config).__name__}, not an object", where=str(path / CONFIG),
                       hint=edited)
    version = config.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
        raise GenError(f"run format_version {version!r} is not supported", where=str(path / CONFIG),
                       hint=READABLE_HINT)
    for key, kind in (("domain", str), ("arch", str), ("model", dict), ("data", dict)):
        if not isinstance(config.get(key), kind):
            raise GenError(f"run config lacks a valid {key!r}", where=str(path / CONFIG), hint=edited)
    problem = _model_problem(config["model"])
    if problem:
        raise GenError(f"run config has an invalid model: {problem}", where=str(path / CONFIG), hint=edited)


MAX_MODEL_SIZE = 1 << 16  # any one size in a model spec (channels, widths, latent dimensions)
MAX_ITEM_VALUES = 1 << 26


def _model_problem(model: dict) -> str | None:
    """What makes a tampered model spec unbuildable, in a few words; None when it looks sound."""
    from gencore.models import ALL_ARCHS, CONDITIONINGS

    def size(value, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_MODEL_SIZE

    if model.get("arch") not in ALL_ARCHS:
        return f"unknown arch {model.get('arch')!r}"
    for key in ("latent_dim", "width", "hidden", "cond_dim", "channels", "blocks"):
        if key in model and not size(model[key], 0 if key == "cond_dim" else 1):
            return f"{key} is {model[key]!r}"
    for key, allowed in (("item_kind", ("grid2d", "seq1d", "vector")),
                         ("likelihood", ("bernoulli", "gaussian", "categorical")),
                         ("conditioning", CONDITIONINGS)):
        if key in model and model[key] not in allowed:
            return f"{key} is {model[key]!r}"
    for key in ("item_shape", "widths"):
        values = model.get(key, [])
        if not isinstance(values, list) or not all(v is None or size(v, 1) for v in values):
            return f"{key} is {values!r}"
    if model["arch"] != "denoiser":
        if not size(model.get("latent_dim"), 1) or not model.get("item_shape") or None in model["item_shape"]:
            return "latent_dim or item_shape missing"
        if math.prod(model["item_shape"]) > MAX_ITEM_VALUES:
            return f"item_shape {model['item_shape']} is too large"
    return None


def last_metrics(path: Path) -> dict:
    epochs = [row for row in read_jsonl(path / "metrics.jsonl") if row.get("event") == "epoch"]
    return epochs[-1] if epochs else {}
