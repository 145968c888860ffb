"""Rate-dependent regularisation weights lambda(R) of DPLC (Tschannen et al. 2018, Section 5, App. B).

The paper keeps the regularisation strength roughly constant across rates by scaling the coefficient with
the distortion of the CAE baseline at that rate:

  * stage 2 (eq. 8, Table 3): lambda_MMD(R) = 150 * MSE_CAE(R) / MSE_CAE(0.5 bpp) on CelebA and
    800 * MSE_CAE(R) / MSE_CAE(1 bpp) on LSUN bedrooms;
  * the GC baseline (eq. 3, App. B "Training the baseline (3)"): lambda(R) = 2.5e-5 * MSE_CAE(R) /
    MSE_CAE(0.5 bpp) on CelebA and 7.5e-5 * MSE_CAE(R) / MSE_CAE(1 bpp) on LSUN bedrooms.

The bases were tuned in the authors' code, i.e. with the "authors_code" scale convention of
`tfdplc.losses` (batch RMSE on [-1, 1] images, per-pixel penalty norm): they mean the paper's balance only
with that distortion and penalty (`tools/diagnose.py` prints the balance; DESIGN.md "Scales").

`scaled_lambda` computes base * MSE_CAE(R) / MSE_CAE(reference) from MSEs given directly or read from the
`metrics.json` files that `tools/evaluate.py` writes into CAE workdirs (a JSON list with one record holding
"mse", "bpp" and "rate_bits").
"""

import json
import math
from typing import Optional

import gin
import tensorflow as tf

__all__ = ["PAPER_LAMBDAS", "read_mse", "scaled_lambda"]

# (objective, dataset) -> (base constant, reference rate in bpp) of Table 3 and Appendix B, in the
# authors'-code scale convention (module docstring).
PAPER_LAMBDAS = {
    ("dplc", "celeb_a"): (150.0, 0.5),
    ("dplc", "lsun"): (800.0, 1.0),
    ("gc", "celeb_a"): (2.5e-5, 0.5),
    ("gc", "lsun"): (7.5e-5, 1.0),
}


def _read_record(path: str) -> dict:
    """Reads the single record of a `metrics.json` file (see module docstring).

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: if it is not a JSON list holding exactly one record (dict).
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"CAE metrics file {path!r} does not exist: train the CAE at this rate and run "
            "tools/evaluate.py on its workdir (it writes WORKDIR/metrics.json), or give the MSE directly."
        )
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"CAE metrics file {path!r} is not valid JSON: {error}.") from error
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or len(records) != 1 or not isinstance(records[0], dict):
        raise ValueError(
            f"CAE metrics file {path!r} must hold a JSON list with exactly one record (as tools/evaluate.py "
            f"writes it), got {type(records).__name__} of length "
            f"{len(records) if isinstance(records, list) else 'n/a'}."
        )
    return records[0]


def _check_mse(value, source: str) -> float:
    try:
        mse = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: the MSE must be a number, got {value!r}.") from error
    if not (math.isfinite(mse) and mse > 0):
        raise ValueError(f"{source}: the MSE must be positive and finite, got {mse}.")
    return mse


def read_mse(path: str, expected_bpp: Optional[float] = None) -> float:
    """Reads the test MSE of a CAE run from its `metrics.json`.

    Args:
      path: a `metrics.json` file written by `tools/evaluate.py`.
      expected_bpp: if given, the record's "bpp" must match it (relative tolerance 1e-3): guards against
        wiring the CAE run of another rate as the reference.

    Returns:
      The "mse" value of the record.

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: if the file is malformed, has no positive finite "mse", or its "bpp" is missing or
        differs from `expected_bpp`.
    """
    record = _read_record(path)
    if "mse" not in record:
        raise ValueError(f"CAE metrics file {path!r} has no 'mse' key (keys: {sorted(record)}).")
    mse = _check_mse(record["mse"], f"CAE metrics file {path!r}")
    if expected_bpp is not None:
        bpp = record.get("bpp")
        if not isinstance(bpp, (int, float)) or not math.isclose(bpp, expected_bpp, rel_tol=1e-3):
            raise ValueError(
                f"CAE metrics file {path!r} is at bpp={bpp!r}, but the reference rate is {expected_bpp} bpp."
            )
    return mse


def _resolve(mse, metrics, role: str, expected_bpp=None) -> Optional[float]:
    if mse is not None and metrics is not None:
        raise ValueError(f"scaled_lambda: give either {role}mse or {role}metrics, not both.")
    if metrics is not None:
        return read_mse(metrics, expected_bpp)
    if mse is not None:
        return _check_mse(mse, f"scaled_lambda: {role}mse")
    return None


@gin.configurable(module="tfdplc.objectives")
def scaled_lambda(
    base: float = gin.REQUIRED,
    mse: Optional[float] = None,
    reference_mse: Optional[float] = None,
    metrics: Optional[str] = None,
    reference_metrics: Optional[str] = None,
    reference_bpp: Optional[float] = None,
) -> float:
    """lambda(R) = base * MSE_CAE(R) / MSE_CAE(reference rate) (DPLC Table 3 and Appendix B).

    Each MSE is given directly (`mse`, `reference_mse`) or read from a CAE run's `metrics.json`
    (`metrics`, `reference_metrics`). With neither MSE given, the rate is the reference rate itself and
    `base` is returned unchanged. In gin, e.g. `DPLC.lambda_mmd = @scaled_lambda()`, `scaled_lambda.base
    = 150`, `scaled_lambda.metrics = "workdirs/cae_k8/metrics.json"`, `scaled_lambda.reference_metrics =
    "workdirs/cae_k128/metrics.json"`, `scaled_lambda.reference_bpp = 0.5`.

    Args:
      base: the constant of the paper (`PAPER_LAMBDAS`), the weight at the reference rate.
      mse: MSE_CAE(R), the CAE's test MSE at the rate being trained.
      reference_mse: MSE_CAE at the reference rate (0.5 bpp CelebA, 1 bpp LSUN).
      metrics: path of the CAE's `metrics.json` at rate R (instead of `mse`).
      reference_metrics: path of the CAE's `metrics.json` at the reference rate (instead of
        `reference_mse`).
      reference_bpp: if given, `reference_metrics`' record must be at this bpp.

    Returns:
      The scaled coefficient (a Python float).

    Raises:
      ValueError: if `base` is negative or not finite, if both a value and a file are given for the same
        MSE, if only one of the two MSEs is given, or if an MSE is invalid.
      FileNotFoundError: if a metrics file does not exist.
    """
    base = float(base)
    if not (math.isfinite(base) and base >= 0):
        raise ValueError(f"scaled_lambda: base must be non-negative and finite, got {base}.")
    current = _resolve(mse, metrics, "")
    reference = _resolve(reference_mse, reference_metrics, "reference_", reference_bpp)
    if current is None and reference is None:
        return base
    if current is None or reference is None:
        missing = "mse / metrics" if current is None else "reference_mse / reference_metrics"
        raise ValueError(
            f"scaled_lambda: the ratio MSE_CAE(R) / MSE_CAE(reference) needs both MSEs; {missing} is missing."
        )
    return base * current / reference
