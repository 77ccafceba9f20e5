"""The calibrated decoding rules of a run, kept beside its decoder (`decoding_rules.json`).

Calibrating a rule decodes 256 prior samples, about a quarter of a short `gen sample`. The rules
depend only on the decoder's weights and the calibration's sample count and seed, so the first
`gen sample` on a run stores them, keyed by the SHA-256 of `decoder.safetensors`; a run whose
decoder changed (new weights, `gen attributes` writing directions) recalibrates. Shipped runs are
read-only: they carry the file from `scripts/train_pretrained.py`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .decode import Rule

RULES_FILE = "decoding_rules.json"


def rule_key(name: str | None, meter: str, min_steps: int) -> str:
    return json.dumps([name, meter, min_steps])


def decoder_digest(run_dir: Path) -> str | None:
    try:
        return hashlib.sha256((run_dir / "decoder.safetensors").read_bytes()).hexdigest()
    except OSError:
        return None


def stored_rules(run_dir: Path, calibration: list[int], digest: str | None) -> dict[str, Rule]:
    """The rules stored for the decoder of SHA-256 `digest` and this calibration; {} when none or
    stale."""
    try:
        data = json.loads((run_dir / RULES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("calibration") != calibration:
        return {}
    if digest is None or data.get("decoder_sha256") != digest:
        return {}
    try:
        return {key: Rule(**fields) for key, fields in data.get("rules", {}).items()}
    except TypeError:
        return {}


def store_rules(run_dir: Path, calibration: list[int], digest: str | None, rules: dict[str, Rule]) -> None:
    """Keep `rules` beside the decoder; a run folder that can't be written (shipped, read-only)
    simply recalibrates next time."""
    from gencore import storage
    from gencore.errors import GenError
    from gencore.runs import is_pretrained

    if digest is None or is_pretrained(run_dir):
        return
    payload: dict[str, Any] = {"decoder_sha256": digest, "calibration": calibration,
                               "rules": {key: asdict(rule) for key, rule in rules.items()}}
    try:
        storage.write_json(run_dir / RULES_FILE, payload)
    except (OSError, GenError):
        pass
