"""Composability: tfdplc's quantizer and bottleneck in a user's own Keras codec, trained, exported, used.

Runs the example of docs/serving.md ("Your own codec") and checks what it produced.
"""

import contextlib
import io
import json
import os
import re

import numpy as np
import pytest

from tfdplc import codec
from tfdplc.codec import container as fmt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def example():
    text = open(os.path.join(ROOT, "docs", "serving.md"), encoding="utf-8").read()
    (source,) = re.findall(r"```python\n(.*?)```", text, re.S)
    printed = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "docs/serving.md", "exec"), namespace)
    return namespace, printed.getvalue()


def _as_uint8(images):
    return np.round(np.clip(np.asarray(images), 0.0, 1.0) * 255.0).astype(np.uint8)


def test_both_codecs_train_and_report_their_rates(example):
    namespace, printed = example
    lines = printed.strip().splitlines()
    assert lines[0] == "fixed_rate: 784 bits per digit (1.000 bpp)"
    assert re.fullmatch(r"entropy: \d+ bits per digit \(\d\.\d{3} bpp\)", lines[1])
    for _, history, *_ in namespace["results"].values():
        losses = history.history["loss"]
        assert losses[-1] < losses[0], losses  # it learned


def test_fixed_rate_codec_round_trip_is_bit_exact(example):
    namespace, _ = example
    model, _, export_dir, files, decoded = namespace["results"]["fixed_rate"]
    digits = namespace["uint8_digits"].astype(np.float32) / 255.0
    assert [len(f) for f in files] == [fmt.MIN_SIZE_V2 + 98] * 8  # 392 ternary indices x 2 bits, no seed
    np.testing.assert_array_equal(decoded, _as_uint8(model(digits)))
    exported = codec.load(export_dir)
    codes, _ = exported.decompress_codes(files)
    np.testing.assert_array_equal(codes, model.quantizer.indices(model.analysis(digits)))
    assert set(np.unique(codes)) <= {0, 1, 2}
    # Fixed-rate codes need no tfc op: the stock-servable SavedModel has compress/decompress too.
    stock = json.load(open(os.path.join(export_dir, "serving", "1", "assets.extra", "tfdplc_codec.json")))
    assert {"compress", "decompress", "encode", "decode"} <= set(stock["signatures"])
    assert not stock["needs_tensorflow_compression"]


def test_entropy_codec_range_codes_close_to_its_estimated_rate(example):
    namespace, _ = example
    model, _, export_dir, files, decoded = namespace["results"]["entropy"]
    digits = namespace["uint8_digits"].astype(np.float32) / 255.0
    np.testing.assert_array_equal(decoded, _as_uint8(model(digits)))
    exported = codec.load(export_dir)
    codes, _ = exported.decompress_codes(files)
    np.testing.assert_array_equal(
        codes, codec.bottleneck_codes(model.codec_bottleneck, model.analysis(digits))
    )
    _, estimated = model.codec_bottleneck(model.analysis(digits), training=False)
    real = np.array([exported.payload_bits(f) for f in files])
    # The range coder is within a few bytes of the information content of each code.
    assert np.all(real >= estimated.numpy() - 8) and np.all(real <= estimated.numpy() + 64), (real, estimated)
    description = json.load(open(os.path.join(export_dir, "codec.json")))
    assert description["needs_tensorflow_compression"] and description["payload"] == "range_coded"
    stock = json.load(open(os.path.join(export_dir, "serving", "1", "assets.extra", "tfdplc_codec.json")))
    assert set(stock["signatures"]) == {"encode", "decode", "serving_default"}
