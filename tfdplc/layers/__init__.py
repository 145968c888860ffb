"""Small composable Keras layers: quantizers, entropy bottlenecks, noise inputs."""

from tfdplc.layers.noise import NoiseInput, WithNoiseInput

__all__ = ["NoiseInput", "WithNoiseInput"]
