"""Label what matters next: test accuracy against photos labelled, photos chosen
by the queue (classifier/training/queue.py) or at random (issue 38).

    python bench/label_next.py PROJECT [PROJECT ...] [--seeds 3] [--plot FILE]

Each PROJECT has run once (its cached features and split are used as they
are: bench/unknown.py --keep leaves such projects). Per seed: 5 labelled photos
per class from the train split, the rest of it is the pool (labels hidden);
each round the head is fitted on the labelled photos (the pipeline's logistic
head: classifier.model.heads.logistic_head), its probabilities calibrated on
the val split, and 20 more photos are labelled, chosen by the queue or at
random (the script plays the person, reading the hidden label). Prints test
accuracy per round (mean over seeds, with the seeds' range) and how many
labels the queue needs to reach what random choice reaches with 200; plots
both curves; times one round on a pool of 5,000 photos.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from classifier.model.heads import logistic_head, probabilities
from classifier.report import calibration
from classifier.training.queue import BATCH, next_batch

START, BUDGET = 5, 200


def load(project):
    return {split: (np.load(project / f"data/features/{split}_x.npy").astype("float32"),
                    np.load(project / f"data/features/{split}_y.npy")) for split in ("train", "val", "test")}


def fitted(x, y, classes, val):
    head = logistic_head(x, y, classes, "categorical_crossentropy", balanced=False)[0]
    temperature = calibration.fit_temperature(probabilities(head.predict(val[0], verbose=0)), val[1])
    return head, temperature


def curve(data, strategy, seed):
    """[(photos labelled, test accuracy)] for one seed, labelling by `strategy`."""
    (x, y), val, (x_test, y_test) = data["train"], data["val"], data["test"]
    classes = int(y.max()) + 1
    rng = np.random.default_rng(seed)
    labelled = [int(i) for c in range(classes) for i in rng.choice(np.flatnonzero(y == c), START, replace=False)]
    points = []
    while True:
        head, temperature = fitted(x[labelled], y[labelled], classes, val)
        accuracy = (probabilities(head.predict(x_test, verbose=0)).argmax(axis=1) == y_test).mean()
        points.append((len(labelled), accuracy))
        if len(labelled) >= BUDGET + START * classes:
            return points
        pool = np.setdiff1d(np.arange(len(y)), labelled)
        if strategy == "random":
            chosen = rng.choice(pool, BATCH, replace=False)
        else:
            scores = calibration.scaled(probabilities(head.predict(x[pool], verbose=0)), temperature)
            chosen = pool[next_batch(scores, x[pool], x[labelled], BATCH)]
        labelled += [int(i) for i in chosen]


def labels_to_reach(counts, accuracies, target):
    reached = np.flatnonzero(accuracies >= target - 1e-9)
    return int(counts[reached[0]]) if len(reached) else None


def round_seconds(data, pool_size=5000):
    """One round on a pool of `pool_size` photos (rows drawn from the train split): fit, calibrate, rank."""
    (x, y), val = data["train"], data["val"]
    rng = np.random.default_rng(0)
    pool = x[rng.choice(len(x), pool_size)]
    classes = int(y.max()) + 1
    labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), 40, replace=False) for c in range(classes)])
    start = time.perf_counter()
    head, temperature = fitted(x[labelled], y[labelled], classes, val)
    scores = calibration.scaled(probabilities(head.predict(pool, verbose=0)), temperature)
    next_batch(scores, pool, x[labelled], BATCH)
    return time.perf_counter() - start


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for axis, (name, table) in zip(axes[0], results.items()):
        for strategy, colour in (("queue", "tab:blue"), ("random", "tab:grey")):
            rows = table[table.strategy == strategy]
            axis.plot(rows.labelled, rows["mean"], marker=".", color=colour, label=strategy)
            axis.fill_between(rows.labelled, rows["min"], rows["max"], color=colour, alpha=0.2)
        axis.set(title=name, xlabel="photos labelled", ylabel="test accuracy (band: the seeds' range)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("projects", nargs="+", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=Path("bench/label_next.png"))
    args = parser.parse_args()
    results = {}
    print("| set | photos labelled | random | queue |\n|---|---|---|---|")
    for project in args.projects:
        data = load(project)
        rows = []
        for strategy in ("random", "queue"):
            runs = np.array([[accuracy for _, accuracy in curve(data, strategy, seed)] for seed in range(args.seeds)])
            counts = [count for count, _ in curve(data, "random", 0)] if not rows else rows[0]["counts"]
            rows.append({"strategy": strategy, "counts": counts, "runs": runs})
        table = pd.DataFrame([
            {"strategy": row["strategy"], "labelled": count, "mean": runs.mean(), "min": runs.min(), "max": runs.max()}
            for row in rows for count, runs in zip(row["counts"], row["runs"].T)
        ])
        results[project.name] = table
        random, queue = (table[table.strategy == s] for s in ("random", "queue"))
        for r, q in zip(random.itertuples(), queue.itertuples()):
            print(f"| {project.name} | {r.labelled} | {r.mean:.3f} [{r.min:.3f}, {r.max:.3f}] | "
                  f"{q.mean:.3f} [{q.min:.3f}, {q.max:.3f}] |", flush=True)
        counts = random.labelled.to_numpy()
        target = np.interp(BUDGET, counts, random["mean"].to_numpy())
        needed = labels_to_reach(counts, queue["mean"].to_numpy(), target)
        print(f"\n{project.name}: random choice reaches {target:.3f} with {BUDGET} labels; the queue with "
              f"{needed if needed is not None else f'more than {counts[-1]}'}\n")
    plot(results, args.plot)
    print(f"one round on a pool of 5,000 photos ({args.projects[0].name}'s features): "
          f"{round_seconds(load(args.projects[0])):.1f} s; the curves: {args.plot}")


if __name__ == "__main__":
    main()
