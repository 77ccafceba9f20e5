"""Finding run folders: `-r RUN`, `latest`, `latest:DOMAIN`, `pretrained:NAME`, and the listing
behind `gen runs`. No torch here."""
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


# -- shipped runs: -r pretrained:NAME ------------------------------------------------------------
PRETRAINED = "pretrained:"
# Runs that stay where their own script writes them (the denoiser arch's, scripts/train_denoiser.py);
# the others live under assets/pretrained/<name>/ (scripts/train_pretrained.py).
def _pretrained_elsewhere() -> dict[str, tuple[str, ...]]:
    from gencore.archs.denoiser import SHIPPED_FOLDER, SHIPPED_RUN

    return {SHIPPED_RUN.removeprefix(PRETRAINED): (SHIPPED_FOLDER,)}


def pretrained_runs() -> dict[str, Path]:
    """Name -> folder of every run shipped with gencore, sorted by name."""
    from gencore.assets import assets_root

    root = assets_root()
    found = {name: root.joinpath(*parts) for name, parts in _pretrained_elsewhere().items()}
    shelf = root / "pretrained"
    if shelf.is_dir():
        found.update({p.name: p for p in shelf.iterdir() if (p / CONFIG).is_file()})
    return {name: found[name] for name in sorted(found) if (found[name] / CONFIG).is_file()}


def is_pretrained(path: Path | None) -> bool:
    if path is None:
        return False
    resolved = Path(path).resolve()
    return any(resolved == p.resolve() for p in pretrained_runs().values())


def check_writable(path: Path | None, what: str) -> None:
    """Shipped runs are read-only: nothing may write into them (another process, another user and
    the next upgrade share them)."""
    if is_pretrained(path):
        raise GenError(f"{what} would write into a shipped pretrained run, which is read-only", where=str(path),
                       hint="train your own run with `gen train DOMAIN`, or start from it with --init")


def _suggest(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {PRETRAINED}{close[0]}? " if close else ""


def resolve_pretrained(name: str) -> Path:
    shipped = pretrained_runs()
    if name not in shipped:
        raise GenError(f"no pretrained run named {name!r}", where="--run",
                       hint=_suggest(name, list(shipped)) + "shipped: "
                       + ", ".join(PRETRAINED + n for n in shipped))
    return shipped[name]


def latest_run(root: Path = RUNS_ROOT, domain: str | None = None, complete_only: bool = True) -> Path | None:
    """The newest (completed) run under `root`, of `domain` when given."""
    runs = [r for r in list_runs(root) if r.config and (r.complete or not complete_only)
            and (domain is None or r.config.get("domain") == domain)]
    return runs[-1].path if runs else None


def resolve_run(run: str | None, root: Path = RUNS_ROOT, complete_only: bool = True) -> Path:
    """A run folder from `-r`: a path; `latest`/None, the newest completed run under ./runs;
    `latest:DOMAIN`, the newest of that domain; `pretrained:NAME`, a run shipped with gencore."""
    if run is not None and run.startswith(PRETRAINED):
        return resolve_pretrained(run[len(PRETRAINED):])
    if run is None or run == "latest" or run.startswith("latest:"):
        domain = (run.partition(":")[2] or None) if run else None
        found = latest_run(root, domain, complete_only)
        if found is None:
            state = "completed " if complete_only else ""
            what = f"{state}{domain} run" if domain else f"{state}run"
            shipped = [n for n, p in pretrained_runs().items()
                       if domain is None or _domain_of(p) == domain]
            also = ("; or use a shipped run: " + ", ".join(f"-r {PRETRAINED}{n}" for n in shipped)) if shipped else ""
            raise GenError(f"no {what} under ./{root}", where="--run",
                           hint=f"train one with `gen train {domain or 'images'}`, or pass -r RUN_DIR{also}")
        return found
    path = Path(run)
    if not path.exists():
        raise GenError("no such run folder", where=str(path),
                       hint="`gen runs` lists the runs under ./runs and the shipped ones (-r pretrained:NAME)")
    if not (path / CONFIG).is_file():
        raise GenError("not a run folder (no config.json)", where=str(path),
                       hint="pass the folder that `gen train` wrote")
    return path


def _domain_of(path: Path) -> str | None:
    try:
        config = read_json(path / CONFIG, "run config")
    except GenError:
        return None
    return config.get("domain") if isinstance(config, dict) else None


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
