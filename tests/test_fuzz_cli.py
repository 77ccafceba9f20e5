"""Property-based tests over command-line arguments: whatever the values of --n, --class, --seed,
--temperature, --steps, --dim or --range, `gen` (the real entry point, in-process) ends with exit
code 0 and its output, or exit code 2 and one error line; never 1, never a traceback. Valid values
always give exit code 0."""
from __future__ import annotations

import contextlib
import io
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencore.cli import main

ARGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Valid values must succeed; any values must succeed or fail cleanly.
HUGE = st.sampled_from([2**31, 2**32, 2**63, 10**13, 10**30, -(2**40)])
VALID = {"n": st.integers(1, 4), "steps": st.integers(2, 6), "seed": st.integers(0, 2**32 - 1),
         "float": st.floats(0.3, 1.5), "class": st.sampled_from(["0", "3", "9", "7"]),
         "dim": st.sampled_from(["0", "3", "all"])}
ANY = {"n": st.one_of(st.integers(-3, 4), HUGE), "steps": st.one_of(st.integers(-2, 6), HUGE),
       "seed": st.one_of(st.integers(-5, 9), HUGE), "float": st.floats(allow_nan=True, allow_infinity=True),
       "class": st.one_of(VALID["class"], st.sampled_from(["10", "-1", "", "0+1", " 3", "--n", "ü"]), st.text(max_size=5)),
       "dim": st.one_of(VALID["dim"], st.sampled_from(["4", "-1", "", "1.5"]), st.text(max_size=4))}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-fuzz")
    return (root / f"out-{i}" for i in itertools.count())


def run_gen(args: list) -> tuple[int, str]:
    """The console script itself, in-process: usage errors become one line too."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def check(code: int, err: str, out) -> int:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("gen: ")]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith("gen: error: "), err
        assert not out.exists(), out
    else:
        assert not errors and out.is_dir(), err
    return code


@pytest.mark.parametrize("values", [VALID, ANY], ids=["valid", "any"])
def test_sample_arguments(values, tiny_runs, outputs):
    @ARGS
    @given(values["n"], st.lists(values["class"], max_size=2), values["seed"], values["float"])
    def prop(n, classes, seed, temperature) -> None:
        out = next(outputs)
        args = ["sample", "-r", tiny_runs["vae"], "--n", n, "--seed", seed, "--temperature", temperature, "-o", out]
        for c in classes:
            args += ["--class", c]
        code = check(*run_gen(args), out)
        assert code == 0 or values is ANY

    prop()


@pytest.mark.parametrize("values", [VALID, ANY], ids=["valid", "any"])
def test_interpolate_and_traverse_arguments(values, tiny_runs, outputs):
    @ARGS
    @given(values["class"], values["class"], values["steps"], values["seed"], values["float"], values["dim"])
    def prop(start, end, steps, seed, number, dim) -> None:
        out = next(outputs)
        code = check(*run_gen(["interpolate", "-r", tiny_runs["vae"], "--from", start, "--to", end, "--steps", steps,
                               "--seed", seed, "--temperature", number, "-o", out]), out)
        assert code == 0 or values is ANY
        out = next(outputs)
        code = check(*run_gen(["traverse", "-r", tiny_runs["vae"], "--dim", dim, "--steps", steps, "--range", number,
                               "--seed", seed, "-o", out]), out)
        assert code == 0 or values is ANY

    prop()
