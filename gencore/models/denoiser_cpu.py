"""The denoiser's CPU inference pass: the same network as gencore/models/denoiser.py, with each
SiLU and each residual add fused into the oneDNN convolution before it, and the weights packed
once into oneDNN's blocked layout.

In eager PyTorch a 512x512 pass spends about a quarter of its time in SiLU and add, which read
and write whole activations (16 MB a layer at full resolution); as post-ops of the convolution
they cost next to nothing. Unpacked weights are reordered by every convolution call, 26 times a
pass; packing them once per input size removes that. The results match the eager pass to bf16
rounding (about 62 dB), and the unpacked fused pass exactly.
"""
from __future__ import annotations

import threading

import torch
from torch import nn
from torch.nn import functional as F

_MKLDNN = torch.ops.mkldnn


def fused_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(_MKLDNN, "_convolution_pointwise")


class _Packed:
    """The convolutions' weights in oneDNN's layout for one input shape (oneDNN picks the layout
    by shape, so each tile size gets its own), each packed from the input its first call meets;
    with pack=False, the plain weights, reordered by every call (the pass before packing, kept as
    the bench's baseline). Passes side by side may both pack a weight once: the same result."""

    def __init__(self, pack: bool = True):
        self.packed = pack
        self.weights: dict[nn.Module, torch.Tensor] = {}

    def weight(self, x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        if not self.packed:
            return conv.weight
        if conv not in self.weights:
            args = [list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups, list(x.shape)]
            if isinstance(conv, nn.ConvTranspose2d):
                args.insert(1, list(conv.output_padding))
                self.weights[conv] = _MKLDNN._reorder_convolution_transpose_weight(conv.weight, *args)
            else:
                self.weights[conv] = _MKLDNN._reorder_convolution_weight(conv.weight, *args)
        return self.weights[conv]

    def conv(self, x: torch.Tensor, conv: nn.Conv2d, post: str = "none") -> torch.Tensor:
        return _MKLDNN._convolution_pointwise(x, self.weight(x, conv), conv.bias, list(conv.padding), list(conv.stride),
                                              list(conv.dilation), conv.groups, post, [], "")

    def res_block(self, x: torch.Tensor, block) -> torch.Tensor:
        """x + conv2(silu(conv1(x))), the sum written into x: no block input is needed afterwards."""
        h = self.conv(x, block.conv1, "swish")
        conv = block.conv2
        return _MKLDNN._convolution_pointwise_.binary(x, h, self.weight(h, conv), conv.bias, list(conv.padding),
                                                      list(conv.stride), list(conv.dilation), conv.groups, "add",
                                                      None, None, [], None)

    def up(self, x: torch.Tensor, up: nn.ConvTranspose2d) -> torch.Tensor:
        if not self.packed:
            return up(x)
        return _MKLDNN._convolution_transpose_pointwise(x, self.weight(x, up), up.bias, list(up.padding),
                                                        list(up.output_padding), list(up.stride), list(up.dilation),
                                                        up.groups, "none", [], "")


class FusedDenoiser(nn.Module):
    """Wraps a Denoiser (its weights in fp32 or bf16) for inference on a CPU; call it as the Denoiser."""

    def __init__(self, model: nn.Module, pack: bool = True):
        super().__init__()
        self.model = model
        self.spec = model.spec
        self.pack = pack
        self._packed: dict[tuple[int, ...], _Packed] = {}
        self._packing = threading.Lock()  # passes may run side by side (gencore/denoising.py)

    @torch.no_grad()
    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """noisy (B, C, H, W) in [0, 1], sigma (B,) in [0, 1] units -> denoised (B, C, H, W)."""
        m = self.model
        h, w = noisy.shape[-2:]
        x = F.pad(noisy, (0, (-w) % m.multiple, 0, (-h) % m.multiple), mode="reflect")
        level = sigma.view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
        stem_in = torch.cat([x, level], dim=1).to(m.stem.weight.dtype).contiguous(memory_format=torch.channels_last)
        with self._packing:
            if stem_in.shape not in self._packed:
                self._packed[stem_in.shape] = _Packed(self.pack)
            net = self._packed[stem_in.shape]
        feat = net.conv(stem_in, m.stem)
        skips = []
        for blocks, down in zip(m.down_blocks, m.downs):
            for block in blocks:
                feat = net.res_block(feat, block)
            skips.append(feat)
            feat = net.conv(feat, down)  # halves H and W
        for block in m.middle:
            feat = net.res_block(feat, block)
        for up, blocks in zip(m.ups, m.up_blocks):
            feat = skips.pop().add_(net.up(feat, up))  # in place: no new full-size activation
            for block in blocks:
                feat = net.res_block(feat, block)
        noise = net.conv(feat, m.head).to(x.dtype)
        return (x - noise)[..., :h, :w]
