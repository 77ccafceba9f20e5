"""`--data builtin:mnist|fashion-mnist|cifar10`: downloaded once into GENCORE_CACHE and checked
against the published checksums. Every download here comes from a loopback server that serves
small fixture files (127.0.0.1 only); the suite never reaches the network."""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, assert_one_line_error, gen, write_idx

from gencore.downloads import Remote
from gencore_images import datasets


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server name
        name = self.path.rsplit("/", 1)[-1]
        self.requests.append(name)
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # an interrupted download: the header promises the whole file, the connection drops halfway
        self.wfile.write(body[: len(body) // 2] if name in self.truncate else body)
        self.wfile.flush()
        if name in self.truncate:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A loopback HTTP server on a free port, for the length of one test."""
    handler = type("Handler", (_Handler,), {"files": {}, "truncate": set(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _serve(monkeypatch, tmp_path: Path, server, name: str, files: dict[str, bytes], md5: dict[str, str] | None = None):
    """Serve `files` for builtin:NAME through GENCORE_MIRROR, with their own sizes and MD5s."""
    handler, url = server
    handler.files.update(files)
    remotes = [Remote(f"https://example.invalid/{n}", len(b), md5=(md5 or {}).get(n, hashlib.md5(b).hexdigest()))
               for n, b in files.items()]
    monkeypatch.setitem(datasets.REMOTES, name, remotes)
    monkeypatch.setenv("GENCORE_MIRROR", url)
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "cache"))
    return handler


def _idx_files(tmp_path: Path, n: int = 60) -> dict[str, bytes]:
    folder = write_idx(tmp_path / "idx", n=n)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _cache_files(tmp_path: Path) -> list[str]:
    cache = tmp_path / "cache"
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


def test_mnist_downloads_once_and_trains(monkeypatch, tmp_path, server):
    handler = _serve(monkeypatch, tmp_path, server, "mnist", _idx_files(tmp_path))
    result = gen("train", "images", "--data", "builtin:mnist", *TINY, "-o", tmp_path / "run", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "downloading builtin:mnist" in result.stderr
    assert sorted(handler.requests) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert _cache_files(tmp_path) == ["mnist", "mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"]
    images, labels, class_names, _ = datasets.load("mnist")
    assert images.shape == (60, 28, 28) and class_names == [str(k) for k in range(10)]
    assert len(handler.requests) == 2, "the second use must read the cache, not download again"


def test_checksum_mismatch_keeps_nothing(monkeypatch, tmp_path, server):
    files = _idx_files(tmp_path)
    _serve(monkeypatch, tmp_path, server, "mnist", files, md5={"train-images-idx3-ubyte.gz": "0" * 32})
    result = gen("train", "images", "--data", "builtin:mnist", *TINY, "-o", tmp_path / "run", cwd=tmp_path)
    assert_one_line_error(result, "MD5", "not the published", "train-images-idx3-ubyte.gz")
    assert not any(name.endswith("train-images-idx3-ubyte.gz") for name in _cache_files(tmp_path))
    assert not (tmp_path / "run").exists()


def test_interrupted_download_keeps_nothing(monkeypatch, tmp_path, server):
    handler = _serve(monkeypatch, tmp_path, server, "mnist", _idx_files(tmp_path))
    handler.truncate.add("train-images-idx3-ubyte.gz")
    result = gen("train", "images", "--data", "builtin:mnist", *TINY, "-o", tmp_path / "run", cwd=tmp_path)
    assert_one_line_error(result, "stopped after", "nothing was kept", "run the command again")
    assert [n for n in _cache_files(tmp_path) if "images" in n] == []  # no partial file either
    handler.truncate.clear()
    assert datasets.load("mnist")[0].shape == (60, 28, 28)  # the next try downloads it whole


def test_offline_is_one_line(monkeypatch, tmp_path):
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GENCORE_MIRROR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "cache"))
    result = gen("train", "images", "--data", "builtin:fashion-mnist", *TINY, "-o", tmp_path / "run", cwd=tmp_path)
    assert_one_line_error(result, "cannot download builtin:fashion-mnist", "connect to the internet", "GENCORE_CACHE")


def _cifar_archive(per_batch: int = 4) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    labels = rng.integers(0, 10, 5 * per_batch).astype(np.uint8)
    planes = rng.integers(0, 256, (5 * per_batch, 3, 32, 32)).astype(np.uint8)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for b in range(5):
            rows = slice(b * per_batch, (b + 1) * per_batch)
            data = np.concatenate([labels[rows, None], planes[rows].reshape(per_batch, -1)], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/data_batch_{b + 1}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), labels, planes


def test_cifar10_binary_release_reads_without_extracting(monkeypatch, tmp_path, server):
    archive, labels, planes = _cifar_archive()
    _serve(monkeypatch, tmp_path, server, "cifar10", {"cifar-10-binary.tar.gz": archive})
    images, found, class_names, _ = datasets.load("cifar10")
    assert images.shape == (20, 32, 32, 3) and class_names[3] == "cat"
    assert (found == labels).all()
    assert np.allclose(images[5, :, :, 1] * 255, planes[5, 1])  # the green plane of the sixth image
    assert _cache_files(tmp_path) == ["cifar10", "cifar10/cifar-10-binary.tar.gz"]


def test_fashion_mnist_names_its_classes(monkeypatch, tmp_path, server):
    _serve(monkeypatch, tmp_path, server, "fashion-mnist", _idx_files(tmp_path))
    _, labels, class_names, _ = datasets.load("fashion-mnist")
    assert class_names == datasets.FASHION_CLASSES and labels.max() == 9


def test_unknown_builtin_suggests(tmp_path):
    result = gen("train", "images", "--data", "builtin:mnits", "-o", tmp_path / "run", cwd=tmp_path)
    assert_one_line_error(result, "did you mean builtin:mnist")
