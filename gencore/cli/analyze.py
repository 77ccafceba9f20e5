"""`gen latent`, `gen traverse`, `gen eval` and `gen score`: see what a model learned, compare
runs, and use it to find anomalies."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common, global_option
from gencore.errors import GenError
from gencore.storage import write_json, write_png, write_text

DATA_HELP = "Data to use instead of the run's own corpus (same domain and shape). e.g. --data ./more_digits"


def _corpus(run, data: str | None):
    """The run's own corpus prepared as at training time, or `--data` loaded with its options."""
    from gencore.training.data import reload

    if data is None:
        return reload(run.config, run.domain)
    loaded = run.domain.load(data, run.config.data["options"])
    if list(loaded.item_shape) != run.config.model.item_shape:
        raise GenError(f"items of shape {list(loaded.item_shape)} do not fit this run's "
                       f"{run.config.model.item_shape}", where=data, hint="use data prepared like the run's")
    if run.conditional and loaded.class_names != run.class_names:
        raise GenError("the data's classes differ from the run's", where=data,
                       hint=f"the run knows {', '.join(run.class_names[:12])}")
    if not run.conditional:
        loaded.conditions = None
    return loaded


@app.command()
@common.handle_errors
def latent(
    ctx: typer.Context,
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    data: str = typer.Option(None, "--data", help=DATA_HELP),
    method: str = typer.Option("pca", "--method", help="2-D embedding for latents above 2-D: pca, tsne or umap. e.g. --method tsne"),
    cls: str = typer.Option(None, "--class", "-c", help="Class of the decoded manifold (2-D latents). e.g. --class 3"),
    limit: int = typer.Option(5000, "--limit", help="Encode at most this many items (a seeded subset). e.g. --limit 2000"),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(Path("latent"), "--out", "-o", help="Folder for the PNGs and latent.json. e.g. -o maps"),
) -> None:
    """Draw the latent space: data map coloured by class, KL per dimension, manifold (2-D).

    e.g. gen latent --method tsne
    """
    import numpy as np
    import torch

    from gencore import latent_maps
    from gencore.training.data import subset

    opened = common.use_run(run, global_option(ctx, "device", device, "auto"))
    seed = global_option(ctx, "seed", seed, 0)
    corpus = subset(_corpus(opened, data), limit, seed)
    mu, logvar = opened.encode(corpus.items, corpus.conditions)
    labels = None if corpus.conditions is None or corpus.multi_label else corpus.conditions.argmax(dim=1).numpy()
    points, how = latent_maps.embed_2d(mu.numpy(), method, seed)
    variance = mu.var(dim=0, unbiased=False).numpy()
    if logvar is not None:
        per_dim = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(dim=0).numpy()
        ylabel = "KL (nats per item)"
    else:
        per_dim, ylabel = variance, "variance of the code"
    with common.staged_output(out) as staging:
        latent_maps.scatter(points, labels, opened.class_names, f"{opened.path.name}: {how}, {len(mu)} items",
                            staging / "latent_map.png")
        latent_maps.per_dimension(per_dim, variance, ylabel, staging / "per_dimension.png")
        if opened.latent_dim == 2:
            grid = latent_maps.manifold(opened, cls, 15)
            manifold = opened.domain.preview(grid, opened.config.data, 15)
            write_png(staging / "manifold.png", common.legible(manifold))
        write_json(staging / "latent.json", {
            "run": str(opened.path), "items": int(len(mu)), "embedding": how,
            "active_units": int((variance > 0.01).sum()), "per_dimension": per_dim.tolist(),
            "posterior_mean_variance": variance.tolist(),
        })
    del np, torch
    console.info(f"wrote latent_map.png, per_dimension.png{', manifold.png' if opened.latent_dim == 2 else ''} "
                 f"and latent.json to {out}")


@app.command()
@common.handle_errors
def traverse(
    ctx: typer.Context,
    dim: str = typer.Option(..., "--dim", help="Latent dimension to vary (0-based), or `all` for one row per dimension. e.g. --dim 3"),
    span: float = typer.Option(3.0, "--range", help="Go from -R to +R prior standard deviations. e.g. --range 2"),
    steps: int = typer.Option(9, "--steps", help="Points per dimension. e.g. --steps 11"),
    cls: str = typer.Option(None, "--class", "-c", help="Class to hold fixed (conditional runs; default the first). e.g. --class 7"),
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    seed: int = typer.Option(None, "--seed", help="Seed of the base latent that the other dimensions keep. e.g. --seed 4"),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(Path("traversal"), "--out", "-o", help="Folder for the native files and strip.png. e.g. -o dim3"),
) -> None:
    """Vary one latent dimension (or each in turn) around a sampled latent and decode.

    e.g. gen traverse --dim all --class 2
    """
    import torch

    common.bounded(steps, "--steps", 2, common.MAX_PATH_STEPS)
    common.bounded(span, "--range", 1e-6, 1e6)
    opened = common.use_run(run, global_option(ctx, "device", device, "auto"))
    d = opened.latent_dim
    if dim == "all":
        dims = list(range(d))
    elif dim.isdigit() and int(dim) < d:
        dims = [int(dim)]
    else:
        raise GenError(f"no latent dimension {dim!r}; this run has {d} (0 to {d - 1})", where="--dim",
                       hint="give an index or `all`")
    decoder = opened.decoder
    base = torch.randn(d, generator=torch.Generator().manual_seed(global_option(ctx, "seed", seed, 0)))
    offsets = torch.linspace(-span, span, steps)
    eps = base.repeat(len(dims) * steps, 1)
    for row, k in enumerate(dims):
        eps[row * steps:(row + 1) * steps, k] = offsets
    z = decoder.prior_mean.cpu() + eps @ decoder.prior_chol.cpu().T
    name = cls if cls is not None else (opened.class_names[0] if opened.conditional else None)
    cond = opened.condition(name).expand(z.shape[0], -1) if opened.conditional else None
    items = opened.decode(z, cond)
    stems = [f"dim{k:02d}-step{j:02d}" for k in dims for j in range(steps)]
    with common.staged_output(out) as staging:
        opened.domain.export(items, staging, stems, opened.config.data, options={})
        strip = opened.domain.preview(items, opened.config.data, steps)
        write_png(staging / "strip.png", common.legible(strip))
    console.info(f"wrote {len(dims)} row(s) of {steps} steps{f' for class {name!r}' if name else ''} and strip.png to {out}")


@app.command("eval")
@common.handle_errors
def eval_command(
    ctx: typer.Context,
    runs: list[str] = typer.Option(None, "--run", "-r", help="Run to evaluate; repeat to compare runs side by side. e.g. -r runs/a -r runs/b"),
    data: str = typer.Option(None, "--data", help="Evaluate on this data instead of each run's stored held-out split. e.g. --data ./test_digits"),
    iwae_k: int = typer.Option(50, "--iwae-k", help="Importance samples for the IWAE bound (0 to skip). e.g. --iwae-k 500"),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout. e.g. --json"),
) -> None:
    """Evaluate runs: -ELBO (reconstruction + KL), IWAE bound, active units, domain metrics.

    e.g. gen eval -r runs/vae -r runs/beta-vae
    """
    from gencore import evaluation
    from gencore.training.data import heldout, reload

    seed = global_option(ctx, "seed", seed, 0)
    reports = []
    for spec in runs or [None]:
        opened = common.use_run(spec, global_option(ctx, "device", device, "auto"))
        reference = reload(opened.config, opened.domain) if data is None else _corpus(opened, data)
        target = heldout(opened.config, reference) if data is None else reference
        report = evaluation.evaluate(opened, target, reference, iwae_k=iwae_k, seed=seed)
        reports.append((opened, {"run": str(opened.path), "domain": opened.domain_name, "arch": opened.config.arch,
                                 "data": data or "held-out split", **report}))
    domains = {r.domain_name for r, _ in reports}
    if len(domains) > 1:
        raise GenError(f"runs of different domains ({', '.join(sorted(domains))}) cannot be compared", where="--run")
    goals = evaluation.goals(reports[0][0].domain)
    keys = [k for k in reports[0][1] if k not in ("run", "domain", "arch", "data")]
    for _, report in reports[1:]:
        keys += [k for k in report if k not in keys and k not in ("run", "domain", "arch", "data")]
    better = {k: evaluation.better([r.get(k) for _, r in reports], goals.get(k, "info")) for k in keys}
    if as_json:
        print(json.dumps({"runs": [r for _, r in reports],
                          "better": {k: [i for i, b in enumerate(v) if b] for k, v in better.items() if any(v)}},
                         indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gen eval (" + ("held-out split" if data is None else data) + "; ★ = better)")
    table.add_column("metric")
    for opened, _ in reports:
        table.add_column(f"{opened.path.name}\n{opened.config.arch}", justify="right")
    for k in keys:
        cells = []
        for (_, report), win in zip(reports, better[k]):
            value = report.get(k)
            text = "n/a" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
            cells.append(f"★ {text}" if win else text)
        table.add_row(k, *cells)
    Console(soft_wrap=False).print(table)


def _read_labels(path: Path) -> dict[str, int]:
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError) as exc:
        raise GenError(f"cannot read labels ({exc})", where=str(path)) from None
    out = {}
    for i, row in enumerate(rows):
        if i == 0 and row and row[-1].strip().lower() in ("label", "is_anomaly", "anomaly"):
            continue
        if len(row) < 2 or row[1].strip() not in ("0", "1"):
            raise GenError(f"line {i + 1} is not `input,0|1`", where=str(path), hint="one `name,label` row per input")
        out[row[0].strip()] = int(row[1])
    return out


@app.command()
@common.handle_errors
def score(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(..., help="Files, a folder, or builtin:NAME to score. e.g. gen score builtin:digits"),
    method: str = typer.Option(None, "--method", help="recon (reconstruction NLL), elbo (negative ELBO, VAEs), mahalanobis or kl (encoder only), complexity (elbo less what the input's compressed length explains), ratio (elbo less what a background model of local statistics explains), posterior (conditional runs: -log of the top class posterior), knn (distance of the code to the nearest training code), A+knn for A in elbo, recon, complexity, ratio (the two standardised on held-out items, summed); default: the domain's measured choice. e.g. --method ratio+knn"),
    cls: str = typer.Option(None, "--class", "-c", help="Score against this class; default: the minimum over classes. e.g. --class 4"),
    threshold: float = typer.Option(None, "--threshold", help="Flag inputs scoring above this. e.g. --threshold 60"),
    contamination: float = typer.Option(None, "--contamination", help="Flag this share of the inputs (highest scores). e.g. --contamination 0.05"),
    val_quantile: float = typer.Option(None, "--val-quantile", help="Flag inputs above this quantile of the scores of the run's held-out (normal) validation items; some domains use it by default. e.g. --val-quantile 0.99"),
    labels: Path = typer.Option(None, "--labels", help="CSV of `input,label` (1 = anomaly) for ROC AUC; a series names time steps (`time,label`), a table its rows (`ROW,label`). e.g. --labels truth.csv"),
    anomaly_class: list[str] = typer.Option(None, "--anomaly-class", help="Label items of this class of the input data as anomalies (repeatable). e.g. --anomaly-class 9"),
    exclude_training: bool = typer.Option(False, "--exclude-training", help="Skip inputs identical to the run's training items. e.g. --exclude-training"),
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
    out: Path = typer.Option(Path("scores.csv"), "--out", "-o", help="CSV or JSON file of per-input scores (by suffix). e.g. -o scores.json"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and scores as JSON on stdout. e.g. --json"),
) -> None:
    """Score inputs for anomaly: higher is more unusual; flags, CSV/JSON, and ROC AUC with labels.

    e.g. gen score builtin:digits --anomaly-class 9 --exclude-training
    """
    from gencore import scoring
    from gencore.scoring_inputs import gather

    if sum(v is not None for v in (threshold, contamination, val_quantile)) > 1:
        raise GenError("give one of --threshold, --contamination and --val-quantile", where="--threshold")
    if out.suffix.lower() not in (".csv", ".json"):
        raise GenError("the output must end in .csv or .json", where=str(out))
    opened = common.use_run(run, global_option(ctx, "device", device, "auto"))
    batch = gather(opened, inputs, anomaly_class or [], labels and _read_labels(labels), exclude_training)
    seed = global_option(ctx, "seed", seed, 0)
    method = method or scoring.default_method(opened)
    scores = scoring.score(opened, batch.items, method, cls, seed)
    threshold, rule = _threshold(opened, scores, method, cls, seed, threshold, contamination, val_quantile)
    auc = scoring.roc_auc(scores, batch.labels) if batch.labels is not None else None
    rows = [{"input": name, "score": float(s)} for name, s in zip(batch.names, scores)]
    for i, row in enumerate(rows):
        if threshold is not None:
            row["anomaly"] = int(scores[i] > threshold)
        if batch.labels is not None:
            row["label"] = int(batch.labels[i])
    summary = {"run": str(opened.path), "method": method, "inputs": len(rows), "threshold": threshold,
               "flagged": sum(r.get("anomaly", 0) for r in rows) if threshold is not None else None,
               "roc_auc": auc, "excluded_training_items": batch.excluded}
    if rule is not None:
        summary["threshold_rule"] = rule
    if batch.labels is not None:
        summary["precision_at_k"] = scoring.precision_at_k(scores, batch.labels)
    if batch.data is not None:
        summary.update(opened.domain.score_report(opened, batch.data, batch.index, scores, threshold, method, out))
    _write_scores(out, summary, rows)
    if as_json:
        print(json.dumps({**summary, "scores": rows}, indent=2))
    flagged = f", {summary['flagged']} flagged above {threshold:.4g}" if threshold is not None else ""
    auc_text = f", ROC AUC {auc:.3f}" if auc is not None else ""
    extra = "".join(f", {summary[k]}" for k in ("steps_csv", "methods_csv", "plot") if summary.get(k))
    console.info(f"scored {len(rows)} inputs by {method}{flagged}{auc_text}; wrote {out}{extra}")


def _threshold(opened, scores, method: str, cls: str | None, seed: int, threshold: float | None,
               contamination: float | None, val_quantile: float | None) -> tuple[float | None, str | None]:
    """The flagging threshold and the rule that gave it: --threshold, --contamination, or a
    quantile of the held-out validation scores (--val-quantile, or the domain's default)."""
    from gencore import scoring

    if threshold is not None:
        return threshold, "given"
    if contamination is not None:
        return scoring.threshold_for(scores, contamination), f"contamination {contamination}"
    quantile = val_quantile if val_quantile is not None else opened.domain.default_val_quantile
    if quantile is None:
        return None, None
    try:
        return scoring.validation_threshold(opened, method, quantile, cls, seed), f"validation quantile {quantile}"
    except GenError as exc:
        if val_quantile is not None:
            raise
        console.warn(f"no threshold: the validation items could not be scored ({exc.line()}); "
                     "give --threshold or --contamination")
        return None, None


def _write_scores(out: Path, summary: dict, rows: list[dict]) -> None:
    if out.suffix.lower() == ".json":
        write_json(out, {**summary, "scores": rows})
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["input", "score"])
    writer.writeheader()
    writer.writerows(rows)
    write_text(out, buf.getvalue())
