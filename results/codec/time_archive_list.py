#!/usr/bin/env python
"""CPU seconds of `tools/codec.py list` on an archive of 2^20 images (issue 29: 24 s before).

The archive is version 2 (readable by the code before and after issue 29) of the quickstart's DPLC layout
(32x32x1 images, a 2x2x2 binary code: 8 bits per image, 1 MiB of codes), built in memory; the model is a
`Codec` made from the layout's description alone (`list` needs no signature). Measures `archive.read`
alone and the whole `list` command (its output to /dev/null), with `time.process_time`.

  python results/codec/time_archive_list.py
  PYTHONPATH=OLD_CHECKOUT python results/codec/time_archive_list.py    # the same on another checkout
"""

import contextlib
import importlib.util
import os
import struct
import sys
import time
import zlib

import numpy as np
from absl import flags

import tfdplc
from tfdplc.codec import Codec, CodecSpec, archive
from tfdplc.codec import container as fmt


def main():
    """Builds the archive, times the read and the list command, prints the seconds."""
    spec = CodecSpec(image_shape=(32, 32, 1), code_shape=(2, 2, 2), levels=2, stochastic_decoder=True)
    codec = Codec({}, {"spec": spec.to_json(), "fingerprint": "5a" * 8}, source="timing")
    count = archive.MAX_IMAGES
    codes = np.random.default_rng(0).integers(0, 2, (count, 8)).astype(np.uint8)
    head = b"DA\x02" + codec.layout.tag + fmt.encode_varint(count) + fmt.encode_varint(7)
    body = head + np.packbits(codes.reshape(-1)).tobytes()
    data = body + struct.pack(">I", zlib.adler32(body, zlib.adler32(codec.layout.fingerprint)))
    start = time.process_time()
    read = archive.read(codec.layout, data)
    read_seconds = time.process_time() - start
    assert len(read) == count
    path = "/tmp/time_archive_list.dplca"
    with open(path, "wb") as f:
        f.write(data)
    tool_path = os.path.join(os.path.dirname(os.path.dirname(tfdplc.__file__)), "tools", "codec.py")
    module_spec = importlib.util.spec_from_file_location("codec_tool", tool_path)
    tool = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(tool)
    tool._load_codec = lambda: codec
    argv = flags.FLAGS(["codec.py", "list", "--model=timing", path])
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        start = time.process_time()
        code = tool.main(argv)
        list_seconds = time.process_time() - start
    os.unlink(path)
    print(f"{tool_path}: archive.read {read_seconds:.2f} s, list {list_seconds:.2f} s CPU, exit {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
