"""`gen attributes`: the attributes a run can steer, with their measured response."""
from __future__ import annotations

from pathlib import Path

import typer

from gencore import console
from gencore.cli import app, common, global_option
from gencore.errors import GenError


@app.command()
@common.handle_errors
def attributes(
    ctx: typer.Context,
    run: str = typer.Option(None, "--run", "-r", help=common.RUN_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="Write a copy of the run with the directions here, leaving the run as it is (needed for pretrained runs). e.g. -o runs/smb-steer"),
    refit: bool = typer.Option(False, "--refit", help="Fit the directions again even if the run has them. e.g. --refit"),
    n: int = typer.Option(200, "--n", "-n", help="Samples per shift when measuring each attribute's response. e.g. --n 100"),
    seed: int = typer.Option(None, "--seed", help=common.SEED_HELP),
    device: str = typer.Option(None, "--device", help=common.DEVICE_HELP),
) -> None:
    """List the attributes `gen sample --attr NAME=SHIFT` can steer, fitting them first if needed.

    Directions come from the encoder means of the training items (top minus bottom quartile),
    one per attribute and class; an attribute ships when the mean measured on samples rises with
    the shift (Spearman >= 0.9 over shifts -2..+2). They and a mixture prior for `--prior gmm`
    are stored in decoder.safetensors.
    e.g. gen attributes -r runs/levels-vae-20261129 --n 100
    """
    from gencore import attribute_fit
    from gencore.attribute_fit import MIN_EFFECT
    from gencore.steering import SHIFTS

    common.positive(n, "--n")
    opened = common.use_run(run, global_option(ctx, "device", device, "auto"))
    seed = global_option(ctx, "seed", seed, 0)
    have = opened.steering
    if have.names and not refit and out is None:
        _table([(name, have.responses.get(name), _rho(have.responses.get(name)), None) for name in have.names], SHIFTS)
        return
    if out is None and attribute_fit.is_pretrained(opened, run):
        raise GenError("this run ships with gen and is never written to", where="--run",
                       hint="write a copy with the directions: gen attributes -r RUN -o runs/my-copy")
    steering, responses, flat = attribute_fit.fit(opened, n, seed)
    target = opened.path
    if out is not None:
        target = attribute_fit.copy_run(opened, out)
    attribute_fit.store(opened, target, steering)
    _table([(r.name, r.means, r.spearman, r.effect) for r in responses], SHIFTS)
    dropped = [r.name for r in responses if not r.ships]
    if dropped:
        console.warn(f"dropped (response not monotone in the shift, or under {MIN_EFFECT} standard deviations "
                     f"from -2 to +2): {', '.join(dropped)}")
    if flat:
        console.warn(f"no direction (the attribute does not vary on the training data): {', '.join(flat)}")
    console.info(f"stored {len(steering.names)} attribute directions and a {steering.gmm_weights.shape[1]}-component "
                 f"mixture prior per class in {target / 'decoder.safetensors'}")


def _rho(response) -> float | None:
    from gencore.attribute_fit import spearman
    from gencore.steering import SHIFTS

    return None if response is None else spearman(list(SHIFTS), response.tolist())


def _table(rows, shifts) -> None:
    """One row per attribute: its mean on samples at each shift, the Spearman correlation with the
    shift and the effect (mean at +2 minus at -2, in training standard deviations)."""
    print("attribute".ljust(18) + "".join(f"{s:+.0f}".rjust(10) for s in shifts) + "  spearman    effect")
    for name, means, rho, effect in rows:
        cells = "".join(f"{float(m):10.3f}" for m in means) if means is not None else "".rjust(10 * len(shifts))
        tail = ("" if rho is None else f"  {rho:8.2f}") + ("" if effect is None else f"  {effect:8.2f}")
        print(name.ljust(18) + cells + tail)
