"""Reading training images: the built-in digits, MNIST-style IDX files, and folders of PNG/JPEG.

Everything comes out as float32 in [0, 1], shaped (N, C, H, W). Pillow is used defensively
(docs/format.md, "Input formats"): formats restricted to PNG and JPEG, a pixel cap checked before decoding,
decompression-bomb warnings turned into errors, and every decode error caught.
"""
from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from gencore.datafiles import scan_class_folder
from gencore.errors import GenError
from gencore.plugin import LoadedData

from . import datasets
from .idx import find_idx_files, load_idx
from .options import NoiseSpec

MAX_PIXELS = 64_000_000  # per image, checked from the header before any decoding
MAX_FILES = 2_000_000  # directory entries scanned under one --data folder
MAX_SKIP_WARNINGS = 20  # skipped files named one by one; the rest are summed up in one warning
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PIL_FORMATS = ["PNG", "JPEG"]
BUILTINS = {"digits": "scikit-learn's 1,797 real 8x8 handwritten digits",
            "photos": "8 photos bundled with scikit-image and matplotlib that are fair training data "
                      "for denoisers (none of the usual evaluation images)"}
# (module, attribute or sample-data file) of each fair photo; the evaluation images (camera,
# astronaut, coffee, chelsea/cat, rocket, coins, moon, brick) and scikit-learn's china and
# flower are deliberately absent.
FAIR_PHOTOS = [("skimage", "stereo_motorcycle:0"), ("skimage", "stereo_motorcycle:1"), ("skimage", "grass"),
               ("skimage", "gravel"), ("skimage", "immunohistochemistry"), ("skimage", "retina"),
               ("skimage", "hubble_deep_field"), ("matplotlib", "grace_hopper.jpg")]
DIGITS_SOURCE = "builtin:digits (scikit-learn load_digits)"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's convert("L")


class ImageReadError(Exception):
    """One image could not be read; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- Pillow, safely -------------------------------------------------------------------------------
@contextlib.contextmanager
def bomb_warnings_as_errors():
    """Turn Pillow's DecompressionBombWarning into an exception. The warnings filter is process
    state, so enter this on the calling thread around any worker pool, never inside a worker."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _workers(n: int) -> int:
    return 1 if n <= 64 else max(1, min(8, os.cpu_count() or 1))


def _parallel_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    workers = _workers(len(items))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items, chunksize=64))


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """Decode one PNG/JPEG into float32 in [0, 1]: (H, W) when grayscale, else (H, W, 3).

    Transparent images are composited over white. Raises ImageReadError.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=PIL_FORMATS) as im:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ImageReadError(f"it declares an empty {w}x{h} image")
            if w * h > MAX_PIXELS:
                raise ImageReadError(
                    f"it declares {w}x{h} pixels, over the {MAX_PIXELS:,}-pixel cap "
                    "(a possible decompression bomb)")
            im.load()
            return _to_array(im)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not a PNG or JPEG image Pillow can identify") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"rejected as a possible decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error,
            MemoryError, IndexError, TypeError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageReadError(f"corrupt or truncated image ({text})") from None


def _composite(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite straight-alpha pixels over white."""
    a = alpha.astype(np.float32) / 255.0
    if color.ndim == 3:
        a = a[..., None]
    return color * a + (1.0 - a)


def _to_array(im: Any) -> tuple[np.ndarray, bool]:
    mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode == "L":
        return np.asarray(im, dtype=np.float32) / 255.0, True
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im).astype(np.float32) / 65535.0  # 16-bit grayscale PNG
        return np.clip(arr, 0.0, 1.0), True
    if mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0), True
    if mode in ("LA", "La"):
        arr = np.asarray(im.convert("LA"), dtype=np.float32)
        return _composite(arr[..., 0] / 255.0, arr[..., 1]), True
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        rgba = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32)
        rgb = rgba[..., :3] / 255.0
        if has_alpha:
            rgb = _composite(rgb, rgba[..., 3])
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0]), True  # a gray palette
        return rgb, False
    if mode in ("RGBA", "RGBa"):
        arr = np.asarray(im.convert("RGBA"), dtype=np.float32)
        return _composite(arr[..., :3] / 255.0, arr[..., 3]), False
    if mode != "RGB":
        im = im.convert("RGB")  # CMYK and YCbCr JPEGs, and anything else Pillow can convert
    return np.asarray(im, dtype=np.float32) / 255.0, False


def resize_array(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W) or (H, W, 3) float pixels to size=(H, W) with Lanczos (antialiased when
    shrinking, so it averages like an area filter), clipped back to [0, 1]."""
    from PIL import Image

    h, w = size
    if arr.shape[:2] == (h, w):
        return arr
    planes = [arr] if arr.ndim == 2 else [arr[..., c] for c in range(arr.shape[2])]
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), mode="F")
                      .resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32) for p in planes]
    res = out[0] if arr.ndim == 2 else np.stack(out, axis=-1)
    return np.clip(res, 0.0, 1.0)


def to_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3) -> (C, H, W) with C = channels (luma for colour to gray)."""
    if arr.ndim == 2:
        return arr[None] if channels == 1 else np.repeat(arr[None], 3, axis=0)
    if channels == 3:
        return np.moveaxis(arr, -1, 0)
    return (arr @ _LUMA)[None]


def _size_text(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


# -- training data --------------------------------------------------------------------------------
def load_training(source: str | None, *, resize: tuple[int, int] | None, channels: str,
                  likelihood: str, noise: NoiseSpec, patch: int | None = None) -> LoadedData:
    resize_done = False  # folders resize while decoding, in the worker threads
    if source is None or source == "builtin:digits":
        stack, labels, class_names, sources = _digits()
        kind = "digits"
        arrays: Sequence[np.ndarray] = stack
        gray = [True]
    elif source == "builtin:photos":
        arrays, gray, sources = _fair_photos()
        labels, class_names, kind = None, [], "photos"
        if patch is None and resize is None:
            raise GenError("builtin:photos differ in size", where="--data",
                           hint="train --arch denoiser with --patch 64, or pass --resize H,W")
    elif source.startswith("builtin:") and source[len("builtin:"):] in datasets.REMOTES:
        arrays, labels, class_names, sources = datasets.load(source[len("builtin:"):])
        kind = source[len("builtin:"):]
        gray = [arrays.ndim == 3]
    elif source.startswith("builtin:"):
        name = source[len("builtin:"):]
        avail = ", ".join(f"builtin:{k} ({v})" for k, v in {**BUILTINS, **datasets.DESCRIPTIONS}.items())
        raise GenError(f"unknown built-in dataset {name!r}; available: {avail}", where="--data",
                       hint=f"{did_you_mean(name)}give builtin:digits or a folder of images")
    else:
        root = Path(source).expanduser()
        if not root.exists():
            raise GenError("no such file or folder", where=source,
                           hint="point --data at a folder of PNG/JPEG images or MNIST IDX files")
        if not root.is_dir():
            raise GenError("this is a file, not a folder", where=source,
                           hint="point --data at a folder: one subfolder per class, or images "
                                "directly inside for an unlabelled set, or MNIST IDX files")
        idx = find_idx_files(root)
        if idx is not None:
            stack, labels, class_names, sources = load_idx(root, idx)
            kind = "idx"
            arrays, gray = stack, [True]
        else:
            arrays, gray, labels, class_names, sources = _load_folder(root, resize, any_size=patch is not None)
            kind = "folder"
            resize_done = True

    if not resize_done and resize is not None:
        arrays = _parallel_map(lambda a: resize_array(a, resize), list(arrays))
    c = 1 if channels == "1" or (channels == "auto" and all(gray)) else 3
    if patch is not None:
        return _photos(arrays, c, patch, sources, likelihood, resize, kind, noise)
    n = len(arrays)
    h, w = arrays[0].shape[:2]
    out = np.empty((n, c, h, w), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i] = to_channels(a, c)

    import torch

    items = torch.from_numpy(out)
    conditions = None
    if labels is not None:
        conditions = torch.zeros((n, len(class_names)), dtype=torch.float32)
        conditions[torch.arange(n), torch.from_numpy(np.asarray(labels, dtype=np.int64))] = 1.0
    return LoadedData(
        items=items,
        conditions=conditions,
        class_names=list(class_names),
        likelihood=likelihood,  # type: ignore[arg-type]
        item_kind="grid2d",
        normalisation={"scale": "0..1"},
        sources=list(sources),
        meta={"channels": c, "height": int(h), "width": int(w),
              "resize": list(resize) if resize is not None else None,
              "source_kind": kind, "noise": noise.text()},
    )


def _photos(arrays, c: int, patch: int, sources: list[str], likelihood: str, resize, kind: str,
            noise: NoiseSpec) -> LoadedData:
    """Whole images of any size, for fully convolutional training on random `patch` crops."""
    import torch

    images = []
    for array, source in zip(arrays, sources):
        h, w = array.shape[:2]
        if min(h, w) < patch:
            raise GenError(f"the image is {h}x{w}, smaller than the {patch}-pixel patches", where=source,
                           hint="use a smaller --patch or remove the image")
        images.append(torch.from_numpy(np.ascontiguousarray(to_channels(array, c))))
    return LoadedData(
        items=torch.empty((0, c, patch, patch)), conditions=None, class_names=[], likelihood=likelihood,
        item_kind="grid2d", normalisation={"scale": "0..1"}, sources=list(sources), images=images,
        meta={"channels": c, "patch": patch, "resize": list(resize) if resize is not None else None,
              "source_kind": kind, "noise": noise.text()},
    )


def _fair_photos() -> tuple[list[np.ndarray], list[bool], list[str]]:
    try:
        import skimage.data
    except ImportError:
        raise GenError("builtin:photos needs scikit-image", where="--data",
                       hint="pip install 'gencore[denoise]'") from None
    from matplotlib import cbook

    arrays, sources = [], []
    for module, name in FAIR_PHOTOS:
        if module == "skimage":
            attr, _, index = name.partition(":")
            image = getattr(skimage.data, attr)()
            image = image[int(index)] if index else image
        else:
            from PIL import Image

            with cbook.get_sample_data(name) as fh, Image.open(fh) as im:
                image = np.asarray(im.convert("RGB"))
        arr = np.asarray(image, dtype=np.float32) / 255.0
        arrays.append(arr[..., :3] if arr.ndim == 3 else arr)
        sources.append(f"{module}:{name}")
    return arrays, [a.ndim == 2 for a in arrays], sources


def did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, [*BUILTINS, *datasets.REMOTES], n=1, cutoff=0.6)
    return f"did you mean builtin:{close[0]}? " if close else ""


def _digits() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    stack = (np.asarray(d.images, dtype=np.float32) / 16.0).clip(0.0, 1.0)
    return stack, np.asarray(d.target, dtype=np.int64), [str(i) for i in range(10)], [DIGITS_SOURCE]


# -- folders --------------------------------------------------------------------------------------
def _read_for_training(job: tuple[Path, tuple[int, int] | None]):
    path, size = job
    try:
        arr, gray = read_image(path)
    except ImageReadError as exc:
        return None, exc.reason, None, False
    orig = arr.shape[:2]
    if size is not None:
        arr = resize_array(arr, size)
    return arr, None, orig, gray


def _list_folder(root: Path) -> tuple[list[str], list[Path], list[int], bool]:
    """The image files under `root`: class names, paths, each path's class index, and whether the
    folder is labelled (one subfolder per class) or not (images at the top level)."""
    try:
        with os.scandir(root) as entries:
            empty = not any(entries)
    except OSError as exc:
        raise GenError(f"cannot read the folder ({exc.strerror or exc})", where=str(root)) from None
    if empty:
        raise GenError("folder is empty", where=str(root),
                       hint="put PNG or JPEG images in it, one subfolder per class")
    top, classes, other = scan_class_folder(root, IMAGE_SUFFIXES, MAX_FILES)
    if top and classes:
        sub = next(iter(sorted(classes)))
        raise GenError(f"images both at the top level ({len(top)}, e.g. {top[0].name}) and in class "
                       f"subfolders ({len(classes)}, e.g. {sub}/)", where=str(root),
                       hint="move the top-level images into a class subfolder, or the images "
                            "out of the subfolders for an unlabelled set")
    if not top and not classes:
        raise GenError(f"no PNG or JPEG images found in {root} ({other} other files)",
                       where=str(root), hint="the images need a .png, .jpg or .jpeg suffix")
    if not classes:
        return [], top, [0] * len(top), False
    names = sorted(classes)
    return names, [p for name in names for p in classes[name]], [i for i, name in enumerate(names) for _ in classes[name]], True


def _load_folder(root: Path, resize: tuple[int, int] | None, any_size: bool = False):
    names, paths, owners, labelled = _list_folder(root)

    with bomb_warnings_as_errors():
        results = _parallel_map(_read_for_training, [(p, resize) for p in paths])

    kept_arrays: list[np.ndarray] = []
    kept_gray: list[bool] = []
    kept_owner: list[int] = []
    kept_paths: list[Path] = []
    kept_sizes: list[tuple[int, int]] = []
    skipped: list[tuple[Path, str]] = []
    for path, owner, (arr, reason, orig, gray) in zip(paths, owners, results):
        if arr is None:
            skipped.append((path, reason))
            continue
        kept_arrays.append(arr)
        kept_gray.append(gray)
        kept_owner.append(owner)
        kept_paths.append(path)
        kept_sizes.append(orig)
    for path, reason in skipped[:MAX_SKIP_WARNINGS]:
        warnings.warn(f"{path}: skipped, {reason}", UserWarning, stacklevel=4)
    if len(skipped) > MAX_SKIP_WARNINGS:
        warnings.warn(f"{root}: {len(skipped) - MAX_SKIP_WARNINGS} more unreadable images skipped",
                      UserWarning, stacklevel=4)
    if not kept_arrays:
        path, reason = skipped[0]
        raise GenError(f"none of the {len(paths)} images could be read; {path.name}: {reason}",
                       where=str(root), hint="check that the files are valid PNG or JPEG images")

    if resize is None and not any_size:
        first = kept_sizes[0]
        for path, size in zip(kept_paths, kept_sizes):
            if size != first:
                raise GenError(
                    f"images differ in size: {kept_paths[0]} is {_size_text(first)} but {path} is "
                    f"{_size_text(size)} (height x width)", where=str(root),
                    hint=f"pass --resize H,W, e.g. --resize {first[0]},{first[1]}")

    labels = None
    class_names: list[str] = []
    if labelled:
        present = sorted(set(kept_owner))
        for i, name in enumerate(names):
            if i not in present:
                warnings.warn(f"{root / name}: class dropped, none of its images could be read",
                              UserWarning, stacklevel=4)
        remap = {old: new for new, old in enumerate(present)}
        labels = np.array([remap[o] for o in kept_owner], dtype=np.int64)
        class_names = [names[i] for i in present]
    sources = [p.relative_to(root).as_posix() for p in kept_paths]
    return kept_arrays, kept_gray, labels, class_names, sources


# -- files for reconstruct / interpolate ----------------------------------------------------------
def load_user_files(paths: Iterable[Path], spec: dict[str, Any]):
    meta = spec.get("meta") or {}
    shape = spec.get("item_shape") or [meta.get("channels"), meta.get("height"), meta.get("width")]
    c, h, w = (int(x) for x in shape)
    resize = meta.get("resize")
    arrays: list[np.ndarray] = []
    implied: list[str | None] = []
    for raw in paths:
        path = Path(raw)
        where = str(raw)
        if not path.exists():
            raise GenError("no such file", where=where, hint="give the path of a PNG or JPEG image")
        if path.is_dir():
            raise GenError("this is a folder, not an image file", where=where,
                           hint="give PNG or JPEG image files")
        with bomb_warnings_as_errors():
            try:
                arr, _gray = read_image(path)
            except ImageReadError as exc:
                raise GenError(f"cannot read the image: {exc.reason}", where=where,
                               hint="give a valid PNG or JPEG image") from None
        if resize:
            arr = resize_array(arr, (h, w))
        elif arr.shape[:2] != (h, w):
            raise GenError(f"the image is {_size_text(arr.shape[:2])} pixels (height x width)",
                           where=where, hint=f"the run was trained on {h}x{w} images; "
                                             f"resize it to {h}x{w} first")
        arrays.append(to_channels(arr, c))
        parent = path.parent.name or path.resolve().parent.name
        implied.append(parent or None)

    import torch

    if not arrays:
        return torch.zeros((0, c, h, w), dtype=torch.float32), implied
    return torch.from_numpy(np.stack(arrays).astype(np.float32, copy=False)), implied
