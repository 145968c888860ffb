#!/usr/bin/env python
"""Measures how often a file of one model passes the check value of another model with the same tag.

For each of --pairs random pairs of 8-byte fingerprints sharing their first 2 bytes (the model tag of
format versions 2 and 3), a random file body of the quickstart layout (DPLC 32x32x1, a 2x2x2 binary code:
magic, version, tag, a 1-byte seed varint, a 1-byte payload; 10-byte files) is checked under both keys;
the file of model 1 is accepted by model 2 when the two check values are equal. Both check values are
measured on the same pairs: version 3's KMX-32 (`tfdplc.codec.checkvalue.check32`) and version 2's
keyed Adler-32. Besides the full 32-bit acceptances (expected 2^-32 per pair for a well-mixed check,
which 10^8 pairs cannot resolve), the script counts agreements of each 16-bit half (expected 2^-16 each)
and the frequency of each bit of the XOR of the two values (expected 1/2), which show whether the
fingerprint reaches every output bit.

The vectorised computation is checked against `check32` and `zlib.adler32` on the first 1,000 pairs.

  python results/codec/measure_check_value.py --pairs=100000000 --output=results/codec/check_value.json
"""

import argparse
import json
import os
import platform
import time
import zlib

import numpy as np

from tfdplc.codec import checkvalue
from tfdplc.codec import container as fmt

_MASK = np.uint64(0xFFFFFFFF)


def _keys(fingerprints: np.ndarray):
    halves = fingerprints.reshape(-1, 2, 4).astype(np.uint64)
    shifts = np.array([24, 16, 8, 0], dtype=np.uint64)
    return (halves[:, 0] << shifts).sum(axis=1), (halves[:, 1] << shifts).sum(axis=1)


def kmx32(fingerprints: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """check32 of each row of `bodies` (P, n) uint8 under each row of `fingerprints` (P, 8) uint8."""
    k0, k1 = _keys(fingerprints)
    count, size = bodies.shape
    padded = np.zeros((count, -(-size // 4) * 4), np.uint64)
    padded[:, :size] = bodies
    words = padded.reshape(count, -1, 4)
    words = (words[:, :, 0] << 24) | (words[:, :, 1] << 16) | (words[:, :, 2] << 8) | words[:, :, 3]
    total = np.zeros(count, np.uint64)
    for position in range(words.shape[1]):
        key = checkvalue.mix32((np.uint64(position) + k0) & _MASK)
        total = total + checkvalue.mix32(checkvalue.mix32(words[:, position] ^ key) ^ k1)
    total &= _MASK
    return checkvalue.mix32(((checkvalue.mix32(total ^ k0) + np.uint64(size)) & _MASK) ^ k1)


def keyed_adler(fingerprints: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """Adler-32 of each fingerprint followed by its body (version 2's check), vectorised."""
    data = np.concatenate([fingerprints, bodies], axis=1).astype(np.int64)
    size = data.shape[1]
    a = (1 + data.sum(axis=1)) % 65521
    b = (size + (data * np.arange(size, 0, -1)).sum(axis=1)) % 65521
    return ((b << 16) | a).astype(np.uint64)


def _chunk(rng, count):
    first = rng.integers(0, 256, (count, 8), dtype=np.uint8)
    second = first.copy()
    second[:, 2:] = rng.integers(0, 256, (count, 6), dtype=np.uint8)
    bodies = np.zeros((count, 6), np.uint8)
    bodies[:, 0] = ord("D")
    bodies[:, 2:4] = first[:, :2]  # the shared tag
    bodies[:, 4] = rng.integers(0, 128, count)  # a 1-byte seed varint
    bodies[:, 5] = rng.integers(0, 256, count)  # the 8-bit code
    return first, second, bodies


def _self_check(rng):
    first, second, bodies = _chunk(rng, 1000)
    for version, function in ((3, kmx32), (2, keyed_adler)):
        bodies[:, 1] = version
        for keys in (first, second):
            expected = [fmt.check_value(version, bytes(k), bytes(d)) for k, d in zip(keys, bodies)]
            assert function(keys, bodies).tolist() == expected, version
    assert keyed_adler(first[:1], bodies[:1])[0] == zlib.adler32(bytes(first[0]) + bytes(bodies[0]))


def main():
    """Measures and prints (and writes) the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10**8)
    parser.add_argument("--chunk", type=int, default=10**7)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    _self_check(rng)
    start, done = time.time(), 0
    counts = {
        name: {"accepted": 0, "low16_equal": 0, "high16_equal": 0, "xor_bit_ones": np.zeros(32, np.int64)}
        for name in ("v3_kmx32", "v2_keyed_adler32")
    }
    bits = np.arange(32, dtype=np.uint64)
    while done < args.pairs:
        count = min(args.chunk, args.pairs - done)
        first, second, bodies = _chunk(rng, count)
        for name, version, function in (("v3_kmx32", 3, kmx32), ("v2_keyed_adler32", 2, keyed_adler)):
            bodies[:, 1] = version
            difference = function(first, bodies) ^ function(second, bodies)
            record = counts[name]
            record["accepted"] += int(np.count_nonzero(difference == 0))
            record["low16_equal"] += int(np.count_nonzero((difference & np.uint64(0xFFFF)) == 0))
            record["high16_equal"] += int(np.count_nonzero((difference >> np.uint64(16)) == 0))
            record["xor_bit_ones"] += (
                ((difference[:, None] >> bits) & np.uint64(1)).sum(axis=0).astype(np.int64)
            )
        done += count
    seconds = time.time() - start
    result = {
        "pairs": done,
        "seed": args.seed,
        "file": "10-byte quickstart layout (tag shared, 1-byte seed varint, 1-byte code)",
        "seconds": round(seconds, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared)",
    }
    for name, record in counts.items():
        ones = record.pop("xor_bit_ones") / done
        result[name] = dict(
            record,
            accepted_rate=record["accepted"] / done,
            low16_rate=record["low16_equal"] / done,
            high16_rate=record["high16_equal"] / done,
            xor_bit_frequency_min=round(float(ones.min()), 5),
            xor_bit_frequency_max=round(float(ones.max()), 5),
        )
    result["expected_for_a_uniform_check"] = {"accepted_rate": 2.0**-32, "half_rate": 2.0**-16, "bit": 0.5}
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
