"""Are the pseudo-labels right on real photos? (issue 51)

    python bench/pseudo_labels_check.py WORKDIR [--data ../shared/data/flowers] [--pool 40]
        [--weights ../shared/weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5]

Holds `--pool` photos of each class folder back (seeded) as the unlabelled pool,
each named <class>__<file> so that the truth is known here and hidden from the
pipeline; builds a project on the rest (MobileNetV2) with train.pseudo_labels:
confident, runs `dvc repro train`, and reads reports/pseudo_labels.csv against
the held-back classes.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.scratch import project  # noqa: E402


def build(work, data, weights, count):
    rng = np.random.default_rng(0)
    for folder in sorted(path for path in data.iterdir() if path.is_dir()):
        files = sorted(folder.iterdir())
        held = set(rng.choice(len(files), count, replace=False).tolist())
        for i, file in enumerate(files):
            target = work / "pool" / f"{folder.name}__{file.name}" if i in held else work / "photos" / folder.name / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(file, target)
    return project(work / "project", {
        "data": {"source": "local", "local_dir": str(work / "photos"), "unlabelled_dir": str(work / "pool")},
        "model": {"backbone": "mobilenetv2", "weights": str(weights), "alpha": 1.0},
        "train": {"pseudo_labels": "confident"}})


def main():
    shared = Path(__file__).resolve().parents[2] / "shared"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--data", type=Path, default=shared / "data/flowers")
    parser.add_argument("--weights", type=Path, default=shared / "weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5")
    parser.add_argument("--pool", type=int, default=40)
    args = parser.parse_args()
    repo = build(args.work.resolve(), args.data.resolve(), args.weights.resolve(), args.pool)
    subprocess.run([sys.executable, "-m", "dvc", "repro", "train"], cwd=repo, check=True)
    learnt = pd.read_csv(repo / "reports/pseudo_labels.csv")
    right = learnt.label == learnt.path.str.split("__").str[0]
    print(f"{len(learnt)} pool photos pseudo-labelled ({learnt.label.value_counts().to_dict()}): "
          f"{right.mean():.1%} right; wrong: {learnt.path[~right].tolist()}")


if __name__ == "__main__":
    main()
