"""Bit packing of fixed-rate codes, with core TensorFlow ops (for servable graphs) and with NumPy.

A fixed-rate code of an L-symbol quantizer (e.g. DPLC's centres {-1, 1}: L = 2) has indices in [0, L).
Each index is written with b = ceil(log2 L) bits, most significant bit first; the bits of all indices of
one example (row-major) are concatenated and zero-padded to whole bytes. For L a power of two this is
exactly the nominal rate (n * log2 L bits, plus < 8 padding bits); otherwise it costs
n * (ceil(log2 L) - log2 L) bits more than the nominal rate.

The TensorFlow functions use only core ops (shifts, bitwise and, reshapes, sums), so a SavedModel that
packs codes runs in stock TensorFlow Serving. The NumPy functions are the reference the tests compare
them with, and what the container reader uses to validate a payload.
"""

from typing import Union

import numpy as np
import tensorflow as tf

from tfdplc.codec.errors import CorruptedError

__all__ = ["PackedCheck", "pack_bits", "packed_size", "unpack_bits", "pack_numpy", "unpack_numpy"]


def packed_size(num_symbols: int, bits: int) -> int:
    """Bytes of `num_symbols` packed indices of `bits` bits each: ceil(num_symbols * bits / 8)."""
    return -(-num_symbols * bits // 8)


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 31:
        raise ValueError(f"bits per symbol must be an int in [1, 31], got {bits!r}.")
    return bits


def pack_bits(codes: tf.Tensor, bits: int) -> tf.Tensor:
    """Packs (B, n) indices in [0, 2^bits) into (B, ceil(n * bits / 8)) uint8 bytes (core TF ops).

    Args:
      codes: integer tensor (B, n); values must lie in [0, 2^bits) (the caller checks the range).
      bits: bits per index, 1..31.

    Returns:
      A uint8 tensor (B, ceil(n * bits / 8)).
    """
    bits = _check_bits(bits)
    codes = tf.cast(codes, tf.int32)
    n = codes.shape[-1]
    if n is None:
        raise ValueError(f"pack_bits needs a static number of symbols, got shape {codes.shape}.")
    shifts = tf.range(bits - 1, -1, -1, dtype=tf.int32)  # MSB first.
    bitmat = tf.bitwise.bitwise_and(tf.bitwise.right_shift(codes[..., None], shifts), 1)
    batch = tf.shape(codes)[0]
    flat = tf.reshape(bitmat, [batch, n * bits])
    size = packed_size(n, bits)
    flat = tf.pad(flat, [[0, 0], [0, size * 8 - n * bits]])
    weights = tf.constant([128, 64, 32, 16, 8, 4, 2, 1], tf.int32)
    packed = tf.reduce_sum(tf.reshape(flat, [batch, size, 8]) * weights, axis=-1)
    return tf.cast(packed, tf.uint8)


def unpack_bits(packed: tf.Tensor, num_symbols: int, bits: int):
    """Inverse of `pack_bits` (core TF ops).

    Args:
      packed: uint8 tensor (B, ceil(num_symbols * bits / 8)).
      num_symbols: n, the indices per example.
      bits: bits per index.

    Returns:
      `(codes, padding_ok)`: int32 indices (B, n), and a bool (B,) that is True where every padding bit
      is zero (a writer always zeroes them; the caller decides how to fail otherwise).
    """
    bits = _check_bits(bits)
    size = packed_size(num_symbols, bits)
    packed = tf.cast(packed, tf.int32)
    batch = tf.shape(packed)[0]
    shifts = tf.range(7, -1, -1, dtype=tf.int32)
    flat = tf.reshape(
        tf.bitwise.bitwise_and(tf.bitwise.right_shift(packed[..., None], shifts), 1), [batch, size * 8]
    )
    used, padding = flat[:, : num_symbols * bits], flat[:, num_symbols * bits :]
    weights = tf.bitwise.left_shift(1, tf.range(bits - 1, -1, -1, dtype=tf.int32))
    codes = tf.reduce_sum(tf.reshape(used, [batch, num_symbols, bits]) * weights, axis=-1)
    return codes, tf.reduce_all(tf.equal(padding, 0), axis=-1)


def pack_numpy(codes: np.ndarray, bits: int) -> bytes:
    """Packs the indices of one example (any shape, row-major) into bytes; the NumPy reference.

    Raises:
      ValueError: if an index is outside [0, 2^bits).
    """
    bits = _check_bits(bits)
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    if codes.size and (codes.min() < 0 or codes.max() >= 2**bits):
        raise ValueError(f"indices must lie in [0, 2^{bits}), got [{codes.min()}, {codes.max()}].")
    shifts = np.arange(bits - 1, -1, -1)
    bitmat = ((codes[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bitmat).tobytes()  # packbits zero-pads the last byte


def unpack_numpy(
    payload: Union[bytes, np.ndarray], num_symbols: int, bits: int, levels: int = None
) -> np.ndarray:
    """Unpacks one example's indices; the NumPy reference, and the container reader's payload check.

    Args:
      payload: the packed bytes.
      num_symbols: n, the number of indices.
      bits: bits per index.
      levels: if given, every index must be < levels.

    Returns:
      An int32 array (n,).

    Raises:
      CorruptedError: if the payload has the wrong length, non-zero padding bits or an index >= levels.
    """
    bits = _check_bits(bits)
    data = np.frombuffer(bytes(payload), dtype=np.uint8)
    size = packed_size(num_symbols, bits)
    if data.size != size:
        raise CorruptedError(f"packed payload of {data.size} bytes, {num_symbols} x {bits} bits take {size}.")
    flat = np.unpackbits(data)
    used, padding = flat[: num_symbols * bits], flat[num_symbols * bits :]
    if padding.any():
        raise CorruptedError("non-zero padding bits after the packed code.")
    weights = 1 << np.arange(bits - 1, -1, -1, dtype=np.int64)
    codes = (used.reshape(num_symbols, bits).astype(np.int64) * weights).sum(axis=1)
    if levels is not None and codes.size and codes.max() >= levels:
        raise CorruptedError(f"code index {int(codes.max())} out of range for an L={levels} code.")
    return codes.astype(np.int32)


class PackedCheck:
    """Checks a packed code that arrives in chunks (`container.unpack_stream`), in bounded memory.

    The same verdict as `unpack_numpy(payload, num_symbols, bits, levels)` for a payload of the right
    length (the caller checks the length first), holding at most one block of `bits` x 8,192 bytes
    (65,536 symbols) at a time whatever the payload's size.

    Args:
      num_symbols: n, the indices the payload holds.
      bits: bits per index.
      levels: every index must be < levels (None: no bound).
    """

    _GROUPS = 8192  # 8 symbols of b bits are b bytes: a block of b * 8192 bytes holds 65,536 symbols

    def __init__(self, num_symbols: int, bits: int, levels: int = None):
        self.bits = _check_bits(bits)
        self.levels, self.remaining = levels, num_symbols
        self._pending = bytearray()
        self._weights = 1 << np.arange(self.bits - 1, -1, -1, dtype=np.int64)

    def update(self, chunk: bytes) -> None:
        """Checks the next bytes of the payload; raises CorruptedError at the first invalid index."""
        self._pending += chunk
        block = self.bits * self._GROUPS
        usable = len(self._pending) // block * block
        for start in range(0, usable, block):
            self._block(self._pending[start : start + block])
        del self._pending[:usable]

    def close(self) -> None:
        """Checks the last bytes (the final indices and the padding bits)."""
        self._block(self._pending)
        self._pending = bytearray()

    def _block(self, data) -> None:
        flat = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))
        count = min(self.remaining, flat.size // self.bits)
        used, padding = flat[: count * self.bits], flat[count * self.bits :]
        if padding.any():
            raise CorruptedError("non-zero padding bits after the packed code.")
        codes = used.reshape(count, self.bits).astype(np.int64) @ self._weights
        if self.levels is not None and codes.size and codes.max() >= self.levels:
            raise CorruptedError(f"code index {int(codes.max())} out of range for an L={self.levels} code.")
        self.remaining -= count
