"""gencore: convolutional (conditional) autoencoders and VAEs, one model per content domain.

`from gencore import load_run` gives the Python API; importing this package does not import torch.
"""
__version__ = "0.1.0"


def load_run(*args, **kwargs):
    """Open a trained run folder (or "latest"); see `gencore.api.load_run`."""
    from gencore.api import load_run as _load_run

    return _load_run(*args, **kwargs)


__all__ = ["load_run", "__version__"]
