"""Shared fixtures: tiny real data written by the tests, and runs trained once per session."""
from __future__ import annotations

import contextlib
import gzip
import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gencore.cli import app

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TINY = ["--epochs", "2", "--width", "8", "--latent", "4", "--limit", "300", "--checkpoint-every", "0"]


def load_script(name: str):
    """scripts/<name>.py as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def chdir(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def gen(*args: str, cwd: Path | None = None):
    """Run `gen ARGS` in-process through Typer's CliRunner."""
    runner = CliRunner()
    with chdir(cwd or Path.cwd()):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def gen_subprocess(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300):
    """Run the real `gen` entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "gencore", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *needles: str) -> None:
    """Exit code 2; the error is one line, the last on stderr (info lines such as `using run`
    may precede it); no traceback."""
    err = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.stdout, err)
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("gen: ")] == [lines[-1]], err
    assert lines[-1].startswith("gen: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[-1], err


def digits_array():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0 * 255).astype(np.uint8), d.target


def upscale(img8: np.ndarray, size: int = 28):
    from PIL import Image

    return Image.fromarray(img8).resize((size, size), Image.BILINEAR)


def write_png_folder(root: Path, per_class: int = 30, classes=range(10), labelled=True, size=28) -> Path:
    images, labels = digits_array()
    for k in classes:
        idx = np.flatnonzero(labels == k)[:per_class]
        folder = root / str(k) if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in idx:
            upscale(images[i], size).save(folder / f"d{i}.png")
    return root


def write_idx(root: Path, n: int = 400, gz: bool = True) -> Path:
    images, labels = digits_array()
    imgs = np.stack([np.asarray(upscale(im)) for im in images[:n]])
    root.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(root / f"train-images-idx3-ubyte{suffix}", "wb") as fh:
        fh.write(struct.pack(">IIII", 0x803, n, 28, 28) + imgs.tobytes())
    with opener(root / f"train-labels-idx1-ubyte{suffix}", "wb") as fh:
        fh.write(struct.pack(">II", 0x801, n) + labels[:n].astype(np.uint8).tobytes())
    return root


@pytest.fixture(scope="session", autouse=True)
def private_caches(tmp_path_factory):
    """Caches go to the session's temp folder, never to the user's: GENCORE_CACHE (converted
    corpora, docs/format.md) and matplotlib's font cache. Subprocesses inherit both."""
    root = tmp_path_factory.mktemp("caches")
    saved = {k: os.environ.get(k) for k in ("GENCORE_CACHE", "MPLCONFIGDIR")}
    os.environ["GENCORE_CACHE"] = str(root / "gencore")
    os.environ["MPLCONFIGDIR"] = str(root / "matplotlib")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="session")
def tiny_runs(workdir) -> dict[str, Path]:
    """One tiny digits run per arch."""
    runs = {}
    for arch in ("ae", "vae", "beta-vae", "cae", "dae"):
        out = workdir / "runs" / f"tiny-{arch}"
        result = gen("train", "images", "--arch", arch, *TINY, "-o", out, cwd=workdir)
        assert result.exit_code == 0, result.stderr
        runs[arch] = out
    return runs


@pytest.fixture(scope="session")
def default_run(workdir) -> Path:
    """The README's main job: the default VAE on the built-in digits, no flags."""
    out = workdir / "runs" / "default"
    result = gen("train", "images", "-o", out, cwd=workdir)
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def studio_runs(workdir, tiny_runs, tmp_path_factory) -> Path:
    """A runs folder for `gen studio`: the tiny digits VAE, a tiny levels run (the built-in demo
    corpus), a tiny MIDI run (a folder of songs the tests write) and a tiny tabular run (flows)."""
    from test_midi_domain import write_corpus
    from test_tabular import flows

    root = workdir / "studio-runs"
    root.mkdir(exist_ok=True)
    (root / "digits").symlink_to(tiny_runs["vae"], target_is_directory=True)
    result = gen("train", "levels", *TINY, "-o", root / "levels", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    corpus = write_corpus(tmp_path_factory.mktemp("studio-midi"))
    result = gen("train", "midi", "--data", corpus, "--epochs", "2", "--width", "8", "--latent", "4",
                 "--checkpoint-every", "0", "-o", root / "midi", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    (root.parent / "flows-train.csv").write_text(flows(420, seed=1, anomalies=20))
    result = gen("train", "tabular", "--data", root.parent / "flows-train.csv", "--categorical", "protocol,service",
                 "--epochs", "20", "--latent", "3", "--checkpoint-every", "0", "-o", root / "flows", cwd=workdir)
    assert result.exit_code == 0, result.stderr
    return root
