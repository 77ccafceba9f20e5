"""Run under torchrun by tests/test_distributed.py: train a tiny digits model with gencore's own
Trainer for a few steps, then write this rank's parameter digest."""
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from gencore import distributed
from gencore.models.autoencoder import model_spec
from gencore.registry import get_domain
from gencore.training.data import prepare
from gencore.training.settings import TrainSettings
from gencore.training.autoencoder_objective import choose_val_indices
from gencore.training.trainer import Trainer

out = Path(sys.argv[1])
dist = distributed.from_env()
device = distributed.init(dist, torch.device("cpu"))
domain = get_domain("images")
data = prepare(domain, None, {}, limit=200, seed=0)
settings = TrainSettings(epochs=2, width=8, latent_dim=4, checkpoint_every=0).resolved(180)
spec = model_spec("vae", "grid2d", data.item_shape, "bernoulli", 10, 4, 8, settings.hidden)
config = {"split": {"val_indices": choose_val_indices(200, 0.1, 0)}, "data": {}}
run_dir = out / "run"
if dist.main:
    run_dir.mkdir(parents=True, exist_ok=True)
distributed.barrier(dist)
trainer = Trainer(run_dir, domain, data, spec, config, settings, device, dist)
trainer.fit()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in trainer.model.parameters())).hexdigest()
(out / f"rank{dist.rank}.json").write_text(json.dumps({"digest": digest, "steps": trainer.step,
                                                        "world": dist.world, "pid": os.getpid()}))
distributed.shutdown(dist)
