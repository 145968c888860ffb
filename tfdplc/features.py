"""Feature extractors for the distribution distances of `tfdplc.metrics` (Fréchet and kernel distance).

DPLC (Tschannen et al. 2018, Section 5) measures how well reconstructions and samples follow the data
distribution with the FID: the Fréchet distance between InceptionV3 pool3 features of two image sets. The
distances in `tfdplc.metrics.distribution_distances` take any *feature extractor*: a callable mapping a
batch of float32 images in [0, 1], NHWC, to a (B, d) float32 feature matrix, with a `name` (recorded as
`fd_features` in results) and a `feature_dim` (d). Two are provided:

* `InceptionFeatures(weights_path)`: InceptionV3 pool3 features (2048-d), the features of FID / KID.
  The ImageNet weights cannot be downloaded here and are never downloaded by this module: pass the path of
  Keras' "notop" InceptionV3 weights file (see `INCEPTION_WEIGHTS_URL`); a missing file raises
  `FileNotFoundError` saying where to get it.
* `DigitClassifierFeatures()`: the penultimate layer (64-d, ReLU) of a small CNN digit classifier trained
  by `tools/train_digit_classifier.py` on mnist5k's train split (4,500 real MNIST digits) and shipped inside
  the package (`tfdplc/assets/digit_classifier.weights.h5`, about 0.5 MB). Measured test accuracy on
  mnist5k's test split (500 digits): 97.4% (seed 0, 30 epochs; the tool prints it). Inception features of
  28x28 grey digits are a poor fit, and Inception weights are not available offline, so the MNIST-scale
  experiments of this project report `fd` / `kd` on these features (`fd_features="digit_classifier"`).
  Numbers on different features are not comparable with each other, nor with FIDs in papers.
"""

import os
from typing import Optional

import numpy as np
import tensorflow as tf

__all__ = [
    "DIGIT_CLASSIFIER_FEATURE_DIM",
    "DIGIT_CLASSIFIER_SIZE",
    "DIGIT_CLASSIFIER_WEIGHTS",
    "DigitClassifierFeatures",
    "INCEPTION_SIZE",
    "INCEPTION_WEIGHTS_FILE",
    "INCEPTION_WEIGHTS_URL",
    "InceptionFeatures",
    "digit_classifier",
    "fit_digit_size",
    "labelled_mnist5k",
    "to_rgb",
]

INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_WEIGHTS_FILE
)

DIGIT_CLASSIFIER_SIZE = 28
DIGIT_CLASSIFIER_FEATURE_DIM = 64
DIGIT_CLASSIFIER_WEIGHTS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "assets", "digit_classifier.weights.h5"
)


def to_rgb(images: tf.Tensor) -> tf.Tensor:
    """Repeats a single grey channel three times; 3-channel images pass unchanged.

    Raises:
      ValueError: if the images have neither 1 nor 3 channels.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    channels = images.shape[-1]
    if channels == 1:
        return tf.tile(images, [1, 1, 1, 3])
    if channels == 3:
        return images
    raise ValueError(f"Expected images with 1 or 3 channels, got shape {images.shape}.")


class InceptionFeatures:
    """InceptionV3 pool3 features (2048-d), as FID / KID use them, from a local weights file.

    Images in [0, 1] (any size, 1 or 3 channels; grey images are repeated to RGB) are resized to 299x299
    (bilinear) and scaled to [-1, 1], the input range of Keras' InceptionV3 (`preprocess_input`, "tf"
    mode). The network is `tf.keras.applications.InceptionV3(include_top=False, pooling="avg",
    weights=None)` with the weights read from `weights_path`; nothing is ever downloaded.

    Deviation: the original FID code (TTUR) runs the TF1 Inception graph of 2015 on images resized by its
    own bilinear op; Keras' InceptionV3 with ImageNet weights gives close but not identical features, so
    values here are comparable with each other, not digit-for-digit with published FIDs.
    """

    name = "inception_v3_pool3"
    feature_dim = 2048

    def __init__(self, weights_path: Optional[str]):
        """Builds InceptionV3 and loads its weights.

        Args:
          weights_path: path of Keras' "notop" InceptionV3 ImageNet weights
            (`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`, from `INCEPTION_WEIGHTS_URL`),
            or any weights file saved from the same `include_top=False` architecture.

        Raises:
          FileNotFoundError: if `weights_path` is empty or does not exist; the message says where to get
            the file.
        """
        if not weights_path or not tf.io.gfile.exists(weights_path):
            raise FileNotFoundError(
                f"InceptionV3 weights file not found: {weights_path!r}. tfdplc never downloads weights. "
                f"On a machine with network access download {INCEPTION_WEIGHTS_URL} (Keras' ImageNet "
                f"InceptionV3 without the top, about 84 MB; or run tf.keras.applications.InceptionV3("
                f"include_top=False) once and take ~/.keras/models/{INCEPTION_WEIGHTS_FILE}), copy it here "
                "and pass its path (e.g. --inception_weights=PATH). For MNIST-like data "
                "tfdplc.features.DigitClassifierFeatures needs no download."
            )
        self.weights_path = weights_path
        self.model = tf.keras.applications.InceptionV3(
            include_top=False,
            weights=None,
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
            pooling="avg",
        )
        self.model.load_weights(weights_path)
        self._features = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((None, INCEPTION_SIZE, INCEPTION_SIZE, 3), tf.float32)],
        )

    def __call__(self, images) -> tf.Tensor:
        """(B, H, W, C) images in [0, 1] -> (B, 2048) float32 features."""
        images = tf.image.resize(to_rgb(images), (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        return self._features(tf.clip_by_value(images, 0.0, 1.0) * 2.0 - 1.0)


def fit_digit_size(images, size: int = DIGIT_CLASSIFIER_SIZE) -> tf.Tensor:
    """Brings digit images to `size` x `size` x 1: central crop or zero padding, RGB converted to grey.

    A 32x32 MNIST image of this project is the 28x28 digit zero-padded by 2 pixels on each side
    (`tfdplc.data.load_images(..., resolution=32)`), so the central 28x28 crop recovers it exactly. Larger
    images are cropped centrally, smaller ones zero-padded centrally (the odd pixel on the bottom/right, as
    the loader pads). Nothing is resized.

    Args:
      images: (B, H, W, C) float images in [0, 1], C = 1 or 3.
      size: the classifier's input size.

    Returns:
      (B, size, size, 1) float32 images.

    Raises:
      ValueError: if the images have neither 1 nor 3 channels or no static spatial size.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[1] is None or images.shape[2] is None:
        raise ValueError(f"Expected (B, H, W, C) images with a static size, got shape {images.shape}.")
    if images.shape[-1] == 3:
        images = tf.image.rgb_to_grayscale(images)
    elif images.shape[-1] != 1:
        raise ValueError(f"Expected images with 1 or 3 channels, got shape {images.shape}.")
    height, width = images.shape[1], images.shape[2]
    if height > size:
        top = (height - size) // 2
        images = images[:, top : top + size]
    if width > size:
        left = (width - size) // 2
        images = images[:, :, left : left + size]
    height, width = images.shape[1], images.shape[2]
    if height < size or width < size:
        top, left = (size - height) // 2, (size - width) // 2
        images = tf.pad(images, [[0, 0], [top, size - height - top], [left, size - width - left], [0, 0]])
    return images


def digit_classifier(seed: Optional[int] = None) -> tf.keras.Model:
    """The small CNN digit classifier (28x28x1 input in [0, 1], 10 logits), untrained.

    conv3x3-16, conv3x3-16, maxpool2, conv3x3-32, conv3x3-32, maxpool2 (all ReLU, "same" padding),
    flatten (7*7*32), dense-64 ReLU (the feature layer, named "features"), dropout 0.3, dense-10 logits.
    About 117k parameters.

    Args:
      seed: seed of the weight initialisers and the dropout (None: TF's global seed).

    Returns:
      A functional Keras model from images to logits.
    """

    def init(index):  # One initialiser per layer: a shared seeded one would give identical kernels.
        return tf.keras.initializers.GlorotUniform(seed=None if seed is None else seed + index)

    images = tf.keras.Input((DIGIT_CLASSIFIER_SIZE, DIGIT_CLASSIFIER_SIZE, 1), name="images")
    x = images
    for i, filters in enumerate((16, 16, 32, 32)):
        x = tf.keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer=init(i), name=f"conv{i}"
        )(x)
        if i % 2:
            x = tf.keras.layers.MaxPool2D(2, name=f"pool{i // 2}")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    features = tf.keras.layers.Dense(
        DIGIT_CLASSIFIER_FEATURE_DIM, activation="relu", kernel_initializer=init(4), name="features"
    )(x)
    x = tf.keras.layers.Dropout(0.3, seed=seed, name="dropout")(features)
    logits = tf.keras.layers.Dense(10, kernel_initializer=init(5), name="logits")(x)
    return tf.keras.Model(images, logits, name="digit_classifier")


class DigitClassifierFeatures:
    """Penultimate-layer features (64-d, ReLU) of the shipped MNIST digit classifier.

    Accepts (B, H, W, C) images in [0, 1] of any size with 1 or 3 channels; they are brought to 28x28x1 by
    `fit_digit_size` (32x32 padded MNIST is cropped back to 28x28). `classify` gives the class logits.
    Trained by `tools/train_digit_classifier.py` on mnist5k's train split; measured accuracy on mnist5k's
    test split: 97.4% (see the module docstring).
    """

    name = "digit_classifier"
    feature_dim = DIGIT_CLASSIFIER_FEATURE_DIM

    def __init__(self, weights_path: Optional[str] = None):
        """Builds the classifier and loads its weights.

        Args:
          weights_path: weights file; None means the one shipped in the package (`DIGIT_CLASSIFIER_WEIGHTS`).

        Raises:
          FileNotFoundError: if the weights file does not exist.
        """
        weights_path = weights_path or DIGIT_CLASSIFIER_WEIGHTS
        if not tf.io.gfile.exists(weights_path):
            raise FileNotFoundError(
                f"Digit classifier weights not found: {weights_path!r}. The package ships them in "
                "tfdplc/assets/; reinstall tfdplc or run tools/train_digit_classifier.py to make them."
            )
        self.weights_path = weights_path
        self.model = digit_classifier()
        self.model.load_weights(weights_path)
        self._both = tf.keras.Model(
            self.model.input, [self.model.get_layer("features").output, self.model.output]
        )
        spec = tf.TensorSpec((None, DIGIT_CLASSIFIER_SIZE, DIGIT_CLASSIFIER_SIZE, 1), tf.float32)
        self._call = tf.function(lambda x: self._both(x, training=False), input_signature=[spec])

    def __call__(self, images) -> tf.Tensor:
        """(B, H, W, C) images in [0, 1] -> (B, 64) float32 features."""
        return self._call(fit_digit_size(images))[0]

    def classify(self, images) -> tf.Tensor:
        """(B, H, W, C) images in [0, 1] -> (B, 10) class logits."""
        return self._call(fit_digit_size(images))[1]

    def accuracy(self, images, labels, batch_size: int = 500) -> float:
        """Fraction of `images` whose predicted class equals `labels`."""
        images, labels = np.asarray(images, np.float32), np.asarray(labels)
        predictions = np.concatenate(
            [
                np.argmax(self.classify(images[i : i + batch_size]), axis=1)
                for i in range(0, len(images), batch_size)
            ]
        )
        return float(np.mean(predictions == labels))


def labelled_mnist5k(split: str, data_dir: Optional[str] = None) -> tuple:
    """One mnist5k split as numpy arrays (images (N, 28, 28, 1) float32 in [0, 1], labels (N,) int64).

    Images come from `tfdplc.data.load_images` (the project's preprocessing); labels from the same tfds
    builder, in the same (file) order.
    """
    from tfdplc import data  # Imported lazily: tfds is only needed here.

    images = np.stack(list(data.load_images("mnist5k", split, data_dir=data_dir).as_numpy_iterator()))
    builder = data.prepare_mnist5k(data_dir)
    labels = builder.as_dataset(split=split, shuffle_files=False).map(lambda ex: ex["label"])
    labels = np.fromiter(labels.as_numpy_iterator(), dtype=np.int64)
    if len(labels) != len(images):
        raise ValueError(f"mnist5k {split}: {len(images)} images but {len(labels)} labels.")
    return images, labels
