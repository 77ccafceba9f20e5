"""`gen runs`, `gen info` and `gen plugins`: what is installed and what was trained."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gencore.cli import app, common
from gencore.runs import RUNS_ROOT, last_metrics, list_runs, resolve_run, summarise

JSON_HELP = "Print a JSON report on stdout instead of a table. e.g. --json"


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@app.command()
@common.handle_errors
def plugins(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the installed domains, where each came from, and any that failed to load.

    e.g. gen plugins
    """
    from gencore.registry import all_plugins

    rows = []
    for info in all_plugins():
        domain = info.domain
        rows.append({
            "name": info.name, "status": info.status, "entry_point": info.value,
            "distribution": info.distribution, "description": domain.description if domain else None,
            "default_data": domain.default_data if domain else None,
            "options": [o.flag for o in domain.options] if domain else [], "error": info.error,
        })
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="gen plugins (entry-point group gencore.plugins)")
    for column in ("domain", "status", "from", "description / error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["status"], f"{row['entry_point']}\n{row['distribution']}",
                      row["description"] if row["status"] == "ok" else row["error"],
                      style=None if row["status"] == "ok" else "red")
    _stdout().print(table)


def _run_row(name: str, summary, status: str | None = None) -> dict:
    config = summary.config or {}
    final = (summary.complete or {}).get("metrics", {})
    last = last_metrics(summary.path)
    return {
        "run": name, "path": str(summary.path), "domain": config.get("domain"), "arch": config.get("arch"),
        "status": status or ("complete" if summary.complete else ("unreadable" if summary.error else "incomplete")),
        "epochs": last.get("epoch"), "val_loss": final.get("val_loss", last.get("val_loss")),
        "active_units": final.get("active_units", last.get("active_units")),
        "created": config.get("created"),
    }


# (header, key), most wanted first: a narrow terminal drops columns from the end, never folds them.
RUN_COLUMNS = (("run", "run"), ("domain", "domain"), ("status", "status"), ("arch", "arch"),
               ("val loss", "val_loss"), ("epochs", "epochs"), ("created", "created"),
               ("active units", "active_units"))


def _cell(row: dict, key: str) -> str:
    if key == "created" and row[key]:
        return str(row[key])[:16].replace("T", " ")  # to the minute
    return _fmt(row[key])


@app.command()
@common.handle_errors
def runs(
    root: Path = typer.Option(RUNS_ROOT, "--root", help="Folder holding the runs. e.g. --root experiments/runs"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the shipped runs (-r pretrained:NAME), then the runs under ./runs, oldest first.

    e.g. gen runs
    """
    from gencore.runs import PRETRAINED, pretrained_runs

    rows = [_run_row(PRETRAINED + name, summarise(path), "shipped") for name, path in pretrained_runs().items()]
    rows += [_run_row(str(r.path), r) for r in list_runs(root)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if len(rows) == len(pretrained_runs()):
        common.console.info(f"no runs under ./{root} yet (train one with `gen train images`); "
                            "the shipped runs work at once, e.g. gen sample -r pretrained:digits --class 7")
    # Every cell stays on one line, so a run path can be copied: the run column always shows in
    # full, and the other columns come in while they fit (`--json` has them all).
    out = _stdout()
    columns, used = [], 4  # the table's outer borders and padding
    for header, key in RUN_COLUMNS:
        width = max(len(header), *(len(_cell(row, key)) for row in rows)) + 3
        if key == "run" or used + width <= out.width:
            columns.append((header, key))
            used += width
    table = Table(title=f"runs: shipped, then under {root}", title_justify="left")
    for header, _ in columns:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(row, key) for _, key in columns))
    if used > out.width:
        out = Console(highlight=False, soft_wrap=False, width=used)
    out.print(table)


@app.command()
@common.handle_errors
def info(
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a run's configuration summary and its metrics.

    e.g. gen info -r latest
    """
    from gencore.runs import check_config

    path = resolve_run(run)
    summary = summarise(path)
    if summary.config is None:
        raise common.GenError(f"run config is unreadable: {summary.error}", where=str(path))
    check_config(summary.config, path)
    config = summary.config
    final = (summary.complete or {}).get("metrics", {})
    report = {
        "run": str(path), "status": "complete" if summary.complete else "incomplete",
        "domain": config["domain"], "arch": config["arch"], "model": config["model"],
        "classes": config.get("class_names", []), "data": config["data"]["source"],
        "items": config.get("fingerprint", {}).get("count"), "train": config.get("train", {}),
        "created": config.get("created"), "finished": summary.finished_at or None,
        "last_epoch": last_metrics(path), "final": final,
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return
    common.console.info(f"using run {path}")
    table = Table(title=f"{path}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    model = config["model"]
    table.add_row("status", report["status"])
    table.add_row("domain / arch", f"{config['domain']} / {config['arch']}")
    table.add_row("model", f"{model['item_kind']} {tuple(model['item_shape'])}, latent {model['latent_dim']}, "
                           f"width {model['width']}, {model['likelihood']} likelihood")
    classes = report["classes"]
    table.add_row("classes", f"{len(classes)}: {', '.join(classes[:20])}" if classes else "unconditional")
    table.add_row("data", f"{report['data']} ({report['items']} items)")
    train = report["train"]
    table.add_row("training", f"epochs {train.get('epochs')}, batch {train.get('batch_size')}, lr {train.get('lr')}, "
                              f"seed {train.get('seed')}")
    table.add_row("created / finished", f"{report['created']} / {report['finished'] or '-'}")
    for key, value in (final or report["last_epoch"]).items():
        if key not in ("event",):
            table.add_row(key, _fmt(value))
    _stdout().print(table)
