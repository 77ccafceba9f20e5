"""The runs the studio offers: every run folder under the runs root, the runs named with `-r`,
and the pretrained runs gencore ships. A run is addressed by an id from this catalogue only, so a
request never turns a name into a path of its own making (no traversal by construction)."""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencore.errors import GenError
from gencore.runs import COMPLETE, CONFIG, last_metrics, summarise
from gencore.storage import read_json

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")
OPEN_RUNS = 8  # opened runs (their weights) kept in memory
CARD_FILES = ("loss.png", "samples.png")  # the run's own PNGs a card may show


@dataclass
class Entry:
    id: str
    path: Path
    source: str  # "runs", "-r" or "pretrained"


class Catalogue:
    def __init__(self, root: Path, extra: list[str], device: str = "auto"):
        self.root, self.extra, self.device = Path(root), list(extra), device
        self._open: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    # -- listing -----------------------------------------------------------------------------
    def entries(self) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for name, path in _pretrained():
            found[name] = Entry(name, path, "pretrained")
        for text in self.extra:
            if text.startswith("pretrained:"):
                continue  # listed above
            path = Path(text)
            found.setdefault(path.name, Entry(path.name, path, "-r"))
        if self.root.is_dir():
            for path in sorted(self.root.iterdir()):
                if (path / CONFIG).is_file() and RUN_ID.match(path.name):
                    found.setdefault(path.name, Entry(path.name, path, "runs"))
        return found

    def listing(self) -> list[dict[str, Any]]:
        """One row per run, newest first within each domain; unreadable runs say why."""
        rows = []
        for entry in self.entries().values():
            summary = summarise(entry.path)
            config = summary.config or {}
            rows.append({
                "id": entry.id, "source": entry.source, "domain": config.get("domain"),
                "arch": config.get("arch"), "image_to_image": _image_to_image(config.get("arch")),
                "created": config.get("created", ""),
                "complete": (entry.path / COMPLETE).is_file(), "error": summary.error,
                "classes": len(config.get("class_names") or []),
            })
        rows.sort(key=lambda r: (r["domain"] or "~", r["source"] != "pretrained", _negate(r["created"])))
        return rows

    def preferred(self) -> str | None:
        """The id of the first `-r` run: the page opens it first."""
        if not self.extra:
            return None
        first = self.extra[0]
        return first if first.startswith("pretrained:") else Path(first).name

    def entry(self, run_id: str) -> Entry:
        if not RUN_ID.match(run_id or ""):
            raise GenError("not a run id", where="run", hint="pick a run from GET /api/runs")
        entry = self.entries().get(run_id)
        if entry is None:
            raise LookupError(f"no run {run_id!r} in this studio")
        return entry

    # -- opening -----------------------------------------------------------------------------
    def open(self, run_id: str):
        """The opened run (weights load lazily), kept among the OPEN_RUNS most recent."""
        from gencore.api import load_run

        with self._lock:
            run = self._open.get(run_id)
            if run is not None:  # opened before, so listed before: no folder scan per request
                self._open.move_to_end(run_id)
                return run
        run = load_run(self.entry(run_id).path, device=self.device)
        run.domain  # noqa: B018 -- fail now if the plugin is missing
        with self._lock:
            self._open[run_id] = run
            while len(self._open) > OPEN_RUNS:
                self._open.popitem(last=False)
        return run

    def card(self, run_id: str) -> dict[str, Any]:
        """What the model card shows: the run's facts, its final metrics and its pictures."""
        from gencore.plugin import DomainOption

        run = self.open(run_id)
        config = run.config
        complete = read_json(run.path / COMPLETE, "completion marker") if (run.path / COMPLETE).is_file() else {}
        final = complete.get("metrics") or {}
        options: list[DomainOption] = [o for o in run.domain.options if "sample" in o.commands]
        return {
            "id": run_id, "domain": run.domain_name, "arch": config["arch"],
            "description": run.domain.description, "created": config.get("created"),
            "data": config["data"].get("source"), "class_names": run.class_names,
            "conditional": run.conditional, "multi_label": run.multi_label,
            "latent_dim": run.latent_dim if run.arch.has_latent else None,
            "item_shape": config["model"].get("item_shape"), "stochastic": run.stochastic,
            "image_to_image": not run.arch.has_latent, "metrics": _plain(final), "last_epoch": _plain(last_metrics(run.path)),
            "files": [name for name in CARD_FILES if (run.path / name).is_file()],
            "command": config.get("command"),
            "options": [{"name": o.name, "flag": o.flag, "help": o.help, "type": o.type.__name__,
                         "default": o.default, "choices": list(o.choices or [])} for o in options],
        }

    def card_file(self, run_id: str, name: str) -> Path:
        if name not in CARD_FILES:
            raise LookupError(f"no file {name!r} on a run card")
        path = self.entry(run_id).path / name
        if not path.is_file():
            raise LookupError(f"this run has no {name}")
        return path


def _pretrained() -> list[tuple[str, Path]]:
    """The runs shipped with gencore (`-r pretrained:NAME`), where this gencore ships any."""
    from gencore import runs

    listing = getattr(runs, "pretrained_runs", None)
    return [] if listing is None else [(f"pretrained:{name}", Path(path)) for name, path in listing().items()]


def _image_to_image(arch: str | None) -> bool:
    """Whether runs of `arch` map images to images (the denoiser) rather than sample a latent."""
    from gencore.archs import ARCHS

    return arch in ARCHS and not ARCHS[arch].has_latent


def _plain(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _negate(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(c)) for c in text)
