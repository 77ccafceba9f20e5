"""Every encoder/decoder family: shapes from odd sizes, save/load round trips, determinism."""
import pytest
import torch

from gencore.models.autoencoder import ARCHS, AutoEncoder, Decoder, model_spec
from gencore.storage import load_tensors, save_tensors

SHAPES = [
    ("grid2d", (1, 8, 8)), ("grid2d", (3, 28, 28)), ("grid2d", (13, 14, 16)), ("grid2d", (1, 7, 5)),
    ("seq1d", (2, 64)), ("seq1d", (48, 33)), ("vector", (30,)),
]


@pytest.mark.parametrize("kind, shape", SHAPES)
@pytest.mark.parametrize("cond_dim", [0, 5])
def test_shapes_round_trip(kind, shape, cond_dim):
    spec = model_spec("vae", kind, shape, "bernoulli", cond_dim, latent_dim=3, width=4, hidden=16)
    model = AutoEncoder(spec)
    x = torch.rand(6, *shape)
    c = torch.eye(cond_dim)[torch.arange(6) % cond_dim] if cond_dim else None
    mu, logvar = model.encode(x, c)
    assert mu.shape == (6, 3) and logvar.shape == (6, 3)
    assert model.decoder(mu, c).shape == (6, *shape)
    out = model.losses(x, x, c, beta=1.0, free_bits=0.1)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "categorical"])
def test_every_arch_and_likelihood_trains_a_step(arch, likelihood):
    spec = model_spec(arch, "grid2d", (4, 8, 8), likelihood, 2, latent_dim=3, width=4, hidden=16)
    model = AutoEncoder(spec)
    x = torch.eye(4)[torch.randint(0, 4, (5, 8, 8))].permute(0, 3, 1, 2) if likelihood == "categorical" \
        else torch.rand(5, 4, 8, 8)
    c = torch.eye(2)[torch.arange(5) % 2]
    weights = torch.tensor([0.2, 1.0, 1.0, 1.0]) if likelihood == "categorical" else None
    out = model.losses(x, x, c, beta=1.0, free_bits=0.1, contractive=0.1 if arch == "cae" else 0.0,
                       class_weights=weights)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["recon"] > 0
    assert ("jacobian" in out) == (arch == "cae")
    assert (out["kl"] > 0) == model.stochastic


def test_decoder_save_load_is_exact(tmp_path):
    torch.manual_seed(0)
    spec = model_spec("vae", "grid2d", (1, 28, 28), "bernoulli", 10, latent_dim=4, width=4, hidden=16)
    model = AutoEncoder(spec)
    save_tensors(tmp_path / "decoder.safetensors", model.decoder.state_dict(), "decoder", "images")
    decoder = Decoder(spec)
    decoder.load_state_dict(load_tensors(tmp_path / "decoder.safetensors", "decoder", "images"))
    z, c = torch.randn(3, 4), torch.eye(10)[:3]
    assert torch.equal(decoder(z, c), model.decoder(z, c))


def test_latent_sampling_is_seeded():
    spec = model_spec("ae", "vector", (6,), "gaussian", 0, latent_dim=4, hidden=8)
    decoder = Decoder(spec)
    a = decoder.sample_latent(5, torch.Generator().manual_seed(1))
    b = decoder.sample_latent(5, torch.Generator().manual_seed(1))
    c = decoder.sample_latent(5, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
