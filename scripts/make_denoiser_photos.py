#!/usr/bin/env python3
"""Make the colour training photos of the shipped denoiser (assets/photos/) from Debian's
lomiri-wallpapers packages: each photo is resized so that its short side is 768 pixels (which also
averages away the camera's own noise) and its centre 512x512 is kept, as a JPEG at quality 95 with
no chroma subsampling. Licences and authors: assets/PROVENANCE.md.

    apt-get download lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
    for f in lomiri-wallpapers-*.deb; do dpkg-deb -x "$f" debs; done
    python scripts/make_denoiser_photos.py debs
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHORT_SIDE, CROP = 768, 512
# file in /usr/share/backgrounds -> name in assets/photos (what it shows)
PHOTOS = {
    "aitzgorri_by_Aitzol_Berasategi.jpg": "mountain-forest",
    "Bridge_by_Sander_Klootwijk.jpg": "bridge-cables",
    "Dragonfly_by_Bolly.jpg": "leaves",
    "friends_by_Aitzol_Berasategi.jpg": "dog-wooden-house",
    "life_by_Aitzol_Berasategi.jpg": "stream-rocks",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": "mountain-path",
    "Picture_0B_by_freespace.jpg": "fig-bowl",
    "Picture_1A_by_freespace.jpg": "paint-brushes",
    "seeding_by_Clements_Engelhardt.jpg": "dandelions",
    "sunset_by_Aitzol_Berasategi.jpg": "sunset-hills",
    "Wine_by_Jakkub_Mede.jpg": "wine-room",
    "Kleiber_by_Lukas_Baubkus.jpg": "bird-bark",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="where the packages were extracted, e.g. debs")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "photos")
    args = parser.parse_args()
    found = {p.name: p for p in (args.root / "usr" / "share" / "backgrounds").rglob("*.jpg")}
    missing = sorted(set(PHOTOS) - set(found))
    if missing:
        raise SystemExit(f"not found under {args.root}: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for source, name in PHOTOS.items():
        with Image.open(found[source]) as im:
            im = im.convert("RGB")
            scale = SHORT_SIDE / min(im.size)
            im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.Resampling.LANCZOS)
            left, top = (im.size[0] - CROP) // 2, (im.size[1] - CROP) // 2
            im.crop((left, top, left + CROP, top + CROP)).save(args.out / f"{name}.jpg", quality=95, subsampling=0)
        print(f"{source} -> {name}.jpg")


if __name__ == "__main__":
    main()
