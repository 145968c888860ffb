"""The check value of format version 3 files and archives: a keyed multiply-xorshift hash (KMX-32).

Version 2 ends every file with an Adler-32 "keyed" by the model fingerprint (the Adler state after the
fingerprint's 8 bytes). That state has only 2 x 16 bits and the fingerprint enters it linearly, so a file
of another model with the same 2-byte tag was accepted with probability about 1.3e-6, not 2^-32. Version 3
replaces it with a hash in which the fingerprint enters every word through a bijective mixer with full
avalanche, and again in the finalisation:

    M(x)    = murmur3's 32-bit finaliser: x ^= x >> 16; x *= 0x85EBCA6B; x ^= x >> 13; x *= 0xC2B2AE35;
              x ^= x >> 16 (all mod 2^32; a bijection in which every input bit flips each output bit with
              probability about 1/2)
    k0, k1  = the fingerprint's two big-endian 32-bit halves
    w_j     = the data, zero-padded to whole 4-byte words, read big-endian, j = 0 .. ceil(n / 4) - 1
    t_j     = M(M(w_j ^ M(j + k0)) ^ k1)
    S       = sum_j t_j  mod 2^32
    check   = M(((M(S ^ k0) + n) mod 2^32) ^ k1)        (n: the data's length in bytes)

Why this form: it needs no loop and only 64-bit integer adds, multiplies, shifts and xors, so the exported
graphs compute it with core TensorFlow ops, vectorised over all words of a batch (`graph.keyed_check`), as
they computed Adler-32. For fixed key and position, w_j -> t_j is a bijection, so any change inside one
aligned 4-byte word changes S and is always detected (for the same length); the length enters the
finalisation, so truncations and insertions change the input of a bijection too. A change spread over
several words, and a file of another model (every t_j and the finalisation depend on the whole
fingerprint through M), pass with probability about 2^-32; `results/codec/check_value.json` measures
the cross-model acceptance (results/codec/measure_check_value.py).

It is a check value, not a MAC: M is invertible, and a forger who knows the fingerprint can make a valid
file. Forgery is outside the threat model (docs/serving.md); a keyed BLAKE2 would resist it but needs a
sequential compression loop over 64-byte blocks, which the stock graphs avoid.
"""

import struct

import numpy as np

__all__ = ["MIX_1", "MIX_2", "check32", "mix32"]

MIX_1 = 0x85EBCA6B
MIX_2 = 0xC2B2AE35
_MASK = np.uint64(0xFFFFFFFF)


def mix32(x):
    """M(x), murmur3's 32-bit finaliser, elementwise on uint64 arrays holding 32-bit values (or an int)."""
    x = np.asarray(x, dtype=np.uint64)
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(MIX_1)) & _MASK
    x = x ^ (x >> np.uint64(13))
    x = (x * np.uint64(MIX_2)) & _MASK
    return x ^ (x >> np.uint64(16))


def _key(fingerprint: bytes):
    if not isinstance(fingerprint, (bytes, bytearray)) or len(fingerprint) != 8:
        raise ValueError(f"the key must be an 8-byte fingerprint, got {fingerprint!r}.")
    k0, k1 = struct.unpack(">II", bytes(fingerprint))
    return np.uint64(k0), np.uint64(k1)


def check32(fingerprint: bytes, data: bytes) -> int:
    """The version 3 check value of `data` keyed by an 8-byte model fingerprint (see the module docstring).

    Args:
      fingerprint: the model's 8-byte fingerprint.
      data: the bytes to check (bytes-like).

    Returns:
      The 32-bit check value, an int.

    Raises:
      ValueError: if the fingerprint is not 8 bytes.
    """
    k0, k1 = _key(fingerprint)
    data = bytes(data)
    size = len(data)
    padded = data + bytes(-size % 4)
    words = np.frombuffer(padded, dtype=">u4").astype(np.uint64)
    positions = np.arange(words.size, dtype=np.uint64)
    terms = mix32(mix32(words ^ mix32((positions + k0) & _MASK)) ^ k1)
    total = np.uint64(int(terms.sum(dtype=np.uint64)) & 0xFFFFFFFF)
    return int(mix32(((mix32(total ^ k0) + np.uint64(size)) & _MASK) ^ k1))
