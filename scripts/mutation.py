"""Mutation testing of cxrvae's core: how many deliberate mistakes the unit tests catch.

Runs mutmut (``pip install mutmut``) on each module of ``MODULES`` (the loss and KL, the split,
the statistics behind the report's claims, the scores of new images, the npz and array
readers) against the fast unit tests of that module, then prints killed / survived per module.
A surviving mutant is a change to the code that no test notices: it is killed by a test that
asserts what it breaks, or listed in ``EQUIVALENT`` below with the reason it cannot change any
result.

    python scripts/mutation.py                        # every module
    python scripts/mutation.py cxrvae/data/split.py   # one module
    python scripts/mutation.py --report               # the last results again, without running

Each module runs in a copy of the source and tests of its own, ``.mutation/<module>/`` (ignored
by git), where mutmut keeps its results and reruns only what changed since. Exit status 0 when
every module has at least ``--min-score`` (85%) of its mutants caught and every survivor is
listed as equivalent, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"

# Each module, and the unit tests that should catch its mistakes
MODULES = {
    "cxrvae/train/model.py": ["tests/train/test_model.py"],
    "cxrvae/data/split.py": ["tests/data/test_split.py"],
    "cxrvae/data/features.py": ["tests/data/test_features.py"],
    "cxrvae/analysis/twosample.py": ["tests/analysis/test_twosample.py"],
    "cxrvae/analysis/atypicality.py": ["tests/analysis/test_atypicality.py"],
    "cxrvae/score/images.py": ["tests/score/test_images.py"],
    "cxrvae/data/layouts.py": ["tests/data/test_layouts.py", "tests/data/test_npz_refusals.py"],
    "cxrvae/data/npz.py": ["tests/data/test_npz.py", "tests/data/test_npz_refusals.py"],
}
SETTINGS = """
[tool.mutmut]
source_paths = ["src/cxrvae"]
only_mutate = ["src/{module}"]
pytest_add_cli_args = ["-n", "0", "-p", "no:cacheprovider"]
pytest_add_cli_args_test_selection = {tests}
process_isolation = "forkserver"  # forked from a process that ran torch, the tests hang
"""

# Reasons that hold for mutants in several modules.
FLOAT64_DEFAULT = (
    "astype(None) for astype(np.float64): NumPy's default dtype is float64, the same array"
)
NEGATIVE_SIZE = "reshape(-2) for reshape(-1): NumPy reads any negative size as the one to infer"

# Mutants that change no result, by name (``mutmut show NAME`` prints the change), and why.
EQUIVALENT = {
    "cxrvae.train.model.xǁConvVAEǁ__init____mutmut_10": (
        "image_size / factor < 1 for image_size // factor < 1: only reached when image_size is "
        "a multiple of factor, where both are false for every positive size"
    ),
    "cxrvae.train.model.xǁConvVAEǁreparameterize__mutmut_1": (
        "mu - sigma * eps for mu + sigma * eps: eps ~ N(0, I) is symmetric, so z has the same "
        "distribution (only the draw for one seed differs)"
    ),
    **dict.fromkeys(
        [f"cxrvae.data.split.x_identical_images__mutmut_{i}" for i in (7, 9)],
        "another digest size: any collision-resistant digest finds the same identical images",
    ),
    **dict.fromkeys(
        [f"cxrvae.data.split.x_join_identical__mutmut_{i}" for i in (9, 11, 12)],
        "group keys of another dtype: the groups are only compared for equality",
    ),
    **dict.fromkeys(
        [f"cxrvae.data.split.x_split_indices__mutmut_{i}" for i in (16, 18, 40)],
        "the number of groups when there are none: only read when groups are given",
    ),
    **dict.fromkeys(
        [f"cxrvae.data.split.x_split_indices__mutmut_{i}" for i in (29, 32, 76, 79)],
        "more splits drawn: only the first is taken, and scikit-learn draws it the same way",
    ),
    "cxrvae.data.split.x_split_indices__mutmut_35": (
        "GroupShuffleSplit.split(None, groups=...): the groups alone give the number of images"
    ),
    **dict.fromkeys(
        [f"cxrvae.data.split.x_split_indices__mutmut_{i}" for i in (48, 50)],
        "float zeros as the labels of a set without labels: one class either way",
    ),
    **dict.fromkeys(
        [
            "cxrvae.analysis.twosample.x__mmd2__mutmut_2",
            "cxrvae.analysis.twosample.x_classifier_test__mutmut_2",
        ],
        FLOAT64_DEFAULT,
    ),  # fmt: skip
    **dict.fromkeys(
        [f"cxrvae.analysis.twosample.x_auroc__mutmut_{i}" for i in (3, 5, 7, 9)],
        "scores left in their own numeric dtype: ranks and resampled indices do not depend on it",
    ),
    "cxrvae.analysis.twosample.x__subset__mutmut_7": (
        "replace=None for replace=False: numpy's Generator.choice reads it as false, drawing "
        "without replacement all the same"
    ),
    "cxrvae.analysis.twosample.x_classifier_test__mutmut_5": (
        "float labels 0.0 / 1.0 for integer ones: the classifier, the folds and the masks y == 0 "
        "treat them alike"
    ),
    "cxrvae.analysis.twosample.x_classifier_test__mutmut_49": (
        "max_iter 2001 for 2000: lbfgs stops at its tolerance long before either limit"
    ),
    **dict.fromkeys(
        [f"cxrvae.score.images.x__nearest__mutmut_{i}" for i in (17, 20)],
        FLOAT64_DEFAULT,
    ),
    **dict.fromkeys(
        [f"cxrvae.score.images.x_score_with_model__mutmut_{i}" for i in (52, 59, 60)],
        "another PCA seed: the PCA of all components takes an exact solver, which reads no seed",
    ),
    "cxrvae.score.images.x_score_with_model__mutmut_64": (
        "weights 2 / distance for 1 / distance: the weights are divided by their sum"
    ),
    **dict.fromkeys(
        [f"cxrvae.data.features.x__box__mutmut_{i}" for i in (11, 13)],
        "the at-least-one-row guard: the lung rows span 45% of the height, so they hold a row "
        "of their own for any image of 2 px or more, which the gradient needs anyway",
    ),
    "cxrvae.data.features.x_cohens_d__mutmut_4": (
        "a one-image group measured anyway: its variance (ddof 1) is NaN, and the pooled > 0 "
        "test returns 0 for a NaN pooled SD too"
    ),
    "cxrvae.analysis.twosample.x_classifier_test__mutmut_52": (
        "groups passed with ungrouped folds too: StratifiedKFold ignores groups"
    ),
    **dict.fromkeys(
        [f"cxrvae.data.npz.x__open_npz__mutmut_{i}" for i in (13, 16, 19, 38, 40, 41)],
        "allow_pickle dropped, None or True: an array whose header holds Python objects is "
        "refused from that header (_check_sizes) before np.load is asked to read it",
    ),
    "cxrvae.data.npz.x__check_sizes__mutmut_45": (
        "max(compress_size, 2) for max(compress_size, 1): a deflate stream is at least 2 bytes "
        "long, so both are the compressed size"
    ),
    "cxrvae.data.npz.x__stream_into_one__mutmut_43": (
        "a signed-byte view of the same memory: readinto copies the same bytes into it"
    ),
    "cxrvae.data.npz.x__stream_into_one__mutmut_59": (
        "the message of an EOFError that cannot happen: _check_sizes has refused a member whose "
        "stated size is short of what its header declares, and zipfile raises its own EOFError "
        "when the bytes end before the stated size"
    ),
    "cxrvae.data.npz.x__per_image_arrays__mutmut_31": NEGATIVE_SIZE,
    "cxrvae.data.npz.x__per_image_arrays__mutmut_32": (
        "an empty split for no split: its length 0 matches no image count (an empty image array "
        "is refused first), so _matching drops it as it drops None"
    ),
    **dict.fromkeys(
        [
            f"cxrvae.score.images.x_{f}__mutmut_{i}"
            for f in ("conformal_pvalues", "flags")
            for i in (4, 6)
        ],
        "the reference left in its own numeric dtype: sorting and searchsorted compare the same "
        "values",
    ),
    "cxrvae.score.images.x_flags__mutmut_30": (
        'float("INF") for float("inf"): Python reads either as infinity'
    ),
    "cxrvae.score.images.x_conformal_pvalues__mutmut_14": (
        "side='left' dropped: it is searchsorted's default"
    ),
    **dict.fromkeys(
        [f"cxrvae.analysis.atypicality.x__mixture_rarity__mutmut_{i}" for i in (3, 5)],
        "the codes left in their own dtype: scipy's logpdf computes in float64 either way",
    ),
    **dict.fromkeys(
        [f"cxrvae.analysis.atypicality.x__mixture_rarity__mutmut_{i}" for i in (16, 19, 20)],
        "allow_singular dropped, None or False: every covariance carries reg_covar (1e-4) on its "
        "diagonal, so none is singular",
    ),
    "cxrvae.analysis.atypicality.x__mixture_rarity__mutmut_22": NEGATIVE_SIZE,
    "cxrvae.analysis.atypicality.x_fit_training_density__mutmut_25": (
        "covariance_type='full' dropped: it is GaussianMixture's default"
    ),
    **dict.fromkeys(
        [f"cxrvae.analysis.atypicality.x_structural_error__mutmut_{i}" for i in (2, 4)],
        "dtype=np.float64 dropped or None: an array of Python floats is float64 anyway",
    ),
    "cxrvae.data.layouts.x__why_not__mutmut_6": (
        "<= 16 px for < 16 px: a stack (N, H, W) whose smaller side is 16 px is read as images "
        "(nhw), so it never needs to be told why not"
    ),
    "cxrvae.data.layouts.x_to_images__mutmut_30": (
        "channel axis 2 for 1 after stacking: _gray reads every axis but -1 as channels first"
    ),
    "cxrvae.data.layouts.x__gray__mutmut_33": (
        "shape[2:5] for shape[2:4] of a 4-dimensional stack: the same two sides"
    ),
    "cxrvae.data.layouts.x__gray__mutmut_60": FLOAT64_DEFAULT,
    **dict.fromkeys(
        [f"cxrvae.data.npz.x__findings__mutmut_{i}" for i in (35, 37)],
        "the dtype of the names array: each name goes into an object array as the same string",
    ),
}


def module_of(mutant: str) -> str:
    """``cxrvae.train.model.x_vae_loss__mutmut_3`` -> ``cxrvae.train.model``."""
    return re.sub(r"\.x[_ǁ].*$", "", mutant)


def prepare(module: str) -> Path:
    """The module's own copy of the source and tests, with mutmut's settings for it."""
    folder = WORK / module.replace("/", "_").removesuffix(".py")
    folder.mkdir(parents=True, exist_ok=True)
    # mutmut reruns a mutant when its function changed, not when the tests did: after a change
    # to the module or its tests, every mutant runs again
    watched = [f"src/{module}", *MODULES[module]]
    if any(not (folder / f).exists() or (folder / f).read_bytes() != (ROOT / f).read_bytes()
           for f in watched):  # fmt: skip
        shutil.rmtree(folder / "mutants", ignore_errors=True)
    for name in ("src", "tests"):
        shutil.copytree(ROOT / name, folder / name, dirs_exist_ok=True)
    project = (ROOT / "pyproject.toml").read_text()
    tests = "[" + ", ".join(f'"{t}"' for t in MODULES[module]) + "]"
    (folder / "pyproject.toml").write_text(project + SETTINGS.format(module=module, tests=tests))
    return folder


def run(module: str) -> None:
    folder = prepare(module)
    with open(folder / "run.log", "w") as log:  # mutmut draws a progress bar: kept out
        done = subprocess.run(["mutmut", "run"], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"mutation.py: mutmut run failed for {module}; see {folder / 'run.log'}")


def results(module: str) -> dict[str, str]:
    """Every mutant of the module's last run and its status (killed, survived, timeout...)."""
    folder = WORK / module.replace("/", "_").removesuffix(".py")
    if not (folder / "mutants").exists():
        return {}
    done = subprocess.run(
        ["mutmut", "results", "--all", "true"], cwd=folder, capture_output=True, text=True
    )
    found = {}
    for line in done.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status
    return found


def report(found: dict[str, str], min_score: float) -> bool:
    """Print killed / survived per module and the unexplained survivors; whether all is well."""
    by_module: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, status in found.items():
        by_module[module_of(name)][status].append(name)
    ok = True
    print(f"{'module':34} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>6}")
    for module in sorted(by_module):
        s = by_module[module]
        total = sum(len(v) for v in s.values())
        caught = len(s["killed"]) + len(s["timeout"])  # a mutant that hangs the tests is caught
        equivalent = [n for n in s["survived"] if n in EQUIVALENT]
        survived = [n for n in s["survived"] if n not in EQUIVALENT]
        others = total - caught - len(s["survived"])  # no tests, suspicious, skipped...
        score = caught / max(total - len(equivalent), 1)
        ok &= score >= min_score and not survived and not others
        print(
            f"{module:34} {total:7d} {caught:7d} {len(equivalent):7d} {len(survived):8d} "
            f"{100 * score:5.1f}%" + (f"  ({others} not run or suspicious)" if others else "")
        )
    unexplained = sorted(n for n, st in found.items() if st != "killed" and st != "timeout")
    unexplained = [n for n in unexplained if n not in EQUIVALENT]
    if unexplained:
        print(f"\n{len(unexplained)} mutants no test caught (mutmut show NAME prints each):")
        for name in unexplained:
            print(f"  {name}: {found[name]}")
    print("\nequivalent mutants (they change no result):")
    for name, why in EQUIVALENT.items():
        print(f"  {name}: {why}")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", help="modules to test (default: all), e.g. "
                   "cxrvae/data/split.py")  # fmt: skip
    p.add_argument("--report", action="store_true", help="print the last results only")
    p.add_argument("--min-score", type=float, default=0.85, help="least share caught per module")
    args = p.parse_args()
    modules = args.modules or list(MODULES)
    for module in modules:
        if module not in MODULES:
            sys.exit(f"mutation.py: {module} is not one of {', '.join(MODULES)}")
        if not args.report:
            print(f"mutating {module} ...", flush=True)
            run(module)
    found = {k: v for m in modules for k, v in results(m).items()}
    sys.exit(0 if report(found, args.min_score) else 1)


if __name__ == "__main__":
    main()
