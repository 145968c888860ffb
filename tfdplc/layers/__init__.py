"""Small composable Keras layers: quantizers, entropy bottlenecks, noise inputs."""

from tfdplc.layers.bottlenecks import EntropyBottleneck, UniversalBottleneck
from tfdplc.layers.noise import NoiseInput, WithNoiseInput
from tfdplc.layers.quantizers import ScalarQuantizer, UniversalQuantizer

__all__ = [
    "EntropyBottleneck",
    "NoiseInput",
    "ScalarQuantizer",
    "UniversalBottleneck",
    "UniversalQuantizer",
    "WithNoiseInput",
]
