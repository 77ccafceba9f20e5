"""Every encoder/decoder family: shapes from odd sizes, save/load round trips, determinism."""
import pytest
import torch

from gencore.models import CONDITIONINGS
from gencore.models.autoencoder import ARCHS, AutoEncoder, Decoder, model_spec
from gencore.storage import load_tensors, save_tensors

SHAPES = [
    ("grid2d", (1, 8, 8)), ("grid2d", (3, 28, 28)), ("grid2d", (13, 14, 16)), ("grid2d", (1, 7, 5)),
    ("seq1d", (2, 64)), ("seq1d", (48, 33)), ("vector", (30,)),
]


@pytest.mark.parametrize("kind, shape", SHAPES)
@pytest.mark.parametrize("cond_dim", [0, 5])
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_shapes_round_trip(kind, shape, cond_dim, conditioning):
    spec = model_spec("vae", kind, shape, "bernoulli", cond_dim, latent_dim=3, width=4, hidden=16,
                      conditioning=conditioning)
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


@pytest.mark.parametrize("kind, shape", [("grid2d", (1, 28, 28)), ("grid2d", (13, 14, 16)), ("grid2d", (1, 8, 8)),
                                         ("seq1d", (3, 64)), ("vector", (30,))])
@pytest.mark.parametrize("cond_dim", [0, 10])
def test_default_layout_keeps_every_layer_aligned(kind, shape, cond_dim):
    """Issue 24: with the default conditioning, no conv or linear layer takes the condition's
    channels on top of its own, so at a width that is a multiple of 8 every channel count is one,
    but the item's own channels in and out; the condition enters through bias-free projections."""
    spec = model_spec("vae", kind, shape, "bernoulli", cond_dim, latent_dim=16, width=16, hidden=256)
    assert spec["conditioning"] == "film"
    model = AutoEncoder(spec)
    item = {shape[0]}
    convs = [m for m in model.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    for conv in convs:
        for channels in (conv.in_channels, conv.out_channels):
            assert channels % 8 == 0 or channels in item, conv
    projections = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            if m.in_features == cond_dim and m.bias is None:
                projections.append(name)
            else:
                assert m.in_features % 8 == 0 or (kind == "vector" and m.in_features in item), (name, m)
    # encoder: first conv and head; decoder: head and every upsampling level; MLPs: each first layer
    levels = 0 if kind == "vector" else len(model.decoder.net.up)
    expected = 0 if not cond_dim else (2 if kind == "vector" else 3 + levels)
    assert len(projections) == expected, projections


def test_concat_layout_is_format_1s(tmp_path):
    """A spec without `conditioning` (format_version 1) builds the concatenating networks, with
    format 1's parameter names and shapes."""
    spec = model_spec("vae", "grid2d", (1, 28, 28), "bernoulli", 10, latent_dim=16, width=16)
    del spec["conditioning"]
    model = AutoEncoder(spec)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["decoder.net.up.0.weight"] == (74, 32, 4, 4)  # 64 + 10 class planes in
    assert shapes["decoder.net.up.2.weight"] == (26, 1, 4, 4)
    assert shapes["encoder.net.levels.0.0.weight"] == (16, 11, 3, 3)
    assert not any("cond" in k for k in shapes)


def test_the_default_decoder_does_less_arithmetic_than_format_1s():
    """README (Speed): the 28x28 width-16 decoder of the speed bench costs 4.30 MFLOP per item with
    FiLM against 4.77 with format 1's concatenated class planes."""
    from torch.utils.flop_counter import FlopCounterMode

    def mflop(conditioning: str) -> float:
        spec = model_spec("vae", "grid2d", (1, 28, 28), "bernoulli", 10, latent_dim=16, width=16,
                          conditioning=conditioning)
        decoder = AutoEncoder(spec).decoder
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            decoder(torch.randn(8, 16), torch.eye(10)[:8])
        return counter.get_total_flops() / 8 / 1e6

    assert round(mflop("film"), 2) == 4.30 and round(mflop("concat"), 2) == 4.77
