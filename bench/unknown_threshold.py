"""Does the unknown check keep its promise on new photos? (issue 50)

    python bench/unknown_threshold.py [--shared ../shared] [--sets NAME ...] [--keep DIR] [--hold-out N]

`unknown.pass_share` promises that that share of photos like the training ones
pass. For each shared set, the one-switch MobileNetV2 run (as bench/unknown.py)
trains a model; on its fine-tuned features, each rule below sets a threshold,
and the share of the test photos (never seen by the model, never used to choose
anything) that it flags is measured, with its 95% interval, at pass shares 0.95
and 0.99:

- val: the pipeline's rule until now, the pass-share quantile of the val photos' scores;
- val, conformal: the ceil((n + 1) q)-th smallest val score (a finite-sample
  quantile: the threshold of split conformal prediction, Vovk et al. 2005);
- train cross-fitted + val (the pipeline's rule since): each training photo's
  distance to its k-th nearest training photo in the other folds (5 folds,
  classifier.model.unknown.cross_fitted), with the val scores: many more photos
  than val, but photos the model was fitted on;
- the flagged share of the val photos themselves, at the val rule, for comparison.

Beside each, the share of another set's photos flagged (the pairs of
bench/unknown.py): what a rule gives up in catching photos of none of the classes.
With `--hold-out N`, N photos per class (a seeded draw) are kept out of the
project altogether (it reads links to the others), and the share of them
flagged is reported too: new photos of the training classes that no split saw.
"""

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from classifier.model.unknown import cross_fitted
from tools.scratch import project

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from unknown import WEIGHTS, features_and_scores, knn, photos  # noqa: E402 (bench/unknown.py: the same run, the same features)

SETS = ("flowers", "intel", "hymenoptera", "dogs-vs-cats")
OTHER = {"flowers": "intel", "intel": "flowers", "hymenoptera": "flowers", "dogs-vs-cats": "flowers"}  # as bench/unknown.py
SHARES = (0.95, 0.99)


def quantile_rule(scores, share):
    """The pipeline's rule until now: the ceil(q n)-th smallest score."""
    return float(np.sort(scores)[max(0, math.ceil(share * len(scores)) - 1)])


def conformal_rule(scores, share):
    """The ceil((n + 1) q)-th smallest score (the largest where that is past n)."""
    return float(np.sort(scores)[min(len(scores), math.ceil(share * (len(scores) + 1))) - 1])


def flagged(scores, threshold):
    """Share above the threshold, and its 95% Wilson interval."""
    count = int((scores > threshold).sum())
    interval = stats.binomtest(count, len(scores)).proportion_ci(confidence_level=0.95, method="wilson")
    return f"{count / len(scores):.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def held_out(folder, count, target):
    """Links to `folder`'s photos in `target` (class folders as given) but `count` per class,
    drawn with seed 0; returns the photos held out."""
    held = []
    for group in sorted({path.parent for path in photos(folder)}):
        chosen = photos(group)
        chosen = [chosen[i] for i in np.random.default_rng(0).permutation(len(chosen))]
        held += chosen[:count]
        for path in chosen[count:]:
            link = target / path.relative_to(folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path)
    return held


def measure(name, shared, work, weights, hold_out=0):
    repo, data = work / name, shared / "data" / name
    held = held_out(data, hold_out, work / f"{name}-kept") if hold_out else []
    if hold_out:
        data = work / f"{name}-kept"
    if not (repo / "metrics/eval.json").exists():
        repo = project(repo, {"data": {"source": "local", "local_dir": str(data)},
                              "model": {"backbone": "mobilenetv2", "weights": str(weights)}})
        start = time.perf_counter()
        subprocess.run(["dvc", "repro", "evaluate"], cwd=repo, check=True, capture_output=True)
        print(f"{name}: pipeline {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    manifest = pd.read_csv(repo / "data/split/manifest.csv")
    x = {split: features_and_scores(repo, [repo / p for p in manifest[manifest.split == split].path])[0][0]
         for split in ("train", "val", "test")}
    k = pd.read_json(repo / "models/unknown.json", typ="series")["k"]
    val, test = knn(x["train"], x["val"], k), knn(x["train"], x["test"], k)
    out = knn(x["train"], features_and_scores(repo, photos(shared / "data" / OTHER[name]))[0][0], k)
    new_photos = knn(x["train"], features_and_scores(repo, held)[0][0], k) if held else None
    pooled = np.concatenate([cross_fitted(x["train"], k, seed=42), val])  # train.seed, as the stage
    rows = []
    for share in SHARES:
        rules = {"val (until now)": quantile_rule(val, share), "val, conformal": conformal_rule(val, share),
                 "train cross-fitted + val": quantile_rule(pooled, share)}
        rows += [(name, share, rule, threshold, flagged(test, threshold),
                  flagged(new_photos, threshold) if held else "", f"{(out > threshold).mean():.3f}")
                 for rule, threshold in rules.items()]
        rows.append((name, share, "val photos themselves, at the val rule", rules["val (until now)"],
                     flagged(val, rules["val (until now)"]), "", ""))
    counts = (f"{name}: {len(x['train'])} train, {len(val)} val, {len(test)} test photos"
              + (f", {len(held)} held out of the project" if held else "") + f"; k = {k}")
    return rows, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them (a second run reuses them)")
    parser.add_argument("--hold-out", type=int, default=0, help="photos per class kept out of the project")
    args = parser.parse_args()
    shared = args.shared.resolve()
    work = args.keep or Path(tempfile.mkdtemp(prefix="threshold-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    table, counts = [], []
    for name in args.sets:
        rows, count = measure(name, shared, work, shared / WEIGHTS, args.hold_out)
        table += rows
        counts.append(count)
    print("\n| set | pass share | rule | threshold | test photos flagged [95% interval] | held-out photos flagged "
          "| other set's photos flagged |\n|---|---|---|---|---|---|---|")
    for name, share, rule, threshold, share_flagged, held_flagged, caught in table:
        print(f"| {name} | {share} | {rule} | {threshold:.4f} | {share_flagged} | {held_flagged} | {caught} |")
    print("\n" + "\n".join(f"- {line}" for line in counts))


if __name__ == "__main__":
    main()
