"""Installs tfdplc: generative (distribution-preserving) lossy compression on TF/tfc."""

import setuptools

# The whole stack is pinned to what tensorflow-compression 2.14.1 supports (see README, "Dependencies").
# Keep every pin here: installing anything in a second pip call would otherwise upgrade numpy/scipy
# past what TF 2.14 supports.
INSTALL_REQUIRES = [
    "tensorflow~=2.14.1",
    "tensorflow-compression==2.14.1",
    "tensorflow-probability==0.22.1",
    "tensorflow-gan==2.1.0",
    "tensorflow-datasets==4.9.3",
    # 1.15.0, not 1.14.0: on Python 3.11 it takes protobuf 4.25 (within TF 2.14's <5), whose C (upb)
    # backend saves and loads SavedModels 3-6x faster than the pure-Python protobuf 3.20.3, the only one
    # 1.14.0 allows on 3.11 (measured back to back under the same load: a tiny DPLC's export 42.5 s ->
    # 13.9 s, its load 17.6 s -> 2.9 s).
    "tensorflow-metadata==1.15.0",
    "protobuf>=4.25.2,<5; python_version >= '3.11'",
    "tensorflow-hub<0.16",
    "numpy>=1.23,<2",
    "scipy~=1.11.4",
    "gin-config==0.5.0",
    "absl-py>=1.0",
    "mlxtend==0.23.4",
    "scikit-learn>=1.3",
    "matplotlib>=3.7",
    "pillow>=9",
]

TEST_REQUIRES = [
    "pytest>=7",
    "pytest-xdist>=3",
    "hypothesis>=6",
    "ruff>=0.4",
]

setuptools.setup(
    name="tfdplc",
    version="0.1.0",
    description=(
        "Distribution-preserving lossy compression (DPLC), perceptual decoders and shift compression "
        "in TensorFlow/Keras on tensorflow-compression."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9,<3.12",
    packages=setuptools.find_packages(include=["tfdplc", "tfdplc.*"]),
    # Shipped weights (tfdplc/assets/, not a Python package): the digit classifier of tfdplc.features.
    package_data={"tfdplc": ["assets/*.h5"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
)
