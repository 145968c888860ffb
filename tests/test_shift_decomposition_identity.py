"""The two readings of Liu et al.'s decomposition (Section 3.2, eq. 18) at their exact optima, in float64.

A small discrete joint distribution of (V, X, Y~), enumerated exactly: V the code (3 values), X | V and
Y~ | V vectors of 4 "pixels" with a few outcomes each, X and Y~ independent given V (no common randomness:
Y~ = g(V - U2) with a private dither). The branches' optima are found by weighted least squares over
functions of V (one-hot design), so nothing here assumes the closed forms it checks:
  * own targets (g1 on (a), g2 on (b)): L2 = (a) + (b) + (c) equals E||X - Y~||^2 and (c) = T,
    T = E||E[X|V] - E[Y~|V]||^2 (computed directly from the conditional means);
  * joint (g1, g2 on all of (18)): L2 = E||X - Y~||^2 - (2/3) T and (c) = T / 9.
The eq.-18 terms come from `ShiftDecomposition.terms_of` (the objective's own definitions), and the
estimates of T that results/shift/tables.py reports are checked against the true T.
"""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from tfdplc.objectives.shift_decomposition import ShiftDecomposition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = 4  # pixels per image (2 x 2 x 1)


def _tables():
    spec = importlib.util.spec_from_file_location("shift_tables", f"{ROOT}/results/shift/tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcomes(dependent=False):
    """Every (v, x, y~) outcome with its probability; Y~ independent of X given V unless `dependent`."""
    rng = np.random.default_rng(27)
    p_v = np.array([0.2, 0.5, 0.3])
    rows = []
    for v in range(3):
        xs = rng.uniform(size=(3, D))
        p_x = rng.dirichlet(np.ones(3))
        ys = rng.uniform(size=(2, D)) + 0.3 * v  # conditional means of Y~ differ from X's: T > 0
        p_y = rng.dirichlet(np.ones(2))
        for i in range(3):
            for j in range(2):
                if dependent:  # Y~ moves with X given V (as with a shared dither): no identity
                    p = p_v[v] * p_x[i] * (1.0 if j == i % 2 else 0.0)
                else:
                    p = p_v[v] * p_x[i] * p_y[j]
                if p > 0:
                    rows.append((v, p, xs[i], ys[j]))
    v = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    return v, p, np.stack([r[2] for r in rows]), np.stack([r[3] for r in rows])


def _conditional_mean(v, p, values):
    """E[values | V] per value of V (3, D), by direct weighted averaging."""
    return np.stack([(p[v == k, None] * values[v == k]).sum(0) / p[v == k].sum() for k in range(3)])


def _own_target_optima(v, p, x, y):
    """argmin over functions of V of E||X - Y^1||^2 and of E||Y~ - Y^2||^2, by weighted least squares."""
    design = np.sqrt(p)[:, None] * np.eye(3)[v]
    y1 = np.linalg.lstsq(design, np.sqrt(p)[:, None] * x, rcond=None)[0]
    y2 = np.linalg.lstsq(design, np.sqrt(p)[:, None] * y, rcond=None)[0]
    return y1, y2


def _joint_optimum(v, p, x, y):
    """argmin over functions of V of E[||X - Y^1||^2 + ||Y~ - Y^2||^2 + ||Y^1 - Y^2||^2], as one least squares.

    Unknowns: Y^1(k), Y^2(k) for k = 0, 1, 2 (per pixel, so one 6-unknown problem per pixel). Each outcome
    gives three residual rows, sqrt(p) (Y^1(v) - x), sqrt(p) (Y^2(v) - y~) and sqrt(p) (Y^1(v) - Y^2(v)).
    """
    one_hot = np.eye(3)[v]
    zeros = np.zeros_like(one_hot)
    w = np.sqrt(p)[:, None]
    design = np.concatenate(
        [
            np.hstack([w * one_hot, zeros]),
            np.hstack([zeros, w * one_hot]),
            np.hstack([w * one_hot, -w * one_hot]),
        ]
    )
    target = np.concatenate([w * x, w * y, np.zeros_like(x)])
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    return solution[:3], solution[3:]


def _expected_terms(v, p, x, y, y1, y2):
    """E of each eq.-18 term under the outcome probabilities, per image as `ShiftDecomposition.terms_of`."""
    image = lambda a: tf.constant(a.reshape(-1, 2, 2, 1), tf.float64)  # noqa: E731
    outputs = {"x": image(x), "y_tilde": image(y), "y1": image(y1[v]), "y2": image(y2[v])}
    terms = ShiftDecomposition.terms_of(outputs)
    return {key: float(np.sum(p * value.numpy())) for key, value in terms.items()}


def _transport(v, p, x, y):
    """T = E||E[X|V] - E[Y~|V]||^2 per pixel, from the conditional means."""
    gap = _conditional_mean(v, p, x) - _conditional_mean(v, p, y)
    p_v = np.array([p[v == k].sum() for k in range(3)])
    return float(np.sum(p_v * np.mean(gap**2, axis=1)))


def test_own_target_optima_make_l2_equal_the_end_to_end_loss():
    v, p, x, y = _outcomes()
    y1, y2 = _own_target_optima(v, p, x, y)
    np.testing.assert_allclose(y1, _conditional_mean(v, p, x), atol=1e-12)
    terms = _expected_terms(v, p, x, y, y1, y2)
    transport = _transport(v, p, x, y)
    assert transport > 0.05  # a real gap between the conditional means
    # Float64 sums of ~18 terms of size < 4: errors ~1e-15; 1e-12 leaves room.
    assert terms["decomposed_loss"] == pytest.approx(terms["end_to_end_loss"], abs=1e-12)
    assert terms["term_c"] == pytest.approx(transport, abs=1e-12)


def test_joint_optimum_undercuts_the_end_to_end_loss_by_two_thirds_of_t():
    v, p, x, y = _outcomes()
    y1, y2 = _joint_optimum(v, p, x, y)
    terms = _expected_terms(v, p, x, y, y1, y2)
    transport = _transport(v, p, x, y)
    assert terms["decomposed_loss"] == pytest.approx(terms["end_to_end_loss"] - 2 / 3 * transport, abs=1e-12)
    assert terms["term_c"] == pytest.approx(transport / 9, abs=1e-12)
    # It is the optimum of (18): the own-target optima do worse on the same objective.
    own = _expected_terms(v, p, x, y, *_own_target_optima(v, p, x, y))
    assert own["decomposed_loss"] > terms["decomposed_loss"] + 0.5 * transport


def test_the_identity_needs_conditional_independence():
    # With Y~ tied to X given V (common randomness) the cross term E<X - E[X|V], Y~ - E[Y~|V]> is not 0.
    v, p, x, y = _outcomes(dependent=True)
    terms = _expected_terms(v, p, x, y, *_own_target_optima(v, p, x, y))
    assert abs(terms["decomposed_loss"] - terms["end_to_end_loss"]) > 1e-3


def test_tables_transport_estimates_recover_t_at_the_optima():
    tables = _tables()
    v, p, x, y = _outcomes()
    transport = _transport(v, p, x, y)
    own = dict(_expected_terms(v, p, x, y, *_own_target_optima(v, p, x, y)), method="decomposition-own")
    joint = dict(_expected_terms(v, p, x, y, *_joint_optimum(v, p, x, y)), method="decomposition-joint")
    assert tables.transport_estimate(own) == pytest.approx(transport, abs=1e-12)
    assert tables.transport_estimate(joint) == pytest.approx(transport, abs=1e-12)
    assert tables.joint_gap_predicted(own) == pytest.approx(tables.relative_gap(joint), abs=1e-12)
    assert tables.transport_estimate(dict(own, method="decomposition-separate")) is None
