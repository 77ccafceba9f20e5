"""Packaging: every Python package ships, the assets ship, and no artefact code can run code."""
import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("gencore", "plugins")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "gencore_assets" in listed


def test_assets_resolve():
    from gencore.assets import assets_root

    assert (assets_root() / "PROVENANCE.md").is_file()


def test_no_pickle_or_torch_load_anywhere():
    banned_modules = {"pickle", "marshal", "shelve", "dill", "cloudpickle"}
    for path in [*ROOT.joinpath("gencore").rglob("*.py"), *ROOT.joinpath("plugins").rglob("*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, path
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, path
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert name not in ("eval", "exec") or isinstance(func, ast.Attribute), (path, node.lineno)
                if isinstance(func, ast.Attribute) and func.attr == "load":
                    assert getattr(func.value, "id", None) != "torch", (path, node.lineno)
