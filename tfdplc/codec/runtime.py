"""Compressing and decompressing images with an exported model (or a model in memory), from Python.

    codec = tfdplc.codec.load("export_dir")          # or tfdplc.codec.Codec.from_model(objective)
    files = codec.compress(images_uint8)               # one container (bytes) per image
    images = codec.decompress(files)                   # uint8 (B, H, W, C)

`decompress` checks every container in Python first (`tfdplc.codec.container`), so a refused file raises
the specific `tfdplc.codec.CodecError` subclass; the exported graph repeats the checks for clients that
call the SavedModel directly (TensorFlow Serving).
"""

import json
import os
import re
import secrets
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from tfdplc.codec import archive as archive_format
from tfdplc.codec import container as fmt
from tfdplc.codec.errors import CodecError, CorruptedError
from tfdplc.codec.export import CODEC_DIR, REALISM_SIGNATURE, SPEC_FILE, build_functions, read_description
from tfdplc.codec.interface import CodecSpec, realism_value

__all__ = ["Codec", "load"]

Seeds = Union[None, int, Sequence[int], np.ndarray]


def _seed_array(seeds: Seeds, count: int, what: str, maximum: int = fmt.MAX_SEED) -> np.ndarray:
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError(f"{what} must be an int or a sequence of ints, got {seeds!r}.")
    if isinstance(seeds, (int, np.integer)):
        seeds = [int(seeds)] * count
    try:
        values = [int(s) for s in seeds]
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must be an int or a sequence of ints, got {seeds!r}.") from error
    if len(values) != count:
        raise ValueError(f"{what}: got {len(values)} seeds for {count} images.")
    if any(not 0 <= s <= maximum for s in values):
        bound = "2^28 (stored in files)" if maximum == fmt.MAX_SEED_V2 else "2^63"
        raise ValueError(f"{what} must lie in [0, {bound}).")
    return np.asarray(values, dtype=np.int64)


def _as_bytes(data) -> bytes:
    """One container as bytes: bytes, bytearray and memoryview are accepted, anything else refused."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"a container must be bytes, bytearray or memoryview, got {type(data).__name__}.")


def _containers(data) -> List[bytes]:
    """One container or a sequence of them -> a list of bytes (checked before TensorFlow sees them)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return [_as_bytes(data)]
    if isinstance(data, (str, np.ndarray)) and not (isinstance(data, np.ndarray) and data.dtype == object):
        raise TypeError(f"containers must be bytes or a sequence of bytes, got {type(data).__name__}.")
    return [_as_bytes(item) for item in data]


def _graph_error(message: str) -> str:
    """The reason in a graph's InvalidArgumentError (the text of its first failed assertion)."""
    # The graph's own checks fail with "tfdplc container: ..." / "tfdplc codec: ..." messages; tfc's range
    # decoder with its own "Sanity check failed." when a range-coded payload does not decode.
    found = re.search(r"assertion failed: \[([^\]]*)\]", message)
    if found is None:
        return message.strip().splitlines()[0]
    detail = found.group(1)
    return (
        detail if detail.startswith("tfdplc ") else f"the range-coded payload does not decode (tfc: {detail})"
    )


class Codec:
    """Compress / decompress / sample with one model's signatures.

    Build it with `load` (an export folder or SavedModel) or `Codec.from_model` (a model in memory,
    e.g. to measure real bitstream rates during evaluation without writing an export).
    """

    def __init__(self, signatures: Dict[str, object], description: dict, source: str):
        """Wraps signature functions and their codec description (use `load` / `from_model`)."""
        self._signatures = dict(signatures)
        self.description = description
        self.source = source
        self.spec = CodecSpec.from_json(description["spec"])
        self.fingerprint = bytes.fromhex(description["fingerprint"])
        self.layout = None
        if self.spec.can_encode:
            self.layout = fmt.Layout(
                fingerprint=self.fingerprint,
                image_shape=self.spec.image_shape,
                code_shape=self.spec.code_shape,
                levels=self.spec.levels,
                stochastic_decoder=self.spec.stochastic_decoder,
                seeded_encoder=self.spec.seeded_encoder,
            )

    @classmethod
    def from_model(cls, model) -> "Codec":
        """A codec running a model's traced functions in memory (same bytes as its export would write)."""
        functions = build_functions(model)
        return cls(functions.functions, functions.description(), source=f"<{type(model).__name__} in memory>")

    # --------------------------------------------------------------------------------------------------
    # Properties.

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """(H, W, C) of the model's images."""
        return self.spec.image_shape

    @property
    def max_container_size(self) -> Optional[int]:
        """The largest container this model writes (`Layout.max_size`); None for models without encoder."""
        return None if self.layout is None else self.layout.max_size

    @property
    def max_archive_size(self) -> Optional[int]:
        """The largest archive of this model (2^20 images; a bound for range-coded ones); None without encoder."""
        if self.layout is None:
            return None
        header = archive_format.HEADER_FIXED + 3 + 4 + fmt.CHECKSUM_SIZE
        if self.layout.levels is not None:
            return header + -(
                -archive_format.MAX_IMAGES * self.layout.num_symbols * self.layout.bits_per_symbol // 8
            )
        return header + archive_format.MAX_IMAGES * (
            4 + self.layout.max_payload + archive_format.ENTRY_CHECK_SIZE
        )

    @property
    def can_decode_realism(self) -> bool:
        """Whether `decompress` takes a `realism` weight (the model has an MSE and a perceptual decoder)."""
        return REALISM_SIGNATURE in self._signatures

    def _signature(self, name: str):
        if name not in self._signatures:
            if name == "sample":
                reason = "the model cannot sample"
            elif name == REALISM_SIGNATURE and self.spec.can_encode:
                reason = (
                    "decoding with a realism weight needs a model with both an MSE decoder and a perceptual "
                    "one (a PerceptualG2 exported with its stage-1 decoder.keras, see mse_decoder_path)"
                )
            elif not self.spec.can_encode:
                reason = "the model has no encoder"
            else:  # a stock-servable SavedModel of a range-coded model
                reason = "load the export folder (or its codec/ SavedModel) for containers"
            raise ValueError(f"{self.spec.method}: no {name!r} signature in {self.source}: {reason}.")
        return self._signatures[name]

    def _call(self, name: str, **inputs) -> Dict[str, np.ndarray]:
        function = self._signature(name)
        try:
            outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            raise CorruptedError(f"{name} refused its input: {_graph_error(error.message)}") from error
        return {key: value.numpy() for key, value in outputs.items()}

    # --------------------------------------------------------------------------------------------------
    # Images in, containers out.

    def check_images(self, images) -> np.ndarray:
        """Validates a batch of images for `compress` / `encode`.

        Returns:
          The images as a uint8 array (B, H, W, C).

        Raises:
          TypeError: if they are not a uint8 array.
          ValueError: if their shape is not (B, H, W, C) with the model's (H, W, C).
        """
        if self.layout is None:
            raise ValueError(f"{self.spec.method} has no encoder: it can only sample.")
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a uint8 NumPy array, got {type(images).__name__}.")
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 (0-255), got {images.dtype}.")
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise ValueError(
                f"images must have shape (B, {', '.join(map(str, self.image_shape))}) for this model, got "
                f"{images.shape}."
            )
        return images

    def _encoder_seeds(self, seeds: Seeds, count: int) -> np.ndarray:
        """Seeds to store: [0, 2^28) for models that use them (random by default), else 0 (not stored)."""
        if not self.layout.uses_seed:
            if seeds is not None:
                _seed_array(seeds, count, "seeds")  # checked, but it has no effect: files store none
            return np.zeros([count], np.int64)
        if seeds is None:
            return np.asarray([secrets.randbelow(fmt.MAX_SEED_V2 + 1) for _ in range(count)], np.int64)
        return _seed_array(seeds, count, "seeds", fmt.MAX_SEED_V2)

    def compress(self, images: np.ndarray, seeds: Seeds = None, batch_size: int = 64) -> List[bytes]:
        """Compresses images into containers, one per image.

        Args:
          images: uint8 (B, H, W, C).
          seeds: per-image seeds stored in the containers (an int for all, or B ints in [0, 2^28)); None:
            random seeds for models that use them. Models that use none store none (their seed is 0).
          batch_size: images per call of the model.

        Returns:
          B container byte strings.
        """
        images = self.check_images(images)
        seeds = self._encoder_seeds(seeds, len(images))
        out = []
        for start in range(0, len(images), batch_size):
            chunk = slice(start, start + batch_size)
            strings = self._call("compress_seeded", images=images[chunk], seeds=seeds[chunk])[
                "compressed_bytes"
            ]
            out.extend(bytes(s) for s in strings)
        return out

    def encode(self, images: np.ndarray, seeds: Seeds = None) -> np.ndarray:
        """The integer codes (B, h, w, k) of images (what the containers carry)."""
        images = self.check_images(images)
        if seeds is None:
            seeds = self._encoder_seeds(None, len(images))
        else:  # not stored: any seed a model takes, [0, 2^63)
            seeds = _seed_array(seeds, len(images), "seeds")
        return self._call("encode", images=images, seeds=seeds)["codes"]

    # --------------------------------------------------------------------------------------------------
    # Containers in, images out.

    def parse(self, data: bytes) -> Tuple[int, bytes, int]:
        """Reads one container (format version 1, 2 or 3) and checks it against this model.

        Returns:
          `(seed, payload, version)`.

        Raises:
          CodecError: the specific subclass (see `tfdplc.codec.errors`).
          TypeError: if `data` is not bytes.
        """
        if self.layout is None:
            raise ValueError(f"{self.spec.method} has no encoder: it has no containers.")
        data = _as_bytes(data)
        if len(data) > self.layout.max_size:  # refused from its first bytes, before it is parsed
            raise fmt.too_long_error(data, len(data), self.layout.max_size)
        return self.layout.read(data)

    def _decoder_seeds(self, seeds: Seeds, count: int) -> Optional[np.ndarray]:
        if seeds is None:
            return None
        if self.spec.seeded_encoder:
            raise ValueError(
                f"{self.spec.method}: the encoder used the container's seed (shared dither); decoding must "
                "use the same seed, so it cannot be replaced."
            )
        if not self.spec.stochastic_decoder:
            raise ValueError(
                f"{self.spec.method}: the decoder is deterministic, a seed would change nothing."
            )
        return _seed_array(seeds, count, "seeds")

    def decompress(
        self, data, seeds: Seeds = None, batch_size: int = 64, realism: Optional[float] = None
    ) -> np.ndarray:
        """Decompresses containers.

        Args:
          data: one container (bytes) or a sequence of them.
          seeds: None to decode with each container's seed; else an int or one int per container (another
            draw of a stochastic decoder; refused for deterministic decoders and shared-dither encoders).
          batch_size: containers per call of the model.
          realism: None for the model's decoder; else alpha in [0, 1] to decode with
            (1 - alpha) G1(c) + alpha G2(c, n) (`decompress_realism`, models with both decoders only;
            G2's noise from each container's seed, so alpha = 1 equals realism=None). Not with `seeds`.

        Returns:
          uint8 images: (H, W, C) for one container, (B, H, W, C) for a sequence.

        Raises:
          CodecError: the specific subclass, for the first refused container (its index in the message).
          ValueError: for a bad `realism`, `realism` with `seeds`, or `realism` for a model without the
            `decompress_realism` signature (checked before any container is read).
        """
        if realism is not None:
            realism = realism_value(realism)
            if seeds is not None:
                raise ValueError(
                    f"{self.spec.method}: realism decodes with each container's seed; it does not take seeds."
                )
            self._signature(REALISM_SIGNATURE)  # refuses a model without both decoders, naming why
        single = isinstance(data, (bytes, bytearray, memoryview))
        items = _containers(data)
        for index, item in enumerate(items):
            try:
                self.parse(item)
            except CodecError as error:
                if single:
                    raise
                raise type(error)(f"container {index}: {error}") from error
        override = self._decoder_seeds(seeds, len(items))
        images = []
        for start in range(0, len(items), batch_size):
            chunk = np.asarray(items[start : start + batch_size], dtype=object)
            if realism is not None:
                outputs = self._call(REALISM_SIGNATURE, compressed_bytes=chunk, realism=np.float32(realism))
                images.append(outputs["images"])
            elif override is None:
                images.append(self._call("decompress", compressed_bytes=chunk)["images"])
            else:
                seeds_chunk = override[start : start + batch_size]
                images.append(
                    self._call("decompress_seeded", compressed_bytes=chunk, seeds=seeds_chunk)["images"]
                )
        out = np.concatenate(images) if images else np.zeros((0, *self.image_shape), np.uint8)
        return out[0] if single else out

    def graph_decompress(self, data: Sequence[bytes]) -> np.ndarray:
        """Decompresses with the model's graph alone, skipping the Python checks (what a TF Serving client gets).

        The graph repeats every check; a refused batch raises `CorruptedError` carrying the graph's message
        ("tfdplc container: ..."). For testing the exported graphs (tools/fuzz_codec.py).
        """
        return self._call("decompress", compressed_bytes=np.asarray(_containers(data), dtype=object))[
            "images"
        ]

    def decompress_codes(self, data: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
        """The integer codes and seeds stored in containers (no decoding): `(codes, seeds)`."""
        items = _containers(data)
        for item in items:
            self.parse(item)
        outputs = self._call("decompress_codes", compressed_bytes=np.asarray(items, dtype=object))
        return outputs["codes"], outputs["seeds"]

    def decode(self, codes: np.ndarray, seeds: Seeds = None) -> np.ndarray:
        """Images from integer codes (B, h, w, k) and seeds (default 0)."""
        codes = np.asarray(codes, dtype=np.int32)
        seeds = np.zeros([len(codes)], np.int64) if seeds is None else _seed_array(seeds, len(codes), "seeds")
        return self._call("decode", codes=codes, seeds=seeds)["images"]

    def sample(self, seeds: Seeds) -> np.ndarray:
        """Samples images from the model's generator, one per seed: uint8 (B, H, W, C)."""
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            seeds = [int(seeds)]
        seeds = _seed_array(seeds, len(seeds), "seeds")
        return self._call("sample", seeds=seeds)["images"]

    # --------------------------------------------------------------------------------------------------
    # Archives: many images in one file (`tfdplc.codec.archive`).

    def compress_archive(self, images: np.ndarray, seed: Optional[int] = None, batch_size: int = 64) -> bytes:
        """Compresses images into one archive.

        Args:
          images: uint8 (N, H, W, C), 1 <= N <= 2^20.
          seed: the archive's seed in [0, 2^28) (image i uses (seed + i) mod 2^28); None: a random one for
            models that use seeds. Models that use none store none.
          batch_size: images per call of the model.

        Returns:
          The archive's bytes: image i holds what `compress` writes for it with its seed.
        """
        images = self.check_images(images)
        if not 1 <= len(images) <= archive_format.MAX_IMAGES:
            raise ValueError(f"an archive holds 1 to {archive_format.MAX_IMAGES} images, got {len(images)}.")
        if not self.layout.uses_seed:
            seeds, seed = None, 0
        else:
            seed = int(self._encoder_seeds(seed if seed is None else [seed], 1)[0])
            seeds = archive_format.image_seeds(seed, len(images))
        files = self.compress(images, seeds=seeds, batch_size=batch_size)
        return archive_format.write(self.layout, seed, [self.parse(f)[1] for f in files])

    def read_archive(self, data: bytes, salvage: bool = False) -> archive_format.Archive:
        """Reads and checks an archive of this model (`tfdplc.codec.archive.read`)."""
        if self.layout is None:
            raise ValueError(f"{self.spec.method} has no encoder: it has no archives.")
        return archive_format.read(self.layout, _as_bytes(data), salvage=salvage)

    def decompress_archive(
        self,
        data,
        indices: Sequence[int] = None,
        batch_size: int = 64,
        realism: Optional[float] = None,
    ) -> np.ndarray:
        """Decodes the images of an archive (all, or those at `indices`): uint8 (len, H, W, C).

        Each image is decoded from the single file it equals (`Archive.containers`), so it is the image
        `decompress` gives for that file (with the same `realism`, see `decompress`).
        """
        if realism is not None:  # checked before the archive is read
            realism_value(realism)
            self._signature(REALISM_SIGNATURE)
        archive = data if isinstance(data, archive_format.Archive) else self.read_archive(data)
        if indices is not None:
            bad = [i for i in indices if not 0 <= int(i) < len(archive)]
            if bad:
                raise IndexError(f"the archive holds images 0..{len(archive) - 1}, not {bad}.")
        return self.decompress(
            archive.containers(self.layout, indices), batch_size=batch_size, realism=realism
        )

    # --------------------------------------------------------------------------------------------------
    # Rates.

    def payload_bits(self, data: bytes) -> int:
        """Bits of a container's payload (the code itself, without header and checksum); checks the file."""
        return 8 * len(self.parse(data)[1])

    def bits_per_pixel(self, bits: float) -> float:
        """Bits per pixel of `bits` per image: bits / (H * W)."""
        return float(bits) / float(self.image_shape[0] * self.image_shape[1])


def _saved_model_dir(path: str) -> str:
    if os.path.isfile(os.path.join(path, SPEC_FILE)) and os.path.isdir(os.path.join(path, CODEC_DIR)):
        return os.path.join(path, CODEC_DIR)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    raise FileNotFoundError(
        f"{path!r} is neither a tfdplc export folder (with {SPEC_FILE} and {CODEC_DIR}/) nor a SavedModel."
    )


def _check_export_description(path: str, description: dict) -> None:
    """Refuses an export whose codec.json is unreadable or differs from its SavedModel's description."""
    try:
        with open(path) as f:
            top = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable codec description: {error}") from error
    same = ("fingerprint", "spec", "container_version")
    if not isinstance(top, dict) or any(top.get(key) != description.get(key) for key in same):
        raise ValueError(
            f"{path} does not describe the model in its SavedModel (edited or from another export)."
        )


def load(path: str) -> Codec:
    """Loads an exported codec: an `export_model` folder (its full SavedModel) or one of its SavedModels.

    Raises:
      FileNotFoundError: if `path` is not an export.
      ValueError: if the SavedModel was not written by `tfdplc.codec.export_model`.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no exported model at {path!r}.")
    saved_model = _saved_model_dir(path)
    description = read_description(saved_model)
    if saved_model != path:  # an export folder: its codec.json must describe the SavedModel it holds
        _check_export_description(os.path.join(path, SPEC_FILE), description)
    if description.get("container_version") != fmt.VERSION:
        raise ValueError(
            f"{path}: exported for container version {description.get('container_version')}, this tfdplc "
            f"writes version {fmt.VERSION}: export the model again (the same weights keep their fingerprint, "
            "so its version 1 files stay readable)."
        )
    if description.get("needs_tensorflow_compression") and not description.get("stock_only"):
        import tensorflow_compression  # noqa: F401 - registers the range-coding ops the SavedModel uses.
    loaded = tf.saved_model.load(saved_model)
    signatures = {name: loaded.signatures[name] for name in loaded.signatures if name != "serving_default"}
    try:
        codec = Codec(signatures, description, source=saved_model)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{saved_model}: damaged codec description: {error}") from error
    codec._loaded = loaded  # keeps the restored variables alive
    return codec
