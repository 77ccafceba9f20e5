"""The ONNX sampling graph of a run that carries attribute directions or a mixture prior
(gencore.steering). It keeps the inputs `noise` and `condition` and adds, each float32 with a
dynamic batch:

- `attributes` (batch, A): shifts in standard deviations, one column per shipped attribute in
  the order of the metadata's `attributes` list (zeros: no steering);
- `uniform` (batch,) in [0, 1): picks each sample's mixture component;
- `mixture` (batch,): 1 samples from the fitted mixture (`--prior gmm`), 0 from the arch's prior.

It runs gencore.steering.latent_from_noise, the sampler `gen sample` runs.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gencore.steering import gmm_per_class, latent_from_noise, stacked_directions, uses_class_directions


class SteeredSamplingGraph(nn.Module):
    def __init__(self, run, postprocess: str, threshold: float):
        super().__init__()
        steering = run.steering
        self.decoder, self.postprocess, self.threshold = run.decoder.cpu().float(), postprocess, threshold
        self.names = steering.names
        self.conditional = run.conditional
        self.has_gmm = steering.gmm_weights is not None
        self.per_class_gmm = gmm_per_class(run)
        if self.names:
            self.register_buffer("directions", stacked_directions(steering, self.names,
                                                                  uses_class_directions(run, steering)))
        if self.has_gmm:
            self.register_buffer("gmm_weights", steering.gmm_weights)
            self.register_buffer("gmm_means", steering.gmm_means)
            self.register_buffer("gmm_chols", steering.gmm_chols)

    @property
    def input_names(self) -> list[str]:
        return (["noise"] + (["condition"] if self.conditional else []) + (["attributes"] if self.names else [])
                + (["uniform", "mixture"] if self.has_gmm else []))

    def example(self, d: int, k: int) -> tuple[torch.Tensor, ...]:
        values = {"noise": torch.zeros(2, d), "condition": torch.eye(k)[[0, 1 % k]] if k else None,
                  "attributes": torch.zeros(2, len(self.names)), "uniform": torch.full((2,), 0.5),
                  "mixture": torch.ones(2)}
        return tuple(values[n] for n in self.input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given = dict(zip(self.input_names, inputs))
        noise, condition = given["noise"], given.get("condition")
        d = self.decoder
        shifts = given.get("attributes")
        z = latent_from_noise(d.prior_mean, d.prior_chol, noise, 1.0, condition, shifts,
                              self.directions if self.names else None)
        if self.has_gmm:
            z_gmm = latent_from_noise(d.prior_mean, d.prior_chol, noise, 1.0, condition, shifts,
                                      self.directions if self.names else None, given["uniform"],
                                      (self.gmm_weights, self.gmm_means, self.gmm_chols), self.per_class_gmm)
            m = given["mixture"][:, None]
            z = z_gmm * m + z * (1 - m)  # (B, d)
        mean = d.mean(d(z, condition))  # (B, *item_shape)
        if self.postprocess == "argmax":
            return mean.argmax(dim=1)
        if self.postprocess == "threshold":
            return (mean > self.threshold).to(torch.uint8)
        return mean


def metadata(graph: SteeredSamplingGraph) -> dict[str, Any]:
    inputs = {}
    if graph.names:
        inputs["attributes"] = ("float32 (batch, attributes): shifts in standard deviations along each "
                                "attribute's direction, columns in the order of `attributes`")
    if graph.has_gmm:
        inputs["uniform"] = "float32 (batch,), uniform in [0, 1): picks the mixture component"
        inputs["mixture"] = "float32 (batch,): 1 samples from the fitted mixture (gen's --prior gmm), 0 from the normal prior"
    return {"attributes": graph.names, "steering_inputs": inputs,
            "temperature": "with steering inputs, the noise is scaled by the temperature inside gen; "
                           "multiply `noise` by it here too"}
