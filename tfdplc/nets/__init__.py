"""The networks of the three papers, as constructors returning Keras models (all gin-configurable).

- `dcgan`: DPLC (Tschannen et al. 2018, Appendix B): WAE encoder F, generator G, critic f, rate-constrained
  encoder E and the (stochastic) map B.
- `mnist`: Liu et al. 2022 (Tables 12-15) encoder / decoders / critic for super-resolution and denoising,
  and Yan et al. 2021 encoder E, decoders G1 / G2 and conditional critic J (concatenating, or by projection).
- `warm_start`: a G2 with G1's layers and its warm start from G1 (issue 26; not in the paper).
"""

from tfdplc.nets.dcgan import critic_f, encoder_E, encoder_F, generator_G, mapping_B
from tfdplc.nets.mnist import (
    liu_critic,
    liu_decoder,
    liu_encoder,
    liu_two_branch_decoder,
    yan_critic,
    yan_decoder,
    yan_encoder,
    yan_generator,
    yan_projection_critic,
)
from tfdplc.nets.warm_start import g1_shaped_generator, warm_start_from_g1

__all__ = [
    "encoder_F",
    "generator_G",
    "critic_f",
    "encoder_E",
    "mapping_B",
    "liu_encoder",
    "liu_decoder",
    "liu_two_branch_decoder",
    "liu_critic",
    "yan_encoder",
    "yan_decoder",
    "yan_generator",
    "yan_critic",
    "yan_projection_critic",
    "g1_shaped_generator",
    "warm_start_from_g1",
]
