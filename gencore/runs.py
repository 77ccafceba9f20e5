"""Finding run folders: `-r RUN`, `latest`, and the listing behind `gen runs`. No torch here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gencore.errors import GenError
from gencore.storage import FORMAT_VERSION, read_json, read_jsonl

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
    """Refuse a config.json no run of this gencore can be rebuilt from (gencore.runconfig)."""
    read_config(config, path)


def read_config(config: dict, path: Path):
    """The typed RunConfig of the config read from the run folder `path`, or one clear error."""
    from gencore.runconfig import RunConfig

    return RunConfig.from_json(config, path)


def write_complete(folder: Path, domain: str, facts: dict) -> None:
    """complete.json, the last file of a finished run (or of an exported bundle): only folders
    that have it count as `latest`."""
    from gencore.storage import write_json

    write_json(folder / COMPLETE, {"format_version": FORMAT_VERSION, "domain": domain, **facts})


def last_metrics(path: Path) -> dict:
    epochs = [row for row in read_jsonl(path / "metrics.jsonl") if row.get("event") == "epoch"]
    return epochs[-1] if epochs else {}
