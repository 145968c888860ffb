"""tfdplc.results (mean +- sd of seeded records) and the seeded rate plots of tfdplc.plots."""

import json
import math

import numpy as np
import pytest
from event_files import write_events

from tfdplc import plots, results

RECORDS = [
    {"method": "a", "rate_bits": 4.0, "bpp": 0.1, "seed": 0, "mse": 1.0, "fd": 5.0},
    {"method": "a", "rate_bits": 4.0, "bpp": 0.1, "seed": 1, "mse": 2.0, "fd": 7.0},
    {"method": "a", "rate_bits": 4.0, "bpp": 0.1, "seed": 2, "mse": 6.0},
    {"method": "a", "rate_bits": 8.0, "bpp": 0.2, "seed": 0, "mse": 0.5},
    {"method": "b", "rate_bits": 4.0, "bpp": 0.1, "seed": 0, "mse": 3.0},
]


def test_load_seeded_sweeps_tags_each_record_with_its_folders_seed(tmp_path):
    for name, records in {
        "cae-seed12": [{"method": "cae", "k": 0}, {"method": "cae", "k": 2}],
        "dplc-gc-seed3": [{"method": "gc", "k": 0, "seed": 99}],  # the folder's seed wins
        "cae-seed1b": [{"method": "stray"}],  # not a seed folder
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(records))
    (tmp_path / "other-seed4").mkdir()  # no results.json yet: nothing to read
    loaded = results.load_seeded_sweeps(str(tmp_path))
    assert loaded == [
        {"method": "cae", "k": 0, "seed": 12},
        {"method": "cae", "k": 2, "seed": 12},
        {"method": "gc", "k": 0, "seed": 3},
    ]


@pytest.mark.parametrize(
    "path, seed",
    [
        ("runs/seed0", 0),
        ("runs/seed12/", 12),
        ("sweeps/g1g2-seed2", 2),
        ("sweeps/dplc-gc-seed3", 3),
        ("runs/seed2-extended", None),
        ("sweeps/cae-seed1b", None),
        ("runs/seeds", None),
        ("runs/myseed1", None),
    ],
)
def test_folder_seed_reads_only_seed_folders(path, seed):
    assert results.folder_seed(path) == seed


def test_group_and_summarize_match_numpy():
    groups = results.group_records(RECORDS, ("method", "rate_bits"))
    assert list(groups) == [("a", 4.0), ("a", 8.0), ("b", 4.0)]
    summary = results.summarize(groups[("a", 4.0)], "mse")
    assert summary.n == 3
    assert summary.mean == pytest.approx(3.0)
    assert summary.sd == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))  # sample sd, not population
    # A record without the metric is left out; a single run has sd 0.
    assert results.summarize(groups[("a", 4.0)], "fd") == (6.0, pytest.approx(math.sqrt(2.0)), 2)
    assert results.summarize(groups[("a", 8.0)], "mse") == (0.5, 0.0, 1)
    assert results.summarize(groups[("b", 4.0)], "fd") is None
    ratio = results.summarize(
        groups[("a", 4.0)], lambda r: r["mse"] / r.get("fd", math.nan) if "fd" in r else None
    )
    assert ratio.n == 2 and ratio.mean == pytest.approx((1 / 5 + 2 / 7) / 2)


def test_group_by_a_function_of_the_record():
    groups = results.group_records(RECORDS, (lambda r: r["rate_bits"] > 5,))
    assert [len(g) for g in groups.values()] == [4, 1]


def test_summarize_refuses_non_finite_values():
    with pytest.raises(ValueError, match="non-finite"):
        results.summarize([{"mse": 1.0}, {"mse": float("nan")}], "mse")


def test_format_mean_sd():
    assert results.format_mean_sd(results.Summary(0.02514, 0.00041, 3)) == "0.0251 ± 0.0004 (3)"
    assert results.format_mean_sd(results.Summary(0.02514, 0.0, 1)) == "0.0251"
    assert results.format_mean_sd(results.Summary(-0.0312, 0.0083, 3), 1, percent=True) == "-3.1 ± 0.8% (3)"
    assert results.format_mean_sd(None) == "-"


def test_rate_plots_draw_seeded_points_as_mean_with_error_bars(tmp_path, monkeypatch):
    drawn = []
    real_errorbar = plots.plt.Axes.errorbar

    def spy(self, x, y, yerr=None, **kwargs):
        drawn.append((kwargs.get("label"), list(x), list(y), list(yerr)))
        return real_errorbar(self, x, y, yerr=yerr, **kwargs)

    monkeypatch.setattr(plots.plt.Axes, "errorbar", spy)
    written = plots.rate_plots(RECORDS, str(tmp_path), metrics=("mse",))
    assert written == [str(tmp_path / "rate_mse.png")]
    ((label, x, y, yerr),) = drawn  # method "b" has one run per rate: a plain line
    assert label == "a" and x == [0.1, 0.2]
    np.testing.assert_allclose(y, [3.0, 0.5])
    np.testing.assert_allclose(yerr, [np.std([1.0, 2.0, 6.0], ddof=1), 0.0])


def test_code_ignoring_mse_is_the_mean_over_pairs_of_distinct_images():
    from tfdplc import metrics

    images = np.random.default_rng(0).uniform(size=(7, 4, 3, 2))
    pairs = [np.mean((images[i] - images[j]) ** 2) for i in range(7) for j in range(7) if i != j]
    assert metrics.code_ignoring_mse(images) == pytest.approx(np.mean(pairs))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.code_ignoring_mse(images[:1])


def test_informative_rates_lie_below_0_8_of_the_floor():
    from tfdplc import metrics

    assert metrics.informative_for_theorem2(0.03, 0.107)  # 0.06 < 0.0856
    assert not metrics.informative_for_theorem2(0.045, 0.107)  # 0.09 >= 0.0856


def test_plateau_epoch_is_the_first_checked_epoch_where_every_curve_is_flat():
    epochs = np.arange(1, 121)
    # Falls by 1% per epoch until epoch 60, then flat: window means at 80 vs 60 still differ (the 60 window
    # covers the last of the fall), at 100 vs 80 they agree.
    falling = np.where(epochs <= 60, 1.0 - 0.01 * epochs, 0.4)
    assert results.plateau_epoch([falling], [0.03]) == 100
    # A second curve that settles later holds the plateau back; a looser tolerance lets it through.
    late = np.where(epochs <= 90, 2.0 - 0.01 * epochs, 1.1)
    assert results.plateau_epoch([falling, late], [0.03, 0.03]) == 120
    assert results.plateau_epoch([falling, late], [0.03, 0.5]) == 100
    # Never flat within the curve: None. A negative-valued curve is compared by magnitude.
    assert results.plateau_epoch([1.0 - 0.005 * epochs], [0.01]) is None
    assert results.plateau_epoch([-falling], [0.03]) == 100
    # Only multiples of lag from `first` on are checked: a curve flat from the start stops at `first`.
    assert results.plateau_epoch([np.ones(120)], [0.0], first=40) == 40
    assert results.plateau_epoch([np.ones(120)], [0.0], first=50) == 60
    with pytest.raises(ValueError, match="tolerances"):
        results.plateau_epoch([falling], [0.1, 0.1])
    with pytest.raises(ValueError, match="lengths"):
        results.plateau_epoch([falling, falling[:50]], [0.1, 0.1])


STEPS = [700, 1400, 2100, 2800, 3500]


@pytest.mark.parametrize(
    "values, stalled, above, reached, left_at",
    [
        # On the plateau to the end (the stalled G2 runs: MSE 0.09 against a floor near 0.1).
        ([0.106, 0.101, 0.098, 0.095, 0.094], True, False, True, None),
        # Escaped: in the band until step 2100, below it from 2800 on.
        ([0.104, 0.101, 0.099, 0.061, 0.048], False, False, True, 2800),
        # Left once, fell back onto the plateau, left for good at 3500: the last departure counts.
        ([0.102, 0.060, 0.097, 0.100, 0.050], False, False, True, 3500),
        # Never near the floor: no plateau to leave.
        ([0.040, 0.035, 0.031, 0.030, 0.030], False, False, False, None),
        # Above the band (worse than a code-ignoring decoder) from step 1400: not a stall, not converged.
        ([0.100, 0.130, 0.140, 0.150, 0.160], False, True, True, None),
        # Started above the band and came down through it to below: left at the first step below.
        ([0.200, 0.150, 0.090, 0.050, 0.040], False, False, True, 2800),
    ],
)
def test_detect_stall_on_synthetic_curves(values, stalled, above, reached, left_at):
    stall = results.detect_stall(STEPS, values, floor=0.1)
    assert (stall.stalled, stall.above, stall.reached, stall.left_at) == (stalled, above, reached, left_at)
    assert stall.ratio == pytest.approx(values[-1] / 0.1, rel=1e-12)


def test_detect_stall_band_ends_count_as_stalled():
    # floor 0.25: the band's ends 0.8 x 0.25 = 0.2 and 1.2 x 0.25 = 0.3 are these doubles exactly.
    floor = 0.25
    lower, upper = 0.2, 0.3
    assert results.detect_stall([1, 2], [0.25, lower], floor).stalled
    assert results.detect_stall([1, 2], [0.25, upper], floor).stalled
    below = results.detect_stall([1, 2], [0.25, np.nextafter(lower, 0.0)], floor)
    assert not below.stalled and not below.above and below.left_at == 2
    beyond = results.detect_stall([1, 2], [0.25, np.nextafter(upper, 1.0)], floor)
    assert not beyond.stalled and beyond.above and beyond.left_at is None
    # A narrower band moves the ends: 0.94 x floor is a stall at 10%, none at 5%.
    assert results.detect_stall([1], [0.235], floor, band=0.1).stalled
    assert not results.detect_stall([1], [0.235], floor, band=0.05).stalled
    # One point is a whole curve.
    assert results.detect_stall([9], [0.25], floor) == results.Stall(True, 1.0, False, True, None)


@pytest.mark.parametrize(
    "steps, values, floor, band, match",
    [
        ([], [], 0.1, 0.2, "one value per step"),
        ([1, 2], [0.1], 0.1, 0.2, "one value per step"),
        ([2, 2], [0.1, 0.1], 0.1, 0.2, "increase strictly"),
        ([1, 2], [0.1, float("nan")], 0.1, 0.2, "non-finite"),
        ([1], [0.1], 0.0, 0.2, "floor"),
        ([1], [0.1], float("inf"), 0.2, "floor"),
        ([1], [0.1], 0.1, 1.0, "band"),
        ([1], [0.1], 0.1, 0.0, "band"),
    ],
)
def test_detect_stall_refuses_bad_input(steps, values, floor, band, match):
    with pytest.raises(ValueError, match=match):
        results.detect_stall(steps, values, floor, band)


def test_read_training_seconds_sums_each_file_and_leaves_out_pauses(tmp_path):
    # First start: 10 s, 10 s, a 880 s pause (SIGSTOP), 10 s. Resumed: 5 s. The 990 s between the two files
    # (the process was not running) is not counted either.
    write_events(tmp_path / "events.out.tfevents.1.host", [100.0, 110.0, 120.0, 1000.0, 1010.0])
    write_events(tmp_path / "events.out.tfevents.2.host", [2000.0, 2005.0])
    assert plots.read_training_seconds(str(tmp_path)) == pytest.approx(35.0)
    assert plots.read_training_seconds(str(tmp_path), max_gap=1000.0) == pytest.approx(915.0)
    with pytest.raises(FileNotFoundError, match="No TensorBoard event file"):
        plots.read_training_seconds(str(tmp_path / "empty"))
