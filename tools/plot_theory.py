#!/usr/bin/env python
"""Plots the closed-form distortion-rate results of Liu et al. 2022 (App. A) and writes their values.

Writes into --output:
  fig3_binary.png    Figure 3: X ~ B(0.3), Y ~ B(q_Y) for q_Y in {0.3, 0.5, 0.6}, Hamming distortion:
                     D_ncr (22), its upper/lower bounds (23)/(24), D_cr (25), and D_cr from the App. A.3 LP.
  fig7_uniform.png   Figure 7: X ~ Unif[0, 2], Y ~ Unif[0, 5]: the lower bound W2^2 (39), the upper bound
                     D_ncr^+ ((46) + (47) + (50)) and its transport term (50); right, (46) and (47).
  fig8_gaussian.png  Figure 8: Gaussian sources, asymptotic setting, Theorem 8 (58)-(61).
  theory.json        every plotted value, one record per (method, rate, setting) as in DESIGN.md.

Only NumPy/SciPy/matplotlib do the work (tfdplc.theory); no model is trained.

Example:
  python tools/plot_theory.py --output=results/shift/theory
"""

import json
import os
import time

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from tfdplc import plots, theory  # noqa: E402

flags.DEFINE_string("output", "results/shift/theory", "Folder for the PNGs and theory.json.")
flags.DEFINE_integer("num_rates", 81, "Rate points per curve.", lower_bound=2)
flags.DEFINE_integer(
    "lp_points", 12, "Rates per Figure 3 panel at which the App. A.3 LP is solved.", lower_bound=1
)
FLAGS = flags.FLAGS

BINARY_Q_X = 0.3
BINARY_Q_Y = (0.3, 0.5, 0.6)  # Figure 3 (a), (b), (c)
BINARY_MAX_RATE = 1.0
UNIFORM_A, UNIFORM_B = 2.0, 5.0  # Figure 7
UNIFORM_MAX_RATE = 4.0
GAUSSIANS = ((0.0, 1.0, 0.0, 1.0), (0.0, 1.0, 1.0, 2.0))  # Figure 8 (a), (b): mu_X, sigma_X, mu_Y, sigma_Y
GAUSSIAN_MAX_RATE = 4.0


def _records(method, rates, values, **fields):
    return [
        dict(method=method, rate_bits=float(r), distortion=float(v), **fields) for r, v in zip(rates, values)
    ]


def binary_figure(records, path):
    rates = np.linspace(0.0, BINARY_MAX_RATE, FLAGS.num_rates)
    lp_rates = np.linspace(0.0, BINARY_MAX_RATE, FLAGS.lp_points)
    fig, axes = plt.subplots(1, len(BINARY_Q_Y), figsize=(13, 3.8), sharey=False)
    for ax, q_y, panel in zip(axes, BINARY_Q_Y, "abc"):
        q_x = BINARY_Q_X
        common = dict(
            source="binary",
            distortion_measure="hamming",
            figure=f"3{panel}",
            setting=f"q_x={q_x},q_y={q_y}",
            q_x=q_x,
            q_y=q_y,
        )
        curves = [
            ("binary-ncr", "eq. (22)", theory.binary_dr_ncr(q_x, q_y, rates), dict(color="C0", lw=2)),
            (
                "binary-ncr-upper",
                "eq. (23)",
                theory.binary_dr_ncr_upper(q_x, q_y, rates),
                dict(color="C1", ls="--"),
            ),
            (
                "binary-ncr-lower",
                "eq. (24)",
                theory.binary_dr_ncr_lower(q_x, q_y, rates),
                dict(color="C2", ls="-."),
            ),
            ("binary-cr", "eq. (25)", theory.binary_dr_cr(q_x, q_y, rates), dict(color="C3", lw=2)),
        ]
        labels = {
            "binary-ncr": r"$D_{ncr}$ (22)",
            "binary-ncr-upper": r"$\overline{D}_{ncr}$ upper (23)",
            "binary-ncr-lower": r"$\underline{D}_{ncr}$ lower (24)",
            "binary-cr": r"$D_{cr}$ (25)",
        }
        for method, equation, values, style in curves:
            ax.plot(rates, values, label=labels[method], **style)
            records += _records(method, rates, values, equation=equation, **common)
        lp = theory.finite_dr_cr_lp([1 - q_x, q_x], [1 - q_y, q_y], lp_rates)
        ax.plot(lp_rates, lp, "kx", label=r"$D_{cr}$ by the App. A.3 LP")
        records += _records("binary-cr-lp", lp_rates, lp, equation="App. A.3 LP", **common)
        top = min(theory.binary_entropy(q_x), theory.binary_entropy(q_y))
        ax.axvline(top, color="0.6", ls=":", lw=1)
        ax.set_title(f"({panel}) $q_X$={q_x}, $q_Y$={q_y}")
        ax.set_xlabel("rate R (bits)")
        ax.set_ylabel("expected Hamming distortion")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Binary sources (Liu et al. 2022, Fig. 3 / Theorem 4); dotted: min{H_b(q_X), H_b(q_Y)}", fontsize=10
    )
    plots.save_figure(fig, path, dpi=130)


def uniform_figure(records, path):
    rates = np.linspace(0.0, UNIFORM_MAX_RATE, FLAGS.num_rates)
    a, b = UNIFORM_A, UNIFORM_B
    terms = theory.uniform_dr_ncr_upper(a, b, rates, return_terms=True)
    lower = np.full_like(rates, theory.uniform_w2_squared(a, b))
    common = dict(source="uniform", distortion_measure="mse", figure="7", setting=f"a={a},b={b}", a=a, b=b)
    series = [
        ("uniform-w2", "eq. (39)", lower),
        ("uniform-ncr-upper", "(46)+(47)+(50)", terms["total"]),
        ("uniform-transport", "eq. (50)", terms["transport"]),
        ("uniform-quantization", "eq. (46)", terms["quantization"]),
        ("uniform-dequantization", "eq. (47)", terms["dequantization"]),
    ]
    for method, equation, values in series:
        records += _records(method, rates, values, equation=equation, **common)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(rates, terms["total"], color="C1", lw=2, label=r"upper bound $D^+_{ncr}$ (46)+(47)+(50)")
    left.plot(rates, lower, color="C2", ls="-.", label=r"lower bound $W_2^2(p_X, p_Y)$ (39)")
    left.plot(rates, terms["transport"], color="C0", ls="--", label=r"$W_2^2(p_{\hat X}, p_{\hat Y})$ (50)")
    right.plot(rates, terms["quantization"], color="C4", label=r"$E[(X-\hat X)^2]$ (46)")
    right.plot(rates, terms["dequantization"], color="C5", ls="--", label=r"$E[(Y-\hat Y)^2]$ (47)")
    for ax in (left, right):
        ax.set_xlabel("rate R (bits)")
        ax.set_ylabel("mean squared error")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Uniform sources a={a:g}, b={b:g} (Liu et al. 2022, Fig. 7 / App. A.6)", fontsize=10)
    plots.save_figure(fig, path, dpi=130)


def gaussian_figure(records, path):
    # D_cr^(inf) has an infinite slope at R = 0 (square root): extra points there.
    rates = np.union1d(np.linspace(0.0, GAUSSIAN_MAX_RATE, FLAGS.num_rates), np.linspace(0.0, 0.2, 21))
    fig, axes = plt.subplots(1, len(GAUSSIANS), figsize=(10, 3.8))
    for ax, params, panel in zip(axes, GAUSSIANS, "ab"):
        mu_x, sigma_x, mu_y, sigma_y = params
        common = dict(
            source="gaussian",
            distortion_measure="mse",
            figure=f"8{panel}",
            setting=f"mu_x={mu_x:g},sigma_x={sigma_x:g},mu_y={mu_y:g},sigma_y={sigma_y:g}",
            mu_x=mu_x,
            sigma_x=sigma_x,
            mu_y=mu_y,
            sigma_y=sigma_y,
        )
        curves = [
            (
                "gaussian-ncr",
                "eq. (58)",
                theory.gaussian_dr_ncr,
                r"$D^{(\infty)}_{ncr}$ (58)",
                dict(color="C0", lw=2),
            ),
            (
                "gaussian-ncr-upper",
                "eq. (59)",
                theory.gaussian_dr_ncr_upper,
                "upper (53)=(59)",
                dict(color="C1", ls="--"),
            ),
            (
                "gaussian-ncr-lower",
                "eq. (60)",
                theory.gaussian_dr_ncr_lower,
                "lower (54)=(60)",
                dict(color="C2", ls="-."),
            ),
            (
                "gaussian-cr",
                "eq. (61)",
                theory.gaussian_dr_cr,
                r"$D^{(\infty)}_{cr}$ (61)",
                dict(color="C3", lw=2),
            ),
        ]
        for method, equation, function, label, style in curves:
            values = function(*params, rates)
            ax.plot(rates, values, label=label, **style)
            records += _records(method, rates, values, equation=equation, **common)
        ax.set_title(
            rf"({panel}) $\mu_X$={mu_x:g}, $\sigma_X$={sigma_x:g}, $\mu_Y$={mu_y:g}, $\sigma_Y$={sigma_y:g}"
        )
        ax.set_xlabel("rate R (bits per sample)")
        ax.set_ylabel("mean squared error")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Gaussian sources, asymptotic (Liu et al. 2022, Fig. 8 / Theorem 8)", fontsize=10)
    plots.save_figure(fig, path, dpi=130)


def main(argv):
    del argv
    start = time.time()
    os.makedirs(FLAGS.output, exist_ok=True)
    records = []
    binary_figure(records, os.path.join(FLAGS.output, "fig3_binary.png"))
    uniform_figure(records, os.path.join(FLAGS.output, "fig7_uniform.png"))
    gaussian_figure(records, os.path.join(FLAGS.output, "fig8_gaussian.png"))
    path = os.path.join(FLAGS.output, "theory.json")
    with open(path, "w") as f:  # one record a line: readable diffs
        f.write("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    print(
        f"[plot_theory] {len(records)} records and 3 figures in {FLAGS.output} ({time.time() - start:.1f} s)"
    )


if __name__ == "__main__":
    app.run(main)
