"""Standard image datasets downloaded on demand: `builtin:mnist`, `builtin:fashion-mnist` (IDX)
and `builtin:cifar10` (the binary release: fixed-length records, no pickle).

Each file is downloaded once into the gencore cache (gencore.downloads) and checked against the
checksum its publisher gives:
- MNIST: the MD5s of torchvision's MNIST resources (github.com/pytorch/vision,
  torchvision/datasets/mnist.py), on the PyTorch project's mirror of Yann LeCun's files.
- Fashion-MNIST: the MD5s in the README of github.com/zalandoresearch/fashion-mnist.
- CIFAR-10: the MD5 on https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version").
Only the training sets are read: 60,000 MNIST or Fashion-MNIST images, 50,000 CIFAR-10 images.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from gencore.downloads import Remote, fetch
from gencore.errors import GenError

MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
REMOTES: dict[str, list[Remote]] = {
    "mnist": [
        Remote(MNIST_BASE + "train-images-idx3-ubyte.gz", 9_912_422, md5="f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Remote(MNIST_BASE + "train-labels-idx1-ubyte.gz", 28_881, md5="d53e105ee54ea40749a09fcbcd1e9432"),
    ],
    "fashion-mnist": [
        Remote(FASHION_BASE + "train-images-idx3-ubyte.gz", 26_421_880, md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Remote(FASHION_BASE + "train-labels-idx1-ubyte.gz", 29_515, md5="25c81989df183df01b3e8a0aad5dffbe"),
    ],
    "cifar10": [
        Remote("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", 170_052_171,
               md5="c32a1d4ab5d03f1284b67883e8d87530"),
    ],
}
DESCRIPTIONS = {
    "mnist": "MNIST's 60,000 28x28 handwritten digits (downloaded once, 10 MB)",
    "fashion-mnist": "Fashion-MNIST's 60,000 28x28 clothing images (downloaded once, 26 MB)",
    "cifar10": "CIFAR-10's 50,000 32x32 colour photos in 10 classes (downloaded once, 170 MB)",
}
# Zalando's label order; short names that work as --class values.
FASHION_CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_MEMBERS = [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_RECORD = 1 + 3 * 32 * 32  # a label byte, then the red, green and blue planes


def load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(images (N, H, W) or (N, H, W, 3) float32 in [0, 1], labels (N,), class names, sources)."""
    files = [fetch(remote, name, f"builtin:{name} {remote.filename}") for remote in REMOTES[name]]
    if name == "cifar10":
        return _cifar(files[0])
    from .idx import find_idx_files, load_idx

    stack, labels, class_names, sources = load_idx(files[0].parent, find_idx_files(files[0].parent))
    if name == "fashion-mnist":
        class_names = [FASHION_CLASSES[int(k)] for k in class_names]
    return stack, labels, class_names, [f"builtin:{name} ({s})" for s in sources]


def _cifar(archive: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read the five training batches straight from the archive: nothing is extracted."""
    batches = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                if member.name in CIFAR_MEMBERS and member.isfile():
                    batches[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise GenError(f"the CIFAR-10 archive is unreadable ({exc})", where=str(archive),
                       hint="delete it and run again to download it afresh") from None
    missing = [m for m in CIFAR_MEMBERS if m not in batches]
    if missing or any(len(b) % CIFAR_RECORD for b in batches.values()):
        raise GenError(f"the CIFAR-10 archive lacks or truncates {', '.join(missing) or 'a batch'}",
                       where=str(archive), hint="delete it and run again to download it afresh")
    records = np.frombuffer(b"".join(batches[m] for m in CIFAR_MEMBERS), dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR_CLASSES):
        raise GenError(f"a CIFAR-10 label is {int(labels.max())}, above 9", where=str(archive),
                       hint="delete it and run again to download it afresh")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, H, W, 3)
    return images.astype(np.float32) / 255.0, labels, list(CIFAR_CLASSES), ["builtin:cifar10 (data_batch_1-5.bin)"]
