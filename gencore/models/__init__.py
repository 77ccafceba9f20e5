"""The model family. This package's __init__ stays torch-free so the CLI can validate --arch."""
ARCHS = ("ae", "vae", "beta-vae", "cae", "dae")
STOCHASTIC = ("vae", "beta-vae")
ALL_ARCHS = ARCHS + ("denoiser",)  # the denoiser is an image-to-image autoencoder with no latent to sample
# How the condition enters the networks (gencore/models/networks.py); "concat" is format_version 1's
CONDITIONINGS = ("bias", "film", "concat")
