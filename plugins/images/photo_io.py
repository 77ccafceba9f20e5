"""Reading and re-encoding user photos for `gen denoise`, keeping what the user had: format, size,
mode, alpha (passed through untouched), 16-bit depth, ICC profile and EXIF."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gencore.errors import GenError

from .loaders import MAX_PIXELS, PIL_FORMATS

JPEG_QUALITY = 95


@dataclass
class PhotoState:
    format: str
    mode: str
    alpha: np.ndarray | None = None  # untouched alpha plane in the source's own dtype
    info: dict[str, Any] = field(default_factory=dict)  # icc_profile, exif, dpi


def read_photo(data: bytes, where: str):
    """Bytes of a PNG or JPEG -> ((C, H, W) float32 in [0, 1], PhotoState)."""
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
            if im.size[0] * im.size[1] > MAX_PIXELS:
                raise GenError(f"image of {im.size[0]}x{im.size[1]} pixels exceeds the {MAX_PIXELS:,}-pixel cap",
                               where=where, hint="this looks like a decompression bomb")
            im.load()
    except GenError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise GenError(f"not a readable PNG or JPEG ({type(exc).__name__})", where=where,
                       hint="gen denoise reads PNG and JPEG files") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise GenError(f"the image is corrupt or truncated ({exc})", where=where) from None
    info = {k: im.info[k] for k in ("icc_profile", "exif", "dpi") if k in im.info}
    state = PhotoState(format=im.format, mode=im.mode, info=info)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(im, dtype=np.float64)
        values = (values / (65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0))[None]
    else:
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            state.mode = im.mode
        if im.mode in ("RGBA", "LA"):
            arr = np.asarray(im)
            state.alpha = arr[..., -1].copy()
            arr = arr[..., :-1]
        else:
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
        values = arr.astype(np.float64) / 255.0
        values = values[None] if values.ndim == 2 else values.transpose(2, 0, 1)
    return torch.from_numpy(values.astype(np.float32)), state


def encode_photo(values, state: PhotoState) -> bytes:
    """(C, H, W) in [0, 1] -> encoded bytes in the source's format and mode."""
    from PIL import Image

    arr = values.clamp(0, 1).cpu().numpy()
    if state.mode.startswith("I;16") or state.mode == "I":
        im = Image.fromarray((arr[0] * 65535 + 0.5).astype(np.uint16))
    else:
        pixels = (arr * 255 + 0.5).astype(np.uint8)
        if state.alpha is not None:
            pixels = np.concatenate([pixels, state.alpha[None]], axis=0)
        im = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    options = dict(state.info)
    if state.format == "JPEG":
        options.update(quality=JPEG_QUALITY, subsampling=0)
    buf = io.BytesIO()
    im.save(buf, format=state.format, **options)
    return buf.getvalue()
