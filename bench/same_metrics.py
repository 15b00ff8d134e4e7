"""Same params, same metrics, on another revision and on this checkout?

`python bench/same_metrics.py REV` runs the tests' small generated project
(VGG16, random weights, 32 px) through `dvc repro` with REV's code (a git
worktree) and with this checkout's, and compares every metrics file (times,
sizes and the resolved recipe left out) and the test predictions: "same", or
"same (and new: ...)" where this checkout only adds keys or columns. For a
refactoring, or a feature, that must not change what the pipeline computes.
"""

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
from tools.generated import TEST_PARAMS, environment, make_images

IGNORED = ("seconds", "latency_ms", "size_mb", "recipe")


def reproduce(tree, folder, images):
    """A project made by `tree`'s own tools/scratch.py, reproduced; its folder."""
    spec = importlib.util.spec_from_file_location(f"scratch_{folder.name}", tree / "tools/scratch.py")
    scratch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scratch)
    params = json.loads(json.dumps(TEST_PARAMS))
    if "runtime" not in yaml.safe_load((tree / "params.yaml").read_text()):  # before runtime.* replaced features.*
        params["features"] = params.pop("runtime")
    project = scratch.project(folder, scratch.merge(params, {"data": {"local_dir": str(images)}}))
    result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=environment(),
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"dvc repro failed in {project}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return project


def kept(report):
    if isinstance(report, dict):
        return {key: kept(value) for key, value in report.items() if key not in IGNORED}
    return report


def added(old, new, prefix=""):
    """The keys `new` adds to `old` (dotted), or None where it changes or drops a value of old's."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else None
    found = [prefix + key for key in new if key not in old]
    for key in old:
        if key not in new:
            return None
        deeper = added(old[key], new[key], f"{prefix}{key}.")
        if deeper is None:
            return None
        found += deeper
    return found


def verdict(old, new):
    """same; same, with new keys; or DIFFERENT with both."""
    extra = added(old, new)
    if extra is None:
        return f"DIFFERENT\n  {old}\n  {new}"
    return "same" + (f" (and new: {', '.join(extra)})" if extra else "")


def same_table(old, new):
    """The old test predictions are the new ones' first columns, value for value."""
    import pandas as pd

    old, new = pd.read_csv(old), pd.read_csv(new)
    extra = [column for column in new.columns if column not in old.columns]
    if list(new.columns[:len(old.columns)]) == list(old.columns) and new[old.columns].equals(old):
        return "same" + (f" (and new: {', '.join(extra)})" if extra else "")
    return "DIFFERENT"


def main(revision):
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        subprocess.run(["git", "worktree", "add", "-q", str(work / "old"), revision], cwd=ROOT, check=True)
        try:
            images = make_images(work / "images")
            projects = [reproduce(tree, work / name, images) for tree, name in ((work / "old", "a"), (ROOT, "b"))]
            for metrics in sorted((projects[0] / "metrics").glob("*.json")):
                old, new = (kept(json.loads((p / "metrics" / metrics.name).read_text())) for p in projects)
                print(f"{metrics.name}: {verdict(old, new)}")
            tables = [p / "plots/test_predictions.csv" for p in projects]
            print(f"plots/test_predictions.csv: {same_table(*tables)}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "old")], cwd=ROOT, check=True)


if __name__ == "__main__":
    main(sys.argv[1])
