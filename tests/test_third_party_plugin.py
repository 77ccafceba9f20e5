"""A third-party domain plugs in through an entry point with its own CLI option, and a broken
plugin is reported without taking the CLI down. The distributions are faked on disk: a
`*.dist-info` folder with entry_points.txt on PYTHONPATH is what pip would have installed."""
import json
import os
import textwrap
from pathlib import Path

import pytest

from conftest import gen_subprocess

BLOBS = textwrap.dedent('''
    """A toy third-party domain: 12x12 images of one bright square per class."""
    from gencore.plugin import Domain, DomainOption, LoadedData


    class Squares(Domain):
        name = "squares"
        description = "Bright squares at class-dependent places (third-party test domain)"
        item_kind = "grid2d"
        default_data = "builtin:squares"
        options = (DomainOption("side", "side of the square in pixels, e.g. --side 3", int, 4, commands=("train",)),)

        def load(self, source, options):
            import torch

            g = torch.Generator().manual_seed(0)
            n, side = 200, options["side"]
            labels = torch.arange(n) % 2
            items = torch.zeros(n, 1, 12, 12)
            for i in range(n):
                r = int(torch.randint(0, 12 - side, (1,), generator=g))
                col = 0 if labels[i] == 0 else 12 - side
                items[i, 0, r:r + side, col:col + side] = 1.0
            return LoadedData(items, torch.eye(2)[labels], ["left", "right"], "bernoulli", "grid2d",
                              sources=["builtin:squares"], meta={"side": side})

        def export(self, items, out_dir, stems, spec, options=None):
            paths = []
            for item, stem in zip(items, stems):
                path = out_dir / f"{stem}.txt"
                rows = ["".join("#" if v > 0.5 else "." for v in row) for row in item[0].tolist()]
                path.write_text("\\n".join(rows) + "\\n")
                paths.append(path)
            return paths

        def preview(self, items, spec, columns, options=None):
            from PIL import Image

            return Image.new("L", (12 * columns, 12))


    plugin = Squares()
''')


# A domain that loads data but lacks the required export and preview hooks.
PARTIAL = textwrap.dedent('''
    from gencore.plugin import Domain


    class Partial(Domain):
        name = "partial"
        description = "loads, but cannot write what it samples"

        def load(self, source, options):
            raise NotImplementedError


    plugin = Partial()
''')


def fake_distribution(site: Path, name: str, module_source: str | None, entry: str) -> None:
    if module_source is not None:
        (site / f"{name}_domain.py").write_text(module_source)
    info = site / f"{name}_domain-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-domain\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gencore.plugins]\n{entry}\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    fake_distribution(site, "squares", BLOBS, "squares = squares_domain:plugin")
    fake_distribution(site, "broken", None, "broken = no_such_module_anywhere:plugin")
    fake_distribution(site, "partial", PARTIAL, "partial = partial_domain:plugin")
    return site


def env_for(site: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_plugins_lists_third_party_and_broken(site, tmp_path):
    result = gen_subprocess("plugins", "--json", cwd=tmp_path, env=env_for(site))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["images"]["status"] == "ok" and rows["images"]["distribution"].startswith("gencore")
    assert rows["squares"]["status"] == "ok" and rows["squares"]["distribution"] == "squares-domain 0.1"
    assert rows["squares"]["options"] == ["--side"]
    assert rows["broken"]["status"] == "failed" and "no_such_module_anywhere" in rows["broken"]["error"]
    # the contract is checked when the plugin loads, not at sample time
    assert rows["partial"]["status"] == "incomplete"
    assert rows["partial"]["error"] == "lacks the required hooks export, preview"


def test_third_party_domain_trains_and_samples_with_its_option(site, tmp_path):
    env = env_for(site)
    result = gen_subprocess("train", "squares", "--side", "3", "--epochs", "3", "--width", "8", "--latent", "2",
                            "-o", "runs/sq", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "runs/sq/config.json").read_text())
    assert config["domain"] == "squares" and config["data"]["options"] == {"side": 3}
    assert config["class_names"] == ["left", "right"]
    result = gen_subprocess("sample", "--class", "right", "--n", "3", "-o", "out", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "runs/sq" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == [
        "right-0000.txt", "right-0001.txt", "right-0002.txt"]
    result = gen_subprocess("train", "squares", "--size", "3", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--size" in result.stderr and "--side" in result.stderr
    result = gen_subprocess("train", "broken", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "failed to load" in result.stderr
    result = gen_subprocess("train", "partial", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "is incomplete: lacks the required hooks export, preview" in result.stderr
