"""The README: its code example runs, its quick start is the two commands, its results table is its JSON.

The results-at-a-glance table of README.md is rendered from docs/at_a_glance.json, whose every figure is
computed here from the committed results JSON (results/*/): `python tests/test_readme.py` prints the table
to paste between the README's at-a-glance markers.
"""

import contextlib
import io
import json
import math
import os
import re
import sys

import numpy as np
import pytest
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AT_A_GLANCE = os.path.join(ROOT, "docs", "at_a_glance.json")
BEGIN = "<!-- at-a-glance: rendered from docs/at_a_glance.json by `python tests/test_readme.py` -->"
END = "<!-- /at-a-glance -->"
HEADER = [
    "| Paper | Claim | Verdict | Measured on mnist5k (mean ± sd over 3 seeds unless said) | Details |",
    "|---|---|---|---|---|",
]


def _readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def _spec():
    with open(AT_A_GLANCE, encoding="utf-8") as f:
        return json.load(f)


def _matches(record, where):
    for key, wanted in where.items():
        value = record.get(key)
        if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
            if not isinstance(value, (int, float)) or float(value) != float(wanted):
                return False
        elif value != wanted:
            return False
    return True


def value_samples(spec, records):
    """The per-record values one at-a-glance figure summarises (see docs/at_a_glance.json "value_spec").

    Args:
      spec: one entry of a row's `values`.
      records: the records of spec["file"].

    Returns:
      One float per matched record, in file order.

    Raises:
      ValueError: if the number of matched records is not spec["n"], or a paired record is missing or
        not unique.
    """
    matched = [r for r in records if _matches(r, spec["where"])]
    if len(matched) != spec["n"]:
        raise ValueError(f"{spec['file']} {spec['where']}: {len(matched)} records, expected {spec['n']}.")
    values = []
    for record in matched:
        value = float(record[spec["metric"]])
        if "over" in spec:
            value /= float(record[spec["over"]])
        for pairing in ("paired_divide_by", "paired_subtract"):
            if pairing not in spec:
                continue
            where = dict(spec[pairing], seed=record["seed"])
            others = [r for r in records if _matches(r, where)]
            if len(others) != 1:
                raise ValueError(f"{spec['file']}: {len(others)} records {where} to pair with, expected 1.")
            other = float(others[0][spec["metric"]])
            value = value / other if pairing == "paired_divide_by" else value - other
        if spec.get("minus_one"):
            value -= 1.0
        values.append(value)
    return values


def summary(spec, records):
    """One figure: (value, sd, (lo, hi), text).

    Args:
      spec: one entry of a row's `values`.
      records: the records of spec["file"].

    Returns:
      value: the mean of the per-record values, or their max / min for show = "max" / "min"; sd: their
      sample sd (ddof 1; 0 for one record); (lo, hi): the 95% Student-t interval of the mean (n - 1
      degrees of freedom; the mean itself for one record); text: the figure as the README shows it.
    """
    values = value_samples(spec, records)
    n = len(values)
    sd = float(np.std(values, ddof=1)) if n > 1 else 0.0
    show, digits = spec["show"], spec["digits"]
    if show not in ("mean_sd", "mean_ci95", "mean", "max", "min"):
        raise ValueError(f"unknown show {show!r}")
    mean = float(np.mean(values))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 else 0.0
    value = {"max": max(values), "min": min(values)}.get(show, mean)
    scale, sign, unit = (100.0, "+", "%") if spec.get("percent") else (1.0, "", "")
    text = f"{scale * value:{sign}.{digits}f}"
    if show == "mean_sd":
        text += f" ± {scale * sd:.{digits}f}{unit}"
    elif show == "mean_ci95":
        text += f"{unit} [{scale * (mean - half):+.{digits}f}, {scale * (mean + half):+.{digits}f}]"
    else:
        text += unit
    return value, sd, (mean - half, mean + half), text


def _load(path, cache):
    if path not in cache:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            cache[path] = json.load(f)
    return cache[path]


def render_row(row, cache):
    """One table line, and the names its checks are evaluated on (NAME, NAME_sd, NAME_lo, NAME_hi)."""
    names, texts = {}, {}
    for name, spec in row["values"].items():
        value, sd, (lo, hi), text = summary(spec, _load(spec["file"], cache))
        names.update({name: value, f"{name}_sd": sd, f"{name}_lo": lo, f"{name}_hi": hi})
        texts[name] = text
    link = os.path.dirname(row["link"])
    line = f"| {row['paper']} | {row['claim']} | **{row['verdict']}** | {row['figure'].format(**texts)} | "
    return line + f"[{link}]({row['link']}) |", names


def render_table(spec=None):
    """The at-a-glance table as README.md holds it between BEGIN and END."""
    spec = _spec() if spec is None else spec
    cache = {}
    return "\n".join(HEADER + [render_row(row, cache)[0] for row in spec["rows"]])


def test_readme_python_example_runs():
    (example,) = re.findall(r"```python\n(.*?)```", _readme(), re.S)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    assert printed.getvalue().split() == ["392.0"]


def test_readme_quick_start_has_exactly_the_two_commands():
    quick_start = _readme().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick_start, re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["tools/quickstart.sh", "tools/test.sh"]
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "bash tools/test.sh" in ci


def test_at_a_glance_table_is_rendered_from_its_json():
    readme = _readme()
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "the at-a-glance markers"
    table = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = render_table()
    assert table == expected, f"README.md's at-a-glance table differs from docs/at_a_glance.json:\n{expected}"
    # It is the first thing a reader sees: before any other section.
    assert readme.index(BEGIN) < readme.index("\n## Quick start")


def verdict(checks, names):
    """holds if every check is true on the figures, fails if none is, else partly."""
    results = [eval(check, {"__builtins__": {}}, names) for check in checks]
    assert all(isinstance(r, bool) for r in results), (checks, results)
    return "holds" if all(results) else "fails" if not any(results) else "partly"


def test_at_a_glance_verdicts_follow_from_the_figures():
    cache = {}
    for row in _spec()["rows"]:
        assert os.path.exists(os.path.join(ROOT, row["link"])), row["link"]
        _, names = render_row(row, cache)
        # Every value is shown or checked; every placeholder has a value.
        shown = set(re.findall(r"{(\w+)}", row["figure"]))
        checked = {word for check in row["checks"] for word in re.findall(r"\b([a-z]\w*)\b", check)}
        assert set(row["values"]) <= shown | checked, (row["claim"], set(row["values"]) - shown - checked)
        assert shown <= set(row["values"]), row["claim"]
        assert row["verdict"] == verdict(row["checks"], names), (row["claim"], row["checks"], names)


def test_verdict_counts_the_checks():
    names = {"a": 1.0, "b": 2.0}
    assert verdict(["a < b", "a < 2 * b"], names) == "holds"
    assert verdict(["a < b", "a > b"], names) == "partly"
    assert verdict(["a > b"], names) == "fails"


def test_at_a_glance_values_are_computed_as_specified():
    # Synthetic records where the wrong variants differ: a ratio of means vs the mean of per-seed ratios,
    # a population vs a sample sd, pairing by position vs by seed.
    records = [
        {"method": "g2", "rate_bits": 8.0, "seed": 0, "mse": 0.2},
        {"method": "g2", "rate_bits": 8.0, "seed": 1, "mse": 0.9},
        {"method": "g1", "rate_bits": 8.0, "seed": 1, "mse": 0.3},  # seed 1 first: position != seed
        {"method": "g1", "rate_bits": 8.0, "seed": 0, "mse": 0.1},
        {"method": "g1", "rate_bits": 16.0, "seed": 0, "mse": 5.0},
        {"method": "d", "rate_bits": 4.0, "seed": 0, "decomposed_loss": 0.0282, "end_to_end_loss": 0.0270},
        {"method": "d", "rate_bits": 4.0, "seed": 1, "decomposed_loss": 0.0250, "end_to_end_loss": 0.0262},
    ]
    ratio = dict(
        file="x",
        where={"method": "g2", "rate_bits": 8},
        metric="mse",
        n=2,
        show="mean_sd",
        digits=3,
        paired_divide_by={"method": "g1", "rate_bits": 8},
    )
    # Per seed: 0.2 / 0.1 = 2, 0.9 / 0.3 = 3; mean 2.5, sample sd 0.7071 (the ratio of means is 2.75,
    # the population sd 0.5, pairing by position 0.2 / 0.3 and 0.9 / 0.1).
    mean, sd, _, text = summary(ratio, records)
    assert (mean, text) == (2.5, "2.500 ± 0.707")
    assert math.isclose(sd, math.sqrt(0.5), rel_tol=1e-12)
    relative = dict(
        file="x",
        where={"method": "d"},
        metric="decomposed_loss",
        n=2,
        show="mean_sd",
        digits=1,
        over="end_to_end_loss",
        minus_one=True,
        percent=True,
    )
    # 0.0282 / 0.0270 - 1 = +4.444%, 0.0250 / 0.0262 - 1 = -4.580%: mean -0.068%, sd 6.381%.
    assert summary(relative, records)[3] == "-0.1 ± 6.4%"
    extreme = dict(file="x", where={"method": "g1"}, metric="mse", n=3, digits=1)
    assert summary(dict(extreme, show="max"), records)[3] == "5.0"
    assert summary(dict(extreme, show="min"), records)[3] == "0.1"
    # Paired differences (per seed: 0.2 - 0.1 = 0.1, 0.9 - 0.3 = 0.6) and their 95% t-interval: mean 0.35,
    # sd 0.35355, t(0.975, 1 degree of freedom) = 12.7062: 0.35 -+ 12.7062 * 0.35355 / sqrt(2) = 3.1765.
    difference = dict(ratio, show="mean_ci95", paired_subtract=ratio["paired_divide_by"])
    del difference["paired_divide_by"]
    mean, _, (lo, hi), text = summary(difference, records)
    assert math.isclose(mean, 0.35, rel_tol=1e-12)
    assert math.isclose(hi - mean, 12.706204736 * math.sqrt(0.125) / math.sqrt(2), rel_tol=1e-8)
    assert (text, math.isclose(lo + hi, 0.7)) == ("0.350 [-2.827, +3.527]", True)
    with pytest.raises(ValueError, match="2 records, expected 3"):
        value_samples(dict(ratio, n=3), records)
    with pytest.raises(ValueError, match="0 records .* to pair with"):
        value_samples(dict(ratio, paired_divide_by={"method": "g1", "rate_bits": 32}), records)


if __name__ == "__main__":
    sys.stdout.write(f"{BEGIN}\n{render_table()}\n{END}\n")
