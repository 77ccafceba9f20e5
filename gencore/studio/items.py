"""Decoded items the studio has shown: kept in memory (bounded) under random ids, rendered as
their domain renders them (its `preview` hook, its `annotate` hook) and exported on demand to
native files (its `export` hook) in the studio's output folder."""
from __future__ import annotations

import base64
import io
import re
import secrets
import shutil
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gencore.errors import GenError

ITEM_ID = re.compile(r"^[0-9a-f]{16}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
MAX_ITEMS = 4096  # items remembered; the oldest are forgotten and their files deleted
MAX_ZIP_ITEMS = 64


@dataclass
class Item:
    id: str
    run_id: str
    values: torch.Tensor  # (*item_shape): likelihood means, or the domain's decoded item
    cls: str | None
    cond: torch.Tensor | None  # (K,)
    z: torch.Tensor | None  # (d,): the latent it was decoded from, when one latent made it
    stem: str
    options: dict[str, Any] = field(default_factory=dict)  # the domain's sample options
    folder: Path | None = None  # its native files, once exported


def sound_options(domain, options: dict[str, Any]) -> dict[str, Any]:
    """Export options for the studio: a domain that declares a `wav` sample option (a sound
    preview) gets it on, so that every item can be heard in the page."""
    out = dict(options)
    if any(o.name == "wav" and o.type is bool and "sample" in o.commands for o in domain.options):
        out["wav"] = True
    return out


def png_data_url(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ItemStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._items: OrderedDict[str, Item] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, run_id: str, values: torch.Tensor, classes: list[str | None], cond: torch.Tensor | None,
            z: torch.Tensor | None, stems: list[str], options: dict[str, Any]) -> list[Item]:
        made = []
        for i in range(values.shape[0]):
            made.append(Item(secrets.token_hex(8), run_id, values[i].detach().float().cpu().clone(), classes[i],
                             None if cond is None else cond[i].clone(), None if z is None else z[i].clone(),
                             stems[i], dict(options)))
        with self._lock:
            for item in made:
                self._items[item.id] = item
            while len(self._items) > MAX_ITEMS:
                _, old = self._items.popitem(last=False)
                if old.folder is not None:
                    shutil.rmtree(old.folder, ignore_errors=True)
        return made

    def get(self, item_id: str) -> Item:
        if not ITEM_ID.match(item_id or ""):
            raise GenError("not an item id", where="item", hint="ids come from a sample, decode or interpolate reply")
        with self._lock:
            item = self._items.get(item_id)
        if item is None:
            raise LookupError(f"no item {item_id!r} (the studio restarted, or it was forgotten)")
        return item

    # -- rendering ---------------------------------------------------------------------------
    def views(self, run, items: list[Item]) -> list[dict[str, Any]]:
        """What the page shows of each item: a preview PNG (data URL) and the domain's notes."""
        spec = run.config["data"]
        if not items:
            return []
        stacked = torch.stack([it.values for it in items])
        annotate = getattr(run.domain, "annotate", None)
        notes = annotate(stacked, spec, items[0].options) if annotate else [{} for _ in items]
        out = []
        for item, note in zip(items, notes):
            picture = run.domain.preview(item.values[None], spec, 1, options=item.options)
            out.append({"id": item.id, "class": item.cls, "stem": item.stem, "preview": png_data_url(picture),
                        "width": picture.size[0], "height": picture.size[1], "has_latent": item.z is not None,
                        "notes": note})
        return out

    # -- native files ------------------------------------------------------------------------
    def files(self, run, item: Item) -> list[Path]:
        """The item's native files, written once (staged, then renamed into place)."""
        if item.folder is not None and item.folder.is_dir():
            return sorted(p for p in item.folder.iterdir() if p.is_file())
        target = self.folder / "items" / item.id
        staging = self.folder / "items" / f".{item.id}.partial-{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        try:
            run.domain.export(item.values[None], staging, [item.stem], run.config["data"],
                              options=sound_options(run.domain, item.options))
            staging.rename(target)
        except FileExistsError:  # another request exported it first
            shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        item.folder = target
        return sorted(p for p in target.iterdir() if p.is_file())

    def file(self, run, item: Item, name: str) -> Path:
        if not FILE_NAME.match(name or ""):
            raise GenError("not a file name of this item", where=name or "file")
        for path in self.files(run, item):
            if path.name == name:
                return path
        raise LookupError(f"item {item.id} has no file {name!r}")

    def zip_of(self, catalogue, item_ids: list[str]) -> bytes:
        """A zip of the picks' native files, one folder per run."""
        if not item_ids:
            raise GenError("no items to zip", where="items", hint="pick items first")
        if len(item_ids) > MAX_ZIP_ITEMS:
            raise GenError(f"{len(item_ids)} items, more than the {MAX_ZIP_ITEMS} one zip holds", where="items")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            seen = set()
            for item_id in dict.fromkeys(item_ids):
                item = self.get(item_id)
                run = catalogue.open(item.run_id)
                for path in self.files(run, item):
                    arcname = f"{_safe(item.run_id)}/{path.name}"
                    if path.name == "legend.json":  # shared by the levels of one run
                        if arcname in seen:
                            continue
                    elif arcname in seen:
                        arcname = f"{_safe(item.run_id)}/{item.id}-{path.name}"
                    seen.add(arcname)
                    archive.write(path, arcname)
        return buf.getvalue()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "run"
