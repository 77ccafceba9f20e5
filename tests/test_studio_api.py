"""`gen studio`'s JSON API through FastAPI's test client, on tiny real runs: runs and cards,
sampling as `gen sample` samples, native files and zips, the latent map, sliders and
interpolation, levels with the checker's path, MIDI with WAV, denoise with progress, scoring,
and every bad request answered with a 4xx and a one-line JSON error."""
from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
from conftest import gen
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from gencore.studio.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(studio_runs, tmp_path_factory):
    app = create_app(studio_runs, [], tmp_path_factory.mktemp("studio-work"), device="cpu", max_upload_bytes=2 * 2**20)
    with TestClient(app) as test_client:
        yield test_client


def one_line_error(response, status: int, *needles: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    for needle in needles:
        assert needle in body["error"]
    return body["error"]


def sample(client, run: str, **body) -> list[dict]:
    response = client.post(f"/api/runs/{run}/sample", json=body)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_runs_are_grouped_by_domain_with_a_model_card(client):
    runs = client.get("/api/runs").json()["runs"]
    local = {r["id"]: r["domain"] for r in runs if not r["id"].startswith("pretrained:")}
    assert local == {"digits": "images", "levels": "levels", "midi": "midi", "flows": "tabular"}
    assert {"pretrained:digits", "pretrained:smb", "pretrained:denoiser"} <= {r["id"] for r in runs}
    card = client.get("/api/runs/digits").json()
    assert card["class_names"] == [str(i) for i in range(10)] and card["latent_dim"] == 4
    assert card["metrics"]["val_loss"] > 0 and "loss.png" in card["files"]
    assert client.get("/api/runs/digits/files/loss.png").content[:4] == b"\x89PNG"
    midi = client.get("/api/runs/midi").json()
    assert {"tempo", "bars", "key"} <= {o["name"] for o in midi["options"]}


def test_a_grid_is_what_gen_sample_makes_with_the_same_seed(client, studio_runs, tmp_path):
    items = sample(client, "digits", classes=["7"], n=16, temperature=0.8, seed=3)
    assert len(items) == 16 and {i["class"] for i in items} == {"7"}
    files = client.get(f"/api/items/{items[5]['id']}/files").json()["files"]
    assert files == ["7-s3-05.png"]
    page = np.asarray(Image.open(io.BytesIO(client.get(f"/api/items/{items[5]['id']}/files/{files[0]}").content)))
    result = gen("sample", "-r", studio_runs / "digits", "--class", "7", "--n", "16", "-t", "0.8", "--seed", "3",
                 "-o", tmp_path / "cli")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(page, np.asarray(Image.open(tmp_path / "cli" / "7-0005.png")))
    again = sample(client, "digits", classes=["7"], n=16, temperature=0.8, seed=3)
    assert [i["preview"] for i in again] == [i["preview"] for i in items]


def test_zip_of_picks_and_downloads_are_native_attachments(client):
    items = sample(client, "digits", classes=["1"], n=2, seed=0)
    picks = client.get(f"/api/picks.zip?items={items[0]['id']},{items[1]['id']}")
    assert picks.status_code == 200 and picks.headers["content-type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(picks.content)).namelist()) == ["digits/1-s0-00.png", "digits/1-s0-01.png"]
    one = client.get(f"/api/items/{items[0]['id']}/files/1-s0-00.png")
    assert one.headers["content-disposition"].startswith("attachment")


def test_latent_map_sliders_and_interpolation_decode(client):
    found = client.get("/api/runs/digits/latent").json()
    assert len(found["points"]) == len(found["labels"]) == found["items"] > 100
    assert len(found["dimensions"]) == 4 and "mean" not in found
    point = client.post("/api/runs/digits/decode", json={"point": [0.3, -0.2], "class": "4"}).json()["items"]
    centre = client.post("/api/runs/digits/decode", json={"eps": [0, 0, 0, 0], "class": "4"}).json()["items"]
    moved = client.post("/api/runs/digits/decode", json={"eps": [2.5, 0, 0, 0], "class": "4"}).json()["items"]
    assert point[0]["class"] == "4" and centre[0]["preview"] != moved[0]["preview"]
    a, b = sample(client, "digits", classes=["3"], n=2, seed=5)
    path = client.post("/api/runs/digits/interpolate", json={"from": a["id"], "to": b["id"], "steps": 6}).json()["items"]
    assert len(path) == 6
    assert path[0]["preview"] == a["preview"] and path[-1]["preview"] == b["preview"]


def test_levels_show_the_checkers_path_and_download_as_text(client):
    assert {i["class"] for i in sample(client, "levels", classes=["enemy+pipe"], n=2)} == {"enemy+pipe"}
    items = sample(client, "levels", n=4, seed=0)
    plays = [i["notes"]["play"] for i in items]
    for play in plays:  # the path runs from the start to the standing cell furthest along
        assert play["finished"] == (play["furthest"] == play["cols"] - 1)
        assert bool(play["path"]) == (play["furthest"] >= 0)
        if play["path"]:
            columns = [c for _, c in play["path"]]
            assert max(columns) <= play["furthest"] and all(0 <= r < play["rows"] for r, _ in play["path"])
    files = client.get(f"/api/items/{items[0]['id']}/files").json()["files"]
    text = next(f for f in files if f.endswith(".txt"))
    rows = client.get(f"/api/items/{items[0]['id']}/files/{text}").text.splitlines()
    assert len(rows) == plays[0]["rows"] and {len(r) for r in rows} == {plays[0]["cols"]}


def test_midi_items_have_a_midi_file_and_a_wav_preview(client):
    items = sample(client, "midi", classes=["minor"], n=2, seed=1, options={"tempo": 96})
    files = client.get(f"/api/items/{items[0]['id']}/files").json()["files"]
    assert sorted(f.rsplit(".", 1)[1] for f in files) == ["mid", "png", "wav"]
    mid = client.get(f"/api/items/{items[0]['id']}/files/{next(f for f in files if f.endswith('.mid'))}?inline=1")
    assert mid.content[:4] == b"MThd" and mid.headers["content-type"] == "audio/midi"
    assert "content-disposition" not in mid.headers


def test_denoise_reports_progress_and_keeps_the_format(client):
    noisy = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "PNG")
    job = client.post("/api/denoise", files={"file": ("shot.png", buf.getvalue(), "image/png")}).json()
    assert (job["width"], job["height"], job["channels"]) == (64, 48, 3)
    deadline = time.monotonic() + 300
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["state"] == "done" and job["progress"] == 1.0
    result = client.get(f"/api/jobs/{job['id']}/result")
    assert Image.open(io.BytesIO(result.content)).size == (64, 48)
    assert 'filename="denoised-shot.png"' in result.headers["content-disposition"]


def test_score_dropped_images_gives_a_plot_and_a_table(client):
    pngs = []
    for i in range(6):
        buf = io.BytesIO()
        digit = np.zeros((8, 8), np.uint8)
        digit[1:7, 3:5] = 40 * i
        Image.fromarray(digit).save(buf, "PNG")
        pngs.append(("files", (f"d{i}.png", buf.getvalue(), "image/png")))
    reply = client.post("/api/runs/digits/score", files=pngs).json()
    assert reply["inputs"] == 6 and reply["plot"].startswith("data:image/png;base64,")
    assert sorted(r["input"] for r in reply["rows"]) == [f"d{i}.png" for i in range(6)]
    scores = [r["score"] for r in reply["rows"]]
    assert scores == sorted(scores, reverse=True) and reply["method"] == "ratio"  # the images default
    assert all(r["preview"].startswith("data:image/png") for r in reply["rows"])


def test_score_a_dropped_csv_on_a_tabular_run(client):
    from test_tabular import flows

    reply = client.post("/api/runs/flows/score", files=[("files", ("week2.csv", flows(200, seed=2, anomalies=16), "text/csv"))])
    assert reply.status_code == 200, reply.text
    found = reply.json()
    assert found["inputs"] == 200 and found["method"] == "elbo" and found["rows"][0]["input"].startswith("week2.csv#")
    assert found["roc_auc"] > 0.75 and found["threshold_rule"] == "validation quantile 0.99"  # measured 0.83
    assert found["plot"].startswith("data:image/png;base64,") and "preview" not in found["rows"][0]


def test_bad_requests_get_one_line_4xx(client):
    one_line_error(client.get("/api/runs/nope"), 404, "nope")
    one_line_error(client.get("/api/runs/..%2F..%2Fetc/files/loss.png"), 404)
    one_line_error(client.get("/api/runs/digits/files/config.json"), 404, "config.json")
    one_line_error(client.get("/api/items/not-an-id/files"), 400, "item")
    item = sample(client, "digits", classes=["2"], n=1)[0]
    one_line_error(client.get(f"/api/items/{item['id']}/files/..%2F..%2Fconfig.json"), 404)
    one_line_error(client.get(f"/api/items/{item['id']}/files/.hidden"), 400)
    one_line_error(client.post("/api/runs/digits/sample", json={"classes": ["77"]}), 400, "--class", "77")
    one_line_error(client.post("/api/runs/digits/sample", json={"n": 1000}), 400, "n")
    one_line_error(client.post("/api/runs/digits/sample", json={"n": "many"}), 422, "n")
    one_line_error(client.post("/api/runs/digits/sample", json={"temperature": -1}), 400, "temperature")
    one_line_error(client.post("/api/runs/digits/sample", json={"options": {"tempo": 90}}), 400, "tempo")
    one_line_error(client.post("/api/runs/midi/sample", json={"options": {"bars": 3}}), 400, "--bars")
    one_line_error(client.post("/api/runs/digits/decode", json={"eps": [0, 0]}), 400, "eps")
    one_line_error(client.post("/api/runs/digits/decode", json={}), 400)
    one_line_error(client.post("/api/runs/digits/sample", content=b"{not json", headers={"content-type": "application/json"}), 422)
    one_line_error(client.post("/api/denoise", files={"file": ("x.png", b"\x89PNG garbage", "image/png")}), 400, "x.png")
    one_line_error(client.post("/api/denoise", files={"file": ("big.png", b"0" * (3 * 2**20), "image/png")}), 413, "MiB")
    one_line_error(client.post("/api/runs/digits/score", files=[("files", ("a.exe", b"MZ", "application/octet-stream"))]),
                   400, ".exe")
    big = io.BytesIO()
    Image.new("L", (64, 64)).save(big, "PNG")
    error = one_line_error(client.post("/api/runs/digits/score", files=[("files", ("huge.png", big.getvalue(), "image/png"))]),
                           400, "huge.png")
    assert "studio-work" not in error  # the upload's name, never the studio's copy of it
    a = sample(client, "digits", n=1)[0]
    b = sample(client, "levels", n=1)[0]
    one_line_error(client.post("/api/runs/digits/interpolate", json={"from": a["id"], "to": b["id"]}), 400, "run")
    assert json.loads(client.get("/api/health").text) == {"ok": True}


def test_gen_studio_serves_on_loopback_only_and_refuses_a_busy_port(studio_runs, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gencore", "studio", "-r", str(studio_runs / "digits"),
                                 "--runs-dir", str(tmp_path), "--port", str(port), "--no-open"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    assert reply.status == 200 and b"gen studio" in reply.read()
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=30) as reply:
            assert json.loads(reply.read())["selected"] == "digits"
        listening = [line.split() for line in open("/proc/net/tcp").read().splitlines()[1:]] if os.path.exists("/proc/net/tcp") else []
        ours = [cols[1] for cols in listening if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port]
        if listening:
            assert ours == ["0100007F:" + f"{port:04X}"]  # 127.0.0.1 only
        busy = gen("studio", "--port", str(port), "--host", "0.0.0.0", "--no-open", cwd=tmp_path)
        assert busy.exit_code == 2
        assert "reachable from other machines" in busy.stderr and "--port" in busy.stderr.splitlines()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with one byte of image data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    with TestClient(create_app(tmp_path / "runs", [], tmp_path / "work", device="cpu")) as bare:
        error = one_line_error(bare.post("/api/denoise", files={"file": ("bomb.png", png_claiming(10_000, 10_000), "image/png")}),
                               400, "bomb.png", "10000x10000")
        assert "40,000,000" in error
        one_line_error(bare.post("/api/denoise", files={"file": ("huge.png", png_claiming(30_000, 30_000), "image/png")}),
                       400, "huge.png", "decompression bomb")
        listing = bare.get("/api/runs").json()  # only the shipped runs: no run folder was given
        assert listing["selected"] is None and all(r["source"] == "pretrained" for r in listing["runs"])


def test_extensions_add_endpoints_and_page_scripts(tmp_path, monkeypatch):
    from importlib import metadata

    from gencore.studio import extensions

    def register(app, studio):
        @app.get("/api/steering/ping")
        def ping():
            return {"runs": len(studio.catalogue.listing())}

        return ["/api/steering/panel.js"]

    class EntryPoint:
        value = "steering:register"

        def load(self):
            return register

    class Broken(EntryPoint):
        value = "broken:register"

        def load(self):
            raise ImportError("no module named broken")

    monkeypatch.setattr(extensions.metadata, "entry_points",
                        lambda group: [EntryPoint(), Broken()] if group == extensions.GROUP else metadata.entry_points(group=group))
    with TestClient(create_app(tmp_path / "runs", [], tmp_path / "work", device="cpu")) as app:
        assert app.get("/api/extensions").json() == {"scripts": ["/api/steering/panel.js"]}
        from gencore.runs import pretrained_runs

        assert app.get("/api/steering/ping").json() == {"runs": len(pretrained_runs())}


def test_without_the_studio_extra_one_line_with_the_install_hint(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = gen("studio", "--no-open", cwd=tmp_path)
    assert result.exit_code == 2 and "pip install 'gencore[studio]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_pretrained_runs_are_listed_first_in_their_domain(studio_runs, tmp_path, monkeypatch):
    from gencore import runs

    monkeypatch.setattr(runs, "pretrained_runs", lambda: {"digits": studio_runs / "digits"}, raising=False)
    with TestClient(create_app(studio_runs, ["pretrained:digits"], tmp_path / "work", device="cpu")) as app:
        listing = app.get("/api/runs").json()
        assert listing["selected"] == "pretrained:digits"
        images = [r for r in listing["runs"] if r["domain"] == "images"]
        assert [(r["id"], r["source"]) for r in images] == [("pretrained:digits", "pretrained"), ("digits", "runs")]
        assert len(sample(app, "pretrained:digits", classes=["7"], n=16)) == 16
