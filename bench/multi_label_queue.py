"""Does the label-next queue put a multi-label model's mistakes first? (issue 52)

    python bench/multi_label_queue.py WORKDIR [--data ../shared/data/miml-scenes] [--pool 300]
        [--weights ../shared/weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5]

Holds `--pool` photos of the labels CSV back (seeded) as the unlabelled pool,
builds a project on the rest (MobileNetV2, head only: finetune.epochs 0) and
runs `dvc repro label_next`; then reads the queue against the held-back labels:
the share of photos whose suggested label set is wrong, among the first ranks
and the rest. A queue that ranks by uncertainty puts the model's mistakes first.
"""

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.scratch import project  # noqa: E402


def build(work, data, weights, count):
    rows = list(csv.reader((data / "labels.csv").read_text(encoding="utf-8").splitlines()))
    header, rows = rows[0], rows[1:]
    held = set(np.random.default_rng(0).choice(len(rows), count, replace=False).tolist())
    pool = work / "pool"
    pool.mkdir(parents=True)
    with open(work / "labels.csv", "w", newline="") as kept, open(work / "pool_truth.csv", "w", newline="") as truth:
        kept, truth = csv.writer(kept), csv.writer(truth)
        kept.writerow(header), truth.writerow(header)
        for i, row in enumerate(rows):
            (truth if i in held else kept).writerow(row)
            if i in held:
                shutil.copy(data / row[0], pool / Path(row[0]).name)
    return project(work / "project", {
        "data": {"source": "local", "local_dir": str(data), "labels": str(work / "labels.csv"), "unlabelled_dir": str(pool)},
        "model": {"backbone": "mobilenetv2", "weights": str(weights), "alpha": 1.0}, "finetune": {"epochs": 0}})


def report(work):
    queue = pd.read_csv(work / "project/reports/label_next.csv", keep_default_na=False)
    truth = pd.read_csv(work / "pool_truth.csv", keep_default_na=False)
    given = {Path(path).name: set(labels.split()) for path, labels in zip(truth.path, truth.labels)}
    waiting = queue[queue.queue == "next"].assign(rank=lambda q: q["rank"].astype(int))
    wrong = np.array([set(s.split()) != given[p] for s, p in zip(waiting.suggested, waiting.path)])
    print(f"{len(queue)} pool photos: {len(waiting)} in `next`, {(queue.queue == 'unknown').sum()} flagged unknown")
    for low, high in ((1, 20), (1, 60), (61, len(waiting))):
        part = wrong[(waiting["rank"] >= low).to_numpy() & (waiting["rank"] <= high).to_numpy()]
        print(f"| ranks {low}-{high} | {len(part)} | {part.mean():.1%} |")


def main():
    shared = Path(__file__).resolve().parents[2] / "shared"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--data", type=Path, default=shared / "data/miml-scenes")
    parser.add_argument("--weights", type=Path, default=shared / "weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5")
    parser.add_argument("--pool", type=int, default=300)
    args = parser.parse_args()
    repo = build(args.work.resolve(), args.data.resolve(), args.weights.resolve(), args.pool)
    subprocess.run([sys.executable, "-m", "dvc", "repro", "label_next"], cwd=repo, check=True)
    report(args.work.resolve())


if __name__ == "__main__":
    main()
