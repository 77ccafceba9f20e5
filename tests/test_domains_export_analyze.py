"""Export and the analysis commands on runs of the other generative domains (levels, MIDI):
ONNX parity with the decoder, the standalone sampler writing native files from the embedded
metadata alone, and latent / traverse / eval / score working on every domain."""
import json
import subprocess
import sys

import pytest

from conftest import TINY, gen
from test_export import SCRIPT, onnx_parity

pytest.importorskip("onnxruntime")

DOMAINS = {
    "levels": (["--data", "builtin:demo"], ".txt"),
    "midi": (["--max-files", "12"], ".mid"),
}


@pytest.fixture(scope="module", params=sorted(DOMAINS))
def domain_run(request, tmp_path_factory):
    domain = request.param
    from gencore.registry import domain_names

    assert domain in domain_names()
    work = tmp_path_factory.mktemp(domain)
    args, suffix = DOMAINS[domain]
    out = work / "runs" / domain
    result = gen("train", domain, *args, *TINY, "-o", out, cwd=work)
    assert result.exit_code == 0, result.stderr
    return domain, out, work, suffix


def test_onnx_parity_and_standalone_sampler(domain_run):
    domain, run, work, suffix = domain_run
    model = work / f"{domain}.onnx"
    result = gen("export", "-r", run, "-o", model, cwd=work)
    assert result.exit_code == 0, result.stderr
    assert onnx_parity(model, run) <= 1e-4
    out = work / "onnx-out"
    sampled = subprocess.run([sys.executable, str(SCRIPT), str(model), "--n", "16", "-o", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert sampled.returncode == 0, sampled.stderr
    files = sorted(out.glob(f"*{suffix}"))
    assert len(files) == 16
    if domain == "levels":  # the text uses only the run's tiles and parses back with the loader
        from gencore.registry import get_domain

        config = json.loads((run / "config.json").read_text())
        tiles = set(config["data"]["meta"]["tiles"])
        assert set("".join(files[0].read_text().split())) <= tiles
        items, _ = get_domain("levels").load_files(files[:2], config["data"], {})
        assert tuple(items.shape[1:]) == tuple(config["model"]["item_shape"])
    else:  # type-1 MIDI with tempo, metre and key that mido, music21 and the loader all read
        import mido
        import music21

        midi = mido.MidiFile(files[0])
        assert midi.type == 1 and midi.ticks_per_beat == 480
        kinds = {m.type for track in midi.tracks for m in track}
        assert {"set_tempo", "time_signature", "key_signature", "note_on"} <= kinds
        assert len(music21.converter.parse(files[0]).flatten().notes) > 0
        config = json.loads((run / "config.json").read_text())
        from gencore.registry import get_domain

        items, _ = get_domain("midi").load_files(files[:2], config["data"], {})
        assert tuple(items.shape[1:]) == tuple(config["model"]["item_shape"]) and items[:, 1].sum() > 0


def test_analysis_commands(domain_run, tmp_path):
    domain, run, work, _ = domain_run
    for args in (["latent", "-o", tmp_path / "lat"], ["traverse", "--dim", "0", "--steps", "3", "-o", tmp_path / "tr"]):
        result = gen(*args, "-r", run, cwd=work)
        assert result.exit_code == 0, (args, result.stderr)
    assert (tmp_path / "lat" / "latent_map.png").is_file() and (tmp_path / "tr" / "strip.png").is_file()
    result = gen("eval", "-r", run, "--iwae-k", "5", "--json", cwd=work)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)["runs"][0]
    assert report["neg_elbo"] > 0 and report["iwae_nll"] > 0
    config = json.loads((run / "config.json").read_text())
    source = config["data"]["source"]
    result = gen("score", source, "-r", run, "--method", "mahalanobis", "-o", tmp_path / "s.json", cwd=work)
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "s.json").read_text())["inputs"] > 0
