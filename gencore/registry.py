"""Discovering domains through the ``gencore.plugins`` entry-point group.

Built-in domains register exactly like third-party ones. Names are checked against the entry
points without importing anything; a plugin that fails to import, or that lacks a required hook
(docs/plugins.md), is reported by `gen plugins` and refused by name, never fatal.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from gencore.errors import GenError
from gencore.plugin import Domain, provides

GROUP = "gencore.plugins"
REQUIRED_HOOKS = ("load", "export", "preview")  # the base class's versions raise NotImplementedError
ITEM_KINDS = ("grid2d", "seq1d", "vector")


@dataclass
class PluginInfo:
    name: str
    value: str  # "module:attribute"
    distribution: str  # "name version", or "?" when the entry point has no distribution
    domain: Domain | None = None
    error: str | None = None
    status: str = "ok"  # ok | failed (did not import) | incomplete (breaks the contract)

    @property
    def module(self) -> str:
        return self.value.split(":")[0]


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as pip would
    return found


def domain_names() -> list[str]:
    return sorted(_entry_points())


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else "?"


@lru_cache(maxsize=None)
def _load(name: str) -> PluginInfo:
    ep = _entry_points()[name]
    info = PluginInfo(name=name, value=ep.value, distribution=_distribution(ep))
    try:
        obj = ep.load()
        domain = obj() if isinstance(obj, type) else obj
        if not isinstance(domain, Domain):
            raise TypeError(f"{ep.value} is a {type(domain).__name__}, not a gencore.plugin.Domain")
        if domain.name != name:
            raise TypeError(f"{ep.value} calls itself {domain.name!r} but is registered as {name!r}")
    except Exception as exc:  # a broken plugin must never take the CLI down
        info.error, info.status = f"{type(exc).__name__}: {exc}", "failed"
        return info
    problems = contract_problems(domain)
    if problems:
        info.error, info.status = "; ".join(problems), "incomplete"
    else:
        info.domain = domain
    return info


def contract_problems(domain: Domain) -> list[str]:
    """What `domain` lacks of the plugin contract, checked once when it loads (as pluggy checks
    hook implementations at registration), so a gap shows in `gen plugins`, not mid-command."""
    problems = []
    missing = [hook for hook in REQUIRED_HOOKS if not provides(domain, hook)]
    if missing:
        problems.append(f"lacks the required hook{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if domain.item_kind not in ITEM_KINDS:
        problems.append(f"item_kind {domain.item_kind!r} is not one of {', '.join(ITEM_KINDS)}")
    if not isinstance(domain.default_data, str) or not isinstance(domain.description, str):
        problems.append("default_data and description must be strings")
    for hook in ("load", "export", "preview", "load_files", "corrupt", "metrics", "parse_class", "generate"):
        if not callable(getattr(domain, hook, None)):
            problems.append(f"{hook} is not callable")
    return problems


def all_plugins() -> list[PluginInfo]:
    return [_load(name) for name in domain_names()]


def check_domain_name(name: str) -> None:
    if name not in _entry_points():
        import difflib

        known = ", ".join(domain_names()) or "none"
        close = difflib.get_close_matches(name, domain_names(), n=1, cutoff=0.6)
        raise GenError(
            f"unknown domain {name!r} (installed: {known})",
            where="DOMAIN",
            hint=(f"did you mean {close[0]!r}? " if close else "") + "`gen plugins` lists the installed domains",
        )


def get_domain(name: str) -> Domain:
    check_domain_name(name)
    info = _load(name)
    if info.domain is None:
        raise GenError(
            f"the {name!r} plugin {'failed to load' if info.status == 'failed' else 'is incomplete'}: {info.error}",
            where=info.value,
            hint=f"reinstall or fix the distribution {info.distribution}",
        )
    return info.domain
