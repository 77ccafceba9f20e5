"""The model family. This package's __init__ stays torch-free so the CLI can validate --arch."""
ARCHS = ("ae", "vae", "beta-vae", "cae", "dae")
STOCHASTIC = ("vae", "beta-vae")
# Every --arch, the denoiser included, is listed by gencore.archs.ARCH_NAMES.
# How the condition enters the networks (gencore/models/networks.py); "concat" is format_version 1's
CONDITIONINGS = ("bias", "film", "concat")
