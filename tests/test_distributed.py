"""DDP under torchrun on CPU: two gloo processes on the loopback, identical parameters, rank-0
checkpoints, resume under torchrun, re-sharding at epoch boundaries, and a failing rank that ends
the run instead of hanging. Every launch has a hard timeout."""
import json
import os
import subprocess
import sys
from pathlib import Path


from conftest import assert_one_line_error, gen, gen_subprocess

HARD_TIMEOUT = 240
ENV = {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_ranks_end_identical(tmp_path):
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             str(WORKER), str(tmp_path)], capture_output=True, text=True, timeout=HARD_TIMEOUT,
                            env={**os.environ, **ENV})
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["world"] == 2 and ranks[0]["steps"] == ranks[1]["steps"] > 0
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert len(list((tmp_path / "run" / "checkpoints").glob("step-*"))) >= 1  # written by rank 0 only


def test_nproc_train_and_resume_under_torchrun(tmp_path):
    run = tmp_path / "runs" / "ddp"
    args = ["train", "images", "--epochs", "2", "--width", "8", "--latent", "4", "--limit", "300",
            "--checkpoint-every", "0", "-o", run]
    result = gen_subprocess(*args, "--nproc", "2", cwd=tmp_path, env=ENV, timeout=HARD_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "x 2 processes" in result.stderr
    assert result.stderr.count("run complete") == 1  # rank 0 alone talks
    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == 2
    result = gen_subprocess("train", "images", "--resume", run, "--epochs", "3", "--nproc", "2", cwd=tmp_path,
                            env=ENV, timeout=HARD_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2, 3]
    # an epoch boundary re-shards to any world size: finish in one process
    result = gen("train", "images", "--resume", run, "--epochs", "4", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr


def test_mid_epoch_resume_with_other_world_size_is_refused(tiny_runs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["vae"], run)
    last = sorted((run / "checkpoints").glob("step-*"))[-1]
    state = json.loads((last / "train_state.json").read_text())
    state.update(batch=2, world_size=2)
    (last / "train_state.json").write_text(json.dumps(state))
    result = gen("train", "images", "--resume", run, "--epochs", "5", cwd=tmp_path)
    assert_one_line_error(result, "mid-epoch", "2 processes")


FLAKY = '''
import os
from gencore.errors import GenError
from gencore_images import ImagesDomain


class Flaky(ImagesDomain):
    name = "flaky"

    def load(self, source, options):
        if os.environ.get("RANK") == "1":
            raise GenError("rank 1 cannot read its data", where="flaky-data")
        return super().load(source, options)


plugin = Flaky()
'''


def test_a_failing_rank_ends_the_run(tmp_path):
    site = tmp_path / "site"
    (site / "flaky_domain-0.1.dist-info").mkdir(parents=True)
    (site / "flaky_domain.py").write_text(FLAKY)
    (site / "flaky_domain-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: flaky-domain\nVersion: 0.1\n")
    (site / "flaky_domain-0.1.dist-info" / "entry_points.txt").write_text("[gencore.plugins]\nflaky = flaky_domain:plugin\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = gen_subprocess("train", "flaky", "--epochs", "1", "--limit", "100", "--nproc", "2", "-o", "runs/f",
                            cwd=tmp_path, env=env, timeout=HARD_TIMEOUT)
    assert result.returncode != 0
    assert "gen: error: flaky-data: rank 1 cannot read its data" in result.stderr
    assert "Traceback" not in result.stderr.split("gen: error:")[0]
