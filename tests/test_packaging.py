"""Packaging: every Python package ships, the assets ship, and no artefact code can run code."""
import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gencore").rglob("__init__.py")}
    found |= {f"gencore_{p.parent.name}" for p in (ROOT / "plugins").glob("*/__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "gencore_assets" in listed


def test_assets_resolve():
    from gencore.assets import assets_root

    assert (assets_root() / "PROVENANCE.md").is_file()


BANNED_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
TORCH_LOADERS = {"torch", "torch.serialization"}  # modules whose `load` unpickles


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every import of a pickle-like module, every call of torch.load (through any alias), and
    every call of the eval or exec builtins in `source`, as 'line: what'."""
    tree = ast.parse(source, filename)
    found, modules, loaders = _unsafe_imports(tree)
    return found + _unsafe_call_sites(tree, modules, loaders)


def _unsafe_imports(tree: ast.AST) -> tuple[list[str], dict[str, str], set[str]]:
    """Imports of pickle-like modules; the local names of modules (T -> torch) and of torch.load."""
    modules: dict[str, str] = {}  # local name -> module it names, e.g. T -> torch
    loaders: set[str] = set()  # local names of torch.load itself
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    found.append(f"{node.lineno}: import {alias.name}")
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in BANNED_MODULES:
                found.append(f"{node.lineno}: from {module} import ...")
            for alias in node.names:
                if module in TORCH_LOADERS and alias.name == "load":
                    loaders.add(alias.asname or alias.name)
                if module == "torch" and alias.name == "serialization":
                    modules[alias.asname or alias.name] = "torch.serialization"
    return found, modules, loaders


def _unsafe_call_sites(tree: ast.AST, modules: dict[str, str], loaders: set[str]) -> list[str]:
    """Calls of torch.load (through any alias), eval, exec, and imports of pickle by name."""
    found = []

    def dotted(expr: ast.expr) -> str:
        if isinstance(expr, ast.Name):
            return modules.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            return f"{dotted(expr.value)}.{expr.attr}"
        return ""

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = dotted(func)
        if name in {f"{m}.load" for m in TORCH_LOADERS} or (isinstance(func, ast.Name) and func.id in loaders):
            found.append(f"{node.lineno}: torch.load")
        if (isinstance(func, ast.Name) and func.id in ("eval", "exec")) or name in ("builtins.eval", "builtins.exec"):
            found.append(f"{node.lineno}: {name}()")
        if name in ("importlib.import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).split(".")[0] in BANNED_MODULES:
            found.append(f"{node.lineno}: {name}({node.args[0].value!r})")
    return found


def test_the_unsafe_call_check_catches_every_form():
    for bad in ["import pickle", "import marshal as m", "from shelve import open", "import pickle.util",
                "import torch\ntorch.load('x')", "import torch as T\nT.load('x', weights_only=True)",
                "from torch import load\nload('x')", "from torch import load as L\nL('x')",
                "import torch.serialization\ntorch.serialization.load('x')",
                "from torch.serialization import load\nload(f)", "eval('1')", "exec('x = 1')",
                "import builtins\nbuiltins.eval('1')", "import importlib\nimportlib.import_module('pickle')"]:
        assert unsafe_calls(bad), bad
    for fine in ["model.eval()", "json.load(fh)", "import torch\nnp.load('x')", "safetensors.torch.load(b)",
                 "from safetensors.torch import load\nload(b)", "self.exec_module(m)"]:
        assert not unsafe_calls(fine), fine


def test_no_pickle_or_torch_load_anywhere():
    """The issue's rule over all shipped and shipped-alongside code: gencore/, plugins/, scripts/, bench/."""
    files = [p for top in ("gencore", "plugins", "scripts", "bench") for p in ROOT.joinpath(top).rglob("*.py")]
    assert len(files) > 50
    found = [f"{path.relative_to(ROOT)}:{hit}" for path in files for hit in unsafe_calls(path.read_text(), str(path))]
    assert not found, found
