#!/usr/bin/env python
"""Collects the DPLC runs of results/dplc/reproduce.sh into results files, plots and tables.

Reads WORKDIRS/sweeps/<name>-seed<S>/results.json (tools/sweep.py outputs: cae, dplc-gc, gstar) and
WORKDIRS/seed<S>/<generator>_mnist5k/metrics.json (stage 1), and writes
  OUTPUT/results.json         one record per (method, K, seed) of the rate sweeps, with `seed`,
  OUTPUT/stage1.json          one record per (generator, seed),
  OUTPUT/rate_{mse,fd,pv}.png mean ± sd over seeds per method (DPLC Figure 3 style),
  OUTPUT/decodes.png          seed 0: one test digit, stochastic decodes per rate and method (Figure 1),
  OUTPUT/tables.md            the tables (mean ± sd (n)) and each claim of the paper checked on them.

Training budgets (DESIGN.md "Budgets"): every record gets the images its networks' updates saw, computed
from the run's config (`record_budget`): `generator_images`, the images in the updates of the generator
that decodes (for DPLC: its G*, trained in stage 1), and `encoder_images`, in the updates of the encoder E
(F for stage 1). For objectives whose step reads n_critic critic mini-batches and updates the generator
on one of them (Algorithm 1: GC, Wasserstein++, WGAN-GP), that is steps x batch / n_critic; for the others
steps x batch.
"""

import argparse
import glob
import inspect
import json
import os

from tfdplc import plots, results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATORS = ("wpp", "wae", "wgan_gp")
SWEEP_METHODS = ("cae", "dplc-wpp", "gc", "dplc-wae", "dplc-wgan_gp")
# Objectives whose train step reads n_critic mini-batches of b images (input batch n_critic * b) and
# updates the generator (and encoder) on one of them, once per step.
SPLIT_BATCH_OBJECTIVES = ("GC", "WassersteinPP", "WGANGP")
# Objectives without an encoder E / F that is trained.
NO_ENCODER_OBJECTIVES = ("WGANGP",)
_SEARCH_PATH = []  # [ROOT] once gin looks up config files there too


def training_budget(config_files, bindings=()):
    """Steps, mini-batch and images seen by the trained networks, from a gin config (parsed, not run).

    Args:
      config_files: gin files (a workdir's config.gin, or a config of gin/ with `bindings`); relative
        paths and `include`s are looked up in the working directory, then the repository root.
      bindings: gin bindings applied after the files.

    Returns:
      A dict: objective (class name), steps (train.total_steps), batch (images per updated mini-batch:
      input_pipeline.batch_size / n_critic for `SPLIT_BATCH_OBJECTIVES`), n_critic (None where it does
      not apply), images (steps x batch: what one generator update per step saw in all).

    Raises:
      tfdplc.train.config.GinConfigError: on a config that does not parse.
      ValueError: if steps or the batch size is unbound, or the batch is not a multiple of n_critic.
    """
    import gin

    from tfdplc.train.config import bound_value, parse_gin

    if not _SEARCH_PATH:
        gin.add_config_file_search_path(ROOT)
        _SEARCH_PATH.append(ROOT)
    gin.clear_config()
    files = [f if os.path.isabs(f) or os.path.exists(f) else os.path.join(ROOT, f) for f in config_files]
    parse_gin(files, bindings)
    objective = bound_value("build_objective.objective").configurable.wrapped
    name = objective.__name__
    steps, input_batch = bound_value("train.total_steps"), bound_value("input_pipeline.batch_size")
    if steps is None or input_batch is None:
        raise ValueError(f"{config_files}: train.total_steps and input_pipeline.batch_size must be bound.")
    n_critic = None
    batch = input_batch
    if name in SPLIT_BATCH_OBJECTIVES:
        n_critic = bound_value(f"{name}.n_critic")
        if n_critic is None:
            n_critic = inspect.signature(objective.__init__).parameters["n_critic"].default
        if input_batch % n_critic:
            raise ValueError(f"{config_files}: batch {input_batch} is not a multiple of n_critic {n_critic}.")
        batch = input_batch // n_critic
    gin.clear_config()
    return {"objective": name, "steps": steps, "batch": batch, "n_critic": n_critic, "images": steps * batch}


def _run_config(workdirs, workdir, fallback, bindings):
    """([config files], bindings, source): the workdir's config.gin when it exists, else `fallback`."""
    saved = os.path.join(workdirs, workdir, "config.gin") if workdir else None
    if saved and os.path.exists(saved):
        return [saved], [], "workdir config.gin"
    return (
        [fallback],
        list(bindings),
        f"{fallback} (the workdir is gone; sweep bindings other than K not recorded)",
    )


def record_budget(record, workdirs):
    """The budget fields of one sweep or stage-1 record (module docstring), read from its config.

    Sweep records name their config and K; stage-1 records their generator. DPLC records (method
    dplc-<generator>) take `generator_images` from their seed's stage-1 run of that generator.

    Returns:
      A dict with generator_images, encoder_images, budget_steps, budget_batch, budget_source.
    """
    if "generator" in record:  # stage 1
        files, bindings, source = _run_config(
            workdirs, record.get("workdir"), f"gin/{record['generator']}_mnist5k.gin", []
        )
    else:
        files, bindings, source = _run_config(
            workdirs, record.get("workdir"), record["config"], [f"K = {record['k']}"]
        )
    budget = training_budget(files, bindings)
    out = {
        "budget_steps": budget["steps"],
        "budget_batch": budget["batch"],
        "generator_images": budget["images"],
        "encoder_images": None if budget["objective"] in NO_ENCODER_OBJECTIVES else budget["images"],
        "budget_source": source,
    }
    if budget["objective"] == "DPLC":
        generator = record["method"].split("-", 1)[1]
        stage1 = os.path.join(f"seed{record['seed']}", f"{generator}_mnist5k")
        files, bindings, source = _run_config(workdirs, stage1, f"gin/{generator}_mnist5k.gin", [])
        out["generator_images"] = training_budget(files, bindings)["images"]
        out["budget_source"] += f"; G*: {source}"
    return out


def images_cell(runs, key):
    """The distinct values of `key` over runs in thousands of images ('117k'), '-' when none has it."""
    values = sorted({r[key] for r in runs if r.get(key) is not None})
    return " / ".join(f"{v / 1000:.0f}k" for v in values) or "-"


def load_stage1(workdirs):
    """The stage-1 records WORKDIRS/seed<S>/<generator>_mnist5k/metrics.json, with `generator` and `seed`."""
    records = []
    for path in sorted(glob.glob(os.path.join(workdirs, "seed*", "*_mnist5k", "metrics.json"))):
        generator = os.path.basename(os.path.dirname(path))[: -len("_mnist5k")]
        if generator not in GENERATORS:
            continue
        seed = results.folder_seed(os.path.dirname(os.path.dirname(path)))
        if seed is None:  # not a seed folder
            continue
        with open(path) as f:
            (record,) = json.load(f)
        records.append(dict(record, generator=generator, seed=seed))
    return records


def bits(record):
    """The record's rate in whole bits per image."""
    return int(round(record["rate_bits"]))


def cell(runs, key, digits):
    """Mean ± sd (n) of `key` over `runs`, or '-' when no run has it."""
    return results.format_mean_sd(results.summarize(runs, key), digits)


def mean(runs, key):
    """The mean of `key` over runs (None when absent)."""
    summary = results.summarize(runs, key)
    return None if summary is None else summary.mean


def sweep_table(records):
    """Per method and rate: MSE, FD, KD, PV, training seconds, mean ± sd over seeds."""
    groups = results.group_records(records, ("method", bits))
    lines = [
        "## Rate sweep, mean ± sd over seeds (n runs); FD / KD on the digit classifier's features",
        "",
        "| method | bits | bpp | G images | E images | test MSE | FD | KD | PV | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {m: i for i, m in enumerate(SWEEP_METHODS)}
    for method, b in sorted(groups, key=lambda key: (order.get(key[0], 99), key[0], key[1])):
        runs = groups[(method, b)]
        lines.append(
            f"| {method} | {b} | {b / 1024:.4f} | {images_cell(runs, 'generator_images')} | "
            f"{images_cell(runs, 'encoder_images')} | {cell(runs, 'mse', 4)} | {cell(runs, 'fd', 1)} | "
            f"{cell(runs, 'kd', 1)} | {cell(runs, 'pv', 4)} | {cell(runs, 'train_wall_s', 0)} |"
        )
    lines += [
        "",
        "G images: images in the updates of the generator that decodes (DPLC: its G*, in stage 1); E images: "
        "in the updates of the encoder E (record_budget).",
    ]
    return lines + [""]


def stage1_table(records):
    """Per generator: reconstruction MSE / FD (G(F(x))) and sample FD / KD (G(z)), mean ± sd over seeds."""
    groups = results.group_records(records, ("generator",))
    lines = [
        "## Stage-1 generators (Table 1 style), mean ± sd over seeds (n runs)",
        "",
        "| generator | G images | recon. MSE | recon. FD | sample FD | sample KD |",
        "|---|---|---|---|---|---|",
    ]
    for generator in GENERATORS:
        runs = groups.get((generator,))
        if runs:
            lines.append(
                f"| {generator} | {images_cell(runs, 'generator_images')} | {cell(runs, 'mse', 4)} | "
                f"{cell(runs, 'fd', 1)} | "
                f"{cell(runs, 'sample_fd', 1)} | {cell(runs, 'sample_kd', 1)} |"
            )
    return lines + [""]


def claims(records, stage1):
    """Each claim of the paper, checked on the means (the verdicts are computed, not written by hand)."""
    by_rate = {}
    for (method, b), runs in results.group_records(records, ("method", bits)).items():
        by_rate.setdefault(method, {})[b] = runs
    lines = ["## The paper's claims, checked on these means", ""]

    def verdict(ok):
        return "holds" if ok else "fails"

    dplc = by_rate.get("dplc-wpp", {})
    if len(dplc) > 1:
        rates = sorted(dplc)
        pv = [mean(dplc[b], "pv") for b in rates]
        falls = all(a > b for a, b in zip(pv, pv[1:]))
        lines.append(
            f"- DPLC's PV rises as the rate falls — {verdict(falls)}: "
            + ", ".join(f"{b} bits {p:.4f}" for b, p in zip(rates, pv))
            + "."
        )
        fd = [mean(dplc[b], "fd") for b in rates]
        lines.append(
            f"- DPLC's reconstruction FD falls as the rate rises — {verdict(all(a > b for a, b in zip(fd, fd[1:])))}: "
            + ", ".join(f"{b} bits {f:.1f}" for b, f in zip(rates, fd))
            + "."
        )
    gc = by_rate.get("gc", {})
    if 0 in gc and 0 in dplc:
        ratio = mean(gc[0], "pv") / max(mean(dplc[0], "pv"), 1e-12)
        lines.append(
            f"- GC's PV at 0 bits is comparable to DPLC's (within 2x) — {verdict(0.5 <= ratio <= 2)}: "
            f"{mean(gc[0], 'pv'):.4f} vs {mean(dplc[0], 'pv'):.4f} (ratio {ratio:.2f})."
        )
    above = sorted(b for b in gc if b > 0)
    if above and 0 in dplc:
        worst = max(mean(gc[b], "pv") for b in above)
        near_zero = worst < 0.1 * mean(dplc[0], "pv")
        lines.append(
            f"- GC's PV is about 0 above 0 bits (here: below a tenth of DPLC's PV at 0 bits) — "
            f"{verdict(near_zero)}: at most {worst:.4f} at {', '.join(map(str, above))} bits."
        )
    shared = sorted(set(gc) & set(dplc))
    if shared:
        parts = [
            f"{b} bits MSE x{mean(gc[b], 'mse') / mean(dplc[b], 'mse'):.2f}, FD x{mean(gc[b], 'fd') / mean(dplc[b], 'fd'):.2f}"
            for b in shared
        ]
        lines.append(
            "- GC's MSE and FD against DPLC-W++'s (GC / DPLC, comparable in the paper): "
            + "; ".join(parts)
            + "."
        )
    generators = {g: runs for (g,), runs in results.group_records(stage1, ("generator",)).items()}
    if "wpp" in generators and "wae" in generators:
        wpp, wae = generators["wpp"], generators["wae"]
        lines.append(
            f"- Wasserstein++'s sample FD is below WAE's (Table 1) — "
            f"{verdict(mean(wpp, 'sample_fd') < mean(wae, 'sample_fd'))}: "
            f"{cell(wpp, 'sample_fd', 1)} vs {cell(wae, 'sample_fd', 1)}."
        )
        lines.append(
            f"- Wasserstein++'s reconstruction FD is below WAE's and its MSE above (Table 1) — "
            f"{verdict(mean(wpp, 'fd') < mean(wae, 'fd') and mean(wpp, 'mse') > mean(wae, 'mse'))}: "
            f"FD {cell(wpp, 'fd', 1)} vs {cell(wae, 'fd', 1)}, MSE {cell(wpp, 'mse', 4)} vs {cell(wae, 'mse', 4)}."
        )
    if "wpp" in generators and "wgan_gp" in generators:
        lines.append(
            f"- Wasserstein++'s sample FD is slightly above WGAN-GP's (Table 1): "
            f"{cell(generators['wpp'], 'sample_fd', 1)} vs {cell(generators['wgan_gp'], 'sample_fd', 1)}."
        )
    others = [m for m in ("dplc-wae", "dplc-wgan_gp") if m in by_rate]
    for b in sorted(set(dplc).intersection(*(by_rate[m] for m in others)) if others else []):
        fds = {m: mean(by_rate[m][b], "fd") for m in ["dplc-wpp", *others]}
        lowest = min(fds, key=fds.get)
        lines.append(
            f"- {b} bits: DPLC-W++ has the lowest reconstruction FD of the DPLC models (Fig. 3) — "
            f"{verdict(lowest == 'dplc-wpp')}: " + ", ".join(f"{m} {v:.1f}" for m, v in fds.items()) + "."
        )
    return lines + [""]


def main():
    """Merges the runs, writes results.json, stage1.json, the plots and tables.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdirs", required=True, help="The WORKDIRS folder of reproduce.sh.")
    parser.add_argument("--output", default="results/dplc", help="Where the files go.")
    args = parser.parse_args()

    records = results.load_seeded_sweeps(os.path.join(args.workdirs, "sweeps"))
    stage1 = load_stage1(args.workdirs)
    if not records and not stage1:
        raise SystemExit(f"No sweeps or stage-1 metrics under {args.workdirs!r}.")
    workdirs = os.path.abspath(args.workdirs)
    for record in records + stage1:  # paths relative to the workdirs folder, not this machine's layout
        if os.path.abspath(record["workdir"]).startswith(workdirs + os.sep):
            record["workdir"] = os.path.relpath(record["workdir"], workdirs)
        record.update(record_budget(record, workdirs))
    os.makedirs(args.output, exist_ok=True)
    for name, subset in (("results.json", records), ("stage1.json", stage1)):
        with open(os.path.join(args.output, name), "w") as f:
            json.dump(subset, f, indent=2)
    for path in plots.rate_plots(records, args.output):
        print(f"[tables] wrote {path}")
    # Seed 0's decodes, read from its workdirs (absent when the workdirs were not kept: no grid then).
    with_decodes = [r for r in records if r["seed"] == 0 and os.path.exists(r.get("decodes_file", ""))]
    grid = plots.decode_grid(with_decodes, os.path.join(args.output, "decodes.png"))
    if grid:
        print(f"[tables] wrote {grid}")
    lines = [
        "# DPLC on mnist5k (CPU scale): tables",
        "",
        "Written by results/dplc/tables.py from results.json and stage1.json (results/dplc/reproduce.sh).",
        "",
    ]
    lines += sweep_table(records) + stage1_table(stage1) + claims(records, stage1)
    with open(os.path.join(args.output, "tables.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
