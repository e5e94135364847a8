"""Check that two versions of cxrvae give the same outputs for the same command.

Runs one ``cxrvae`` command with the code of a git revision (``--base``, checked out in a
temporary worktree) and with the code of this checkout, each into its own run folder, then
compares what they wrote:

- ``latent_<k>/history.csv``: every column but ``seconds``, byte for byte;
- ``metrics.json``: the JSON text with the timings left out (``timings`` and each model's
  ``train_seconds``), byte for byte, key order included;
- ``latent_<k>/model.safetensors`` and every figure (``.png``): byte for byte;
- ``split.npz``: the same arrays, names, dtypes and values (an npz's zip entries also hold the
  time they were written, so its bytes differ between any two runs);

and, for information, every other file the two runs have in common (the other npz arrays, the
report without its build time). Exit status 0 when every required file is identical and both
runs wrote the same required files, 1 otherwise.

    python scripts/same_outputs.py --base c23ff7a -- \\
        run ../shared/data/pediatric_cxr_64.npz --epochs 3 --max-steps 30 --n-samples 300

A cached base run can be reused with ``--base-run DIR`` (a folder the base wrote before).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = ("timings", "train_seconds")
PYTHONPATH = os.environ.get("PYTHONPATH", "")


def cxrvae_argv(src: Path, args: list[str]) -> list[str]:
    """The command line that runs ``cxrvae ARGS`` with the package in ``src`` (a checkout's or
    a revision's ``src`` folder) rather than the installed one."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from cxrvae.cli import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    return [sys.executable, "-c", code, str(src), *map(str, args)]


@contextlib.contextmanager
def revision_src(rev: str):
    """The ``src`` folder of git revision ``rev``, checked out in a temporary worktree."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            yield tree / "src"
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])


def run_cxrvae(src: Path, args: list[str], out: Path) -> float:
    """Run ``cxrvae ARGS --out OUT -q`` with the package in ``src``; seconds taken."""
    start = time.perf_counter()
    # On PYTHONPATH too, for the workers' server: before it took the command's own package, it
    # imported the installed one, so an older revision's workers ran this checkout's code.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), PYTHONPATH]))}
    subprocess.run(cxrvae_argv(src, [*args, "--out", out, "-q"]), check=True, env=env)
    return time.perf_counter() - start


def _drop_timings(obj):
    if isinstance(obj, dict):
        return {k: _drop_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_drop_timings(v) for v in obj]
    return obj


def metrics_text(path: Path) -> str:
    return json.dumps(_drop_timings(json.loads(path.read_text())), indent=2)


def json_differences(a, b, where="") -> list[str]:
    """Paths (``models.4.analysis.n_clusters``) where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}{k} (only in base)" for k in a if k not in b]
        out += [f"{where}{k} (only in head)" for k in b if k not in a]
        for k in a:
            if k in b:
                out += json_differences(a[k], b[k], f"{where}{k}.")
        if not out and list(a) != list(b):
            out.append(f"{where} (key order)")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b)) for d in json_differences(x, y, f"{where}{i}.")
        ]
    return [] if a == b and type(a) is type(b) else [where.rstrip(".")]


def history_text(path: Path) -> str:
    lines = path.read_text().splitlines()
    col = lines[0].split(",").index("seconds")
    return "\n".join(",".join(c for i, c in enumerate(r.split(",")) if i != col) for r in lines)


def same_npz(a: Path, b: Path) -> bool:
    """The same arrays under the same names, of the same dtypes and values."""
    with np.load(a) as fa, np.load(b) as fb:
        return fa.files == fb.files and all(
            fa[k].dtype == fb[k].dtype and np.array_equal(fa[k], fb[k]) for k in fa.files
        )


def report_text(path: Path) -> str:
    """The report without what depends on the clock (build time, seconds of training) or on
    the checkout (the commit that built it, from the run's config.json)."""
    text = re.sub(r"built \d{4}-\d\d-\d\d \d\d:\d\d UTC", "built -", path.read_text())
    versions = json.loads((path.parent / "config.json").read_text()).get("versions", {})
    if versions.get("git_commit"):
        text = text.replace(versions["git_commit"], "-")
    return re.sub(r"Training took [\d,]+ s", "Training took - s", text)


def compare(base: Path, head: Path) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """(required comparisons, informational ones) as (relative path, identical)."""
    required, extra = [], []
    names = sorted(
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and (head / p.relative_to(base)).is_file()
    )
    only = sorted(
        {str(p.relative_to(r)) for r in (base, head) for p in r.rglob("*") if p.is_file()}
        - set(names)
    )
    for rel in names:
        a, b = base / rel, head / rel
        if rel.endswith("history.csv"):
            required.append((rel, history_text(a) == history_text(b)))
        elif rel == "metrics.json":
            required.append((rel, metrics_text(a) == metrics_text(b)))
        elif rel.endswith(("model.safetensors", ".png")):
            required.append((rel, a.read_bytes() == b.read_bytes()))
        elif rel == "split.npz":
            required.append((rel, same_npz(a, b)))
        elif rel.endswith(".npz"):
            extra.append((rel, same_npz(a, b)))
        elif rel.endswith("report.html"):
            extra.append((rel, report_text(a) == report_text(b)))
        elif rel.endswith("checkpoint.pt"):  # holds the history's seconds too
            extra.append((rel + " (holds seconds)", a.read_bytes() == b.read_bytes()))
        else:  # config.json also holds the commit and versions
            extra.append((rel, a.read_bytes() == b.read_bytes()))
    for rel in only:
        where = f"{rel} (only in {'base' if (base / rel).exists() else 'head'})"
        if rel.endswith(("history.csv", "metrics.json", "model.safetensors", ".png", "split.npz")):
            required.append((where, False))
        else:
            extra.append((where, False))
    return required, extra


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="HEAD", help="git revision to compare with (default: HEAD)")
    p.add_argument("--base-run", type=Path, help="reuse this run folder of the base revision")
    p.add_argument("--keep", type=Path, help="keep both run folders under this folder")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the cxrvae command")
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("give the cxrvae command after --")
    with tempfile.TemporaryDirectory() as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base_run = a.base_run
        if base_run is None:
            base_run = work / "base" / "run"  # the same folder name: pages show it
            with revision_src(a.base) as src:
                took = run_cxrvae(src, command, base_run)
            print(f"base ({a.base}): {took:.1f} s")
        head_run = work / "head" / "run"
        took = run_cxrvae(ROOT / "src", command, head_run)
        print(f"head (this checkout): {took:.1f} s")
        required, extra = compare(base_run, head_run)
        for rel, same in required:
            print(f"{'identical' if same else 'DIFFERENT':>10}  {rel}")
            if rel == "metrics.json" and not same:
                a, b = (
                    _drop_timings(json.loads((r / rel).read_text())) for r in (base_run, head_run)
                )
                for where in json_differences(a, b)[:20]:
                    print(f"{'':>12}{where}")
        print("informational:")
        for rel, same in extra:
            print(f"{'identical' if same else 'different':>10}  {rel}")
    ok = bool(required) and all(s for _, s in required)
    print(
        "same outputs" if ok else "outputs differ",
        f"({sum(s for _, s in required)} of {len(required)} required files identical)",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as e:  # cxrvae has said why on stderr, above
        sys.exit(f"same_outputs.py: the cxrvae command ended with exit status {e.returncode}")
