"""Training defaults sized from the corpus (Domain.data_training_defaults): how long a run trains,
and how the class enters, by the texture the loader found. See docs/midi.md, "Defaults"."""
from __future__ import annotations

import math
from typing import Any

# Training cost grows with the cells the model sees: windows x epochs x (channels x rows x steps).
# A polyphonic corpus trains for at most the chorales' default (43 epochs x 2,939 windows x 9,216
# cells = 1.16e9), so the built-in run is unchanged and the 10,176 long windows of `trecento` stop
# at the same cost. A melody corpus learns one sparse line and needs less: ~12 epochs of `ryans`
# (bench/results/midi_defaults-*.log; chosen on `ryans`, confirmed on `airds`).
POLYPHONIC_CELL_BUDGET = 1.2e9
MONOPHONIC_CELL_BUDGET = 4.5e8
MIN_EPOCHS = 5
# Concat escapes the chorales' collapsed latent where FiLM stays in it; on melodies FiLM keeps its
# active units where concat loses them (docs/midi.md, "Conditioning layout").
CONDITIONING = {"polyphonic": "concat", "monophonic": "film"}


def training_defaults(item_shape: tuple[int, ...], texture: str, settings: Any, n_train: int) -> dict[str, Any]:
    """{"epochs": ..., "conditioning": ...} for `n_train` training items of `item_shape` (C, rows, steps)."""
    cells = math.prod(item_shape)
    budget = MONOPHONIC_CELL_BUDGET if texture == "monophonic" else POLYPHONIC_CELL_BUDGET
    engine_epochs = settings.resolved(max(1, n_train)).epochs  # the engine's own rule, at the base batch
    epochs = min(engine_epochs, max(MIN_EPOCHS, round(budget / (max(1, n_train) * cells))))
    return {"epochs": epochs, "conditioning": CONDITIONING.get(texture, "concat")}
