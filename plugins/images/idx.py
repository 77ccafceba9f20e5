"""MNIST-format IDX files: big-endian magic and dimensions, then uint8 data, raw or gzipped
(docs/format.md, "Input formats"). Headers, sizes and label counts are checked before any data is trusted."""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from gencore.errors import GenError

MAX_IDX_BYTES = 1 << 32  # pixel bytes one IDX file may declare


def _size_text(hw) -> str:
    return f"{hw[0]}x{hw[1]}"

def _idx_names(split: str, kind: str) -> list[str]:
    d = 3 if kind == "images" else 1
    bases = [f"{split}-{kind}-idx{d}-ubyte", f"{split}-{kind}.idx{d}-ubyte"]
    return [b + ext for b in bases for ext in ("", ".gz")]


def find_idx_files(root: Path) -> dict[str, dict[str, Path]] | None:
    """{"train": {"images": path, "labels": path?}, "t10k": {...}} or None when no IDX images."""
    found: dict[str, dict[str, Path]] = {}
    for split in ("train", "t10k"):
        for kind in ("images", "labels"):
            for name in _idx_names(split, kind):
                p = root / name
                if p.is_file():
                    found.setdefault(split, {})[kind] = p
                    break
    if not any("images" in v for v in found.values()):
        return None
    for split, files in found.items():
        if "images" not in files:
            raise GenError(f"{files['labels'].name} has no matching {split} images file",
                           where=str(root), hint=f"add {_idx_names(split, 'images')[0]}(.gz) "
                           "or remove the labels file")
    return found


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes, checking magic, dimensions and length."""
    what = "image" if ndim == 3 else "label"
    where = str(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4:
                raise GenError("the IDX file is truncated: it ends inside the header", where=where,
                               hint="download the file again")
            got = int.from_bytes(head, "big")
            if got != magic:
                raise GenError(f"not an IDX {what} file: magic number 0x{got:08X}, "
                               f"expected 0x{magic:08X}", where=where,
                               hint=f"use the MNIST {what}s file, unchanged")
            raw = f.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise GenError("the IDX file is truncated: it ends inside the header", where=where,
                               hint="download the file again")
            dims = struct.unpack(f">{ndim}I", raw)
            if any(d == 0 for d in dims):
                raise GenError(f"the IDX file declares an empty shape {dims}", where=where,
                               hint="download the file again")
            size = math.prod(dims)
            if size > MAX_IDX_BYTES:
                raise GenError(f"the IDX file declares {size:,} bytes of data, over the "
                               f"{MAX_IDX_BYTES:,}-byte cap", where=where,
                               hint="split the data set into smaller files")
            data = f.read(size)
            if len(data) < size:
                raise GenError(f"the IDX file is truncated: its header declares {size:,} bytes of "
                               f"data but it holds {len(data):,}", where=where,
                               hint="download the file again")
            extra = f.read(1)
            if extra:
                raise GenError("the IDX file is longer than its header declares", where=where,
                               hint="download the file again")
    except GenError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise GenError(f"the gzip file is truncated or corrupt ({exc})", where=where,
                       hint="download the file again") from None
    except OSError as exc:
        raise GenError(f"cannot read the file ({exc.strerror or exc})", where=where) from None
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def load_idx(root: Path, found: dict[str, dict[str, Path]]):
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    sources: list[str] = []
    has_labels = {split: "labels" in files for split, files in found.items()}
    if len(set(has_labels.values())) > 1:
        missing = next(s for s, v in has_labels.items() if not v)
        raise GenError(f"the {missing} images have no labels file but the others do",
                       where=str(root), hint=f"add {_idx_names(missing, 'labels')[0]}(.gz) or "
                       "remove every labels file for an unlabelled set")
    for split in ("train", "t10k"):
        files = found.get(split)
        if not files:
            continue
        img = read_idx(files["images"], 0x00000803, 3)
        if images and img.shape[1:] != images[0].shape[1:]:
            raise GenError(f"the images are {_size_text(img.shape[1:])} but the train images are "
                           f"{_size_text(images[0].shape[1:])}", where=str(files["images"]),
                           hint="keep only files of one data set in the folder")
        images.append(img)
        sources.append(files["images"].name)
        if "labels" in files:
            lab = read_idx(files["labels"], 0x00000801, 1)
            if lab.shape[0] != img.shape[0]:
                raise GenError(f"the labels file has {lab.shape[0]:,} labels but "
                               f"{files['images'].name} has {img.shape[0]:,} images",
                               where=str(files["labels"]), hint="use the matching pair of files")
            labels.append(lab)
            sources.append(files["labels"].name)
    stack = np.concatenate(images).astype(np.float32) / 255.0
    if not labels:
        return stack, None, [], sources
    lab = np.concatenate(labels)
    values = np.unique(lab)  # sorted numerically
    index = np.searchsorted(values, lab)
    return stack, index, [str(int(v)) for v in values], sources


