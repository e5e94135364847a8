"""Anomaly detection on the field's benchmark protocol for the pediatric chest X-rays (Kermany
et al. 2018, the ZhangLab set): train on the source's normal training films only, test on the
source's test split (234 normal, 390 pneumonia films). Scores are chosen on a validation set
from the source's training side, then the test split is reported once, for every candidate.

    python benchmarks/anomaly_protocol.py [--data ../shared/data/pediatric_cxr_64.npz]
        [--seeds 3] [--work runs/protocol_64] [--only-evaluate] [extra `cxrvae run` options]

1. **Data.** The source's normal training films are split by patient: 85% train the models, 15%
   are validation normals. Validation anomalies are 400 pneumonia training films drawn with a
   fixed seed (normal-only training never uses them). The run's npz holds the training normals
   (``source_split`` train) and the source's test split (``source_split`` test).
2. **Training.** ``cxrvae run <npz> --split source --train-labels normal --seeds N`` with the
   default settings otherwise: one model per latent size and seed, as a user would run it.
3. **Candidates.** For each model, every validation and test image gets every score of
   ``cxrvae score`` (error above the floor, negative ELBO, bits per pixel, 1 - SSIM, the
   code's rarity under a Gaussian mixture of the training codes, and the last two combined),
   the mean squared error of the reconstruction, the KL divergence of q(z|x) from the prior,
   and two more densities of the training codes that the run's analysis saved (its sample of
   up to 1,000): the mean distance to the 5 nearest and the Mahalanobis distance (Ledoit-Wolf
   covariance). Combinations: one of error above the floor, negative ELBO or 1 - SSIM plus one
   of the three densities, each standardised on the validation normals. Each score is also
   averaged over the N seeds (each seed's score standardised on the validation normals
   first): the ensemble.
4. **Choice and report.** The candidate (latent size x score) with the highest validation ROC
   AUC (mean over seeds) is the choice; every candidate's validation AUROC (mean ± SD over
   seeds) and test AUROC are printed, the test AUROC with the 95% bootstrap interval of the
   first seed's model (of the ensemble for an ensemble) and its mean ± SD over the seeds, and
   written to ``protocol.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

from cxrvae import outputs
from cxrvae.analysis import latent as lt
from cxrvae.analysis.atypicality import TrainingDensity, fit_training_density, score_images
from cxrvae.analysis.twosample import auroc
from cxrvae.data.loader import load_npz
from cxrvae.data.split import patient_groups, split_indices
from cxrvae.finished import open_run
from cxrvae.results import SCORES
from cxrvae.seeding import derive_seed
from cxrvae.train.checkpoints import load_model

VAL_FRACTION = 0.15  # of the normal training patients: validation normals
N_VAL_PNEUMONIA = 400  # pneumonia training films drawn as validation anomalies
KNN = 5
PIXEL_SCORES = ("above_floor", "neg_elbo", "ssim_error")  # combined with each of DENSITIES
DENSITIES = ("latent_knn", "mahalanobis", "latent_density")
SEED = 0


def protocol_sets(path: Path) -> dict[str, np.ndarray]:
    """Indices into the source npz: ``fit`` (training normals), ``val_normal``, ``val_pneumonia``,
    ``test_normal``, ``test_pneumonia``."""
    with np.load(path) as f:
        labels, side, ids = f["labels"], f["source_split"].astype(str), f["ids"].astype(str)
    normal_train = np.flatnonzero((side == "train") & (labels == 0))
    groups = patient_groups(ids[normal_train])
    fit, val = split_indices(len(normal_train), None, groups, SEED, VAL_FRACTION)
    pneumonia_train = np.flatnonzero((side == "train") & (labels == 1))
    rng = np.random.default_rng(SEED)
    return {
        "fit": normal_train[fit],
        "val_normal": normal_train[val],
        "val_pneumonia": np.sort(rng.choice(pneumonia_train, N_VAL_PNEUMONIA, replace=False)),
        "test_normal": np.flatnonzero((side == "test") & (labels == 0)),
        "test_pneumonia": np.flatnonzero((side == "test") & (labels == 1)),
    }


def run_images(sets: dict) -> np.ndarray:
    """The run's images, in the source's numbering: the training normals, then the test
    split's normal and pneumonia films."""
    return np.concatenate([sets["fit"], sets["test_normal"], sets["test_pneumonia"]])


def write_run_npz(path: Path, sets: dict, out: Path) -> None:
    """The run's input: the training normals (train) and the source's test split (test)."""
    keep = run_images(sets)
    with np.load(path) as f:
        side = np.where(np.isin(keep, sets["fit"]), "train", "test")
        np.savez(out, images=f["images"][keep], labels=f["labels"][keep],
                 label_names=f["label_names"], ids=f["ids"][keep], source_split=side)  # fmt: skip


def model_folders(run_out: Path, seeds: int) -> list[Path]:
    """The run folder of each seed: the run itself, then repeats/2..."""
    return [run_out] + [outputs.repeat_dir(run_out, r) for r in range(1, seeds)]


@torch.inference_mode()
def candidate_scores(model, data, idx: np.ndarray, density, fit_mu: np.ndarray, seed: int):
    """Every candidate score of the images ``idx`` under ``model``; higher: more atypical."""
    scored = score_images(model, data, idx, seed, density)
    recon = lt.reconstruct(model, data, idx)
    mse = ((data.normalized(idx) - recon) ** 2).reshape(len(idx), -1).mean(1)
    mu, logvar = lt.encode(model, data, idx)
    kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar) - 1 - logvar).sum(1)
    fit64 = fit_mu.astype(np.float64)
    distance, _ = NearestNeighbors(n_neighbors=KNN).fit(fit64).kneighbors(mu.astype(np.float64))
    return {
        **{name: scored.score(name) for name in SCORES},  # what `cxrvae score` computes
        "mse": mse,
        "kl": kl,
        "latent_knn": distance.mean(1),
        "mahalanobis": LedoitWolf().fit(fit64).mahalanobis(mu.astype(np.float64)),
    }


def training_density(model, data, folder: Path, k: int, keep: np.ndarray, seed: int):
    """The run's saved density, or, for a run analysed before it was saved, the same fit the
    analysis makes (its sample's codes, the same seed). ``keep``: the run's images in the
    source's numbering."""
    path = outputs.model_dir(folder, k) / outputs.DENSITY
    if path.exists():
        return TrainingDensity.load(path)
    with np.load(outputs.model_dir(folder, k) / outputs.EMBEDDING) as e:
        sample, mu = e["sample_idx"], e["mu"]
    return fit_training_density(model, data, keep[sample], mu, derive_seed(seed, f"density-{k}"))


def evaluate(source: Path, run_out: Path, sets: dict) -> dict:
    run = open_run(run_out)
    seeds = run.config.train.seeds
    data = load_npz(source, image_size=run.config.data.image_size)
    data = data.normalized_as(run.metrics.data.pixel_range)
    parts = ("val_normal", "val_pneumonia", "test_normal", "test_pneumonia")
    keep = run_images(sets)
    scores = {}  # (k, score) -> seed -> part -> (n,)
    for k in run.latent_dims:
        for r, folder in enumerate(model_folders(run_out, seeds)):
            model = load_model(outputs.model_dir(folder, k) / outputs.WEIGHTS, "cpu")
            # the densities rest on the training means the analysis saved, as `score` does
            with np.load(outputs.model_dir(folder, k) / outputs.EMBEDDING) as e:
                fit_mu = e["mu"]
            density = training_density(model, data, folder, k, keep, run.config.seed)
            for part in parts:
                seed = derive_seed(SEED, part)
                got = candidate_scores(model, data, sets[part], density, fit_mu, seed)
                for name, v in got.items():
                    scores.setdefault((k, name), {}).setdefault(r, {})[part] = v
            print(f"  scored latent {k}, seed {r + 1}", flush=True)
    for k in run.latent_dims:  # a reconstruction score plus a latent density, each standardised
        for a in PIXEL_SCORES:
            for b in DENSITIES:
                scores[(k, f"{a} + {b}")] = {
                    r: {part: _z(scores[(k, a)][r], part) + _z(scores[(k, b)][r], part)
                        for part in parts}
                    for r in scores[(k, a)]
                }  # fmt: skip
    results = []
    for (k, name), by_seed in scores.items():
        results.append(_result(k, name, by_seed, seeds))
    if seeds > 1:  # each score standardised on the validation normals, averaged over seeds
        for (k, name), by_seed in list(scores.items()):
            mean = {part: np.mean([_z(by_seed[r], part) for r in by_seed], 0) for part in parts}
            results.append(_result(k, f"{name} (ensemble of {seeds})", {0: mean}, 1))
    return {"results": results, "seeds": seeds, "latent_dims": run.latent_dims}


def _z(by_part: dict, part: str) -> np.ndarray:
    """A score of ``part`` standardised on the validation normals' scores."""
    ref = by_part["val_normal"]
    return (by_part[part] - ref.mean()) / (ref.std() + 1e-12)


def _result(k: int, name: str, by_seed: dict, seeds: int) -> dict:
    out = {"latent_dim": k, "score": name}
    for side in ("val", "test"):
        aucs = [auroc(s[f"{side}_normal"], s[f"{side}_pneumonia"], SEED) for s in by_seed.values()]
        values = [a.value for a in aucs]
        out[side] = {
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "per_seed": values,
            "first": {"value": aucs[0].value, "low": aucs[0].low, "high": aucs[0].high},
        }
    return out


def table(results: list[dict], chosen: dict) -> str:
    rows = ["| latent | score | validation AUROC | test AUROC [95% CI] | test, every seed |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in sorted(results, key=lambda r: -r["val"]["mean"]):
        v, t = r["val"], r["test"]
        spread = f"{t['mean']:.3f} ± {t['sd']:.3f}" if t["sd"] is not None else "-"
        mark = " **(chosen)**" if r is chosen else ""
        val = f"{v['mean']:.3f}" + (f" ± {v['sd']:.3f}" if v["sd"] is not None else "")
        first = t["first"]
        rows.append(
            f"| {r['latent_dim']} | {r['score']}{mark} | {val} | {first['value']:.3f} "
            f"[{first['low']:.3f}, {first['high']:.3f}] | {spread} |"
        )
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/pediatric_cxr_64.npz"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--work", type=Path, default=None, help="default: runs/protocol_<size>")
    p.add_argument("--only-evaluate", action="store_true", help="reuse the trained run")
    args, extra = p.parse_known_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (the pediatric set of ../shared/data)")
    work = args.work or Path("runs") / f"protocol_{args.data.stem.rsplit('_', 1)[-1]}"
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs")
    sets = protocol_sets(args.data)
    print("sets: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()), flush=True)
    run_out, npz = work / "run", work / "protocol.npz"
    start = time.perf_counter()
    if not args.only_evaluate:
        write_run_npz(args.data, sets, npz)
        cmd = [sys.executable, "-m", "cxrvae", "run", str(npz), "--out", str(run_out),
               "--split", "source", "--train-labels", "normal", "--seeds", str(args.seeds),
               "--overwrite", *extra]  # fmt: skip
        print("$ " + " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    trained = time.perf_counter()
    result = evaluate(args.data, run_out, sets)
    done = time.perf_counter()
    chosen = max(result["results"], key=lambda r: r["val"]["mean"])
    result |= {
        "sets": {k: int(len(v)) for k, v in sets.items()},
        "chosen": {"latent_dim": chosen["latent_dim"], "score": chosen["score"]},
        "seconds": {"run": round(trained - start, 1), "evaluate": round(done - trained, 1)},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    (work / "protocol.json").write_text(json.dumps(result, indent=1))
    print(table(result["results"], chosen))
    print(f"chosen on validation: latent {chosen['latent_dim']}, {chosen['score']}")
    print(f"run {trained - start:.0f} s, evaluation {done - trained:.0f} s")


if __name__ == "__main__":
    main()
