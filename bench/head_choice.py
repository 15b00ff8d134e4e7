"""How `train` should choose its head when photos are few: by the val split's
log loss, or by cross-validation over train + val (classifier/training/choice.py).
On a project's cached features, many small draws (PER_CLASS train + val photos
per class) are made; each rule picks the dense or the logistic head, and the
pick is scored on the project's whole test split, which no draw touches.

    python bench/head_choice.py PROJECT [PROJECT...]   # after `dvc repro features` there

The dense head is fitted as in the folds (train.epochs, no early stopping) under
both rules, so that the rules differ only in what they judge on.
"""

import os
import sys
from pathlib import Path

import numpy as np

from classifier.model import registry, tasks
from classifier.model.heads import logistic_head, probabilities
from classifier.report.calibration import calibrated_losses
from classifier.training.choice import cross_validated_losses, val_losses
from stages.train import fold_dense

DRAWS = 8
TRAIN, VAL = 8, 4  # photos per class in a draw: a val split below finetune.min_val's 10


def draw(y, rng):
    """Row numbers of a draw's train and val parts: TRAIN and VAL per class."""
    train, val = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        train += list(rows[:TRAIN])
        val += list(rows[TRAIN : TRAIN + VAL])
    return np.array(train), np.array(val)


def main(projects):
    print("| set | rule | dense kept | test log loss (calibrated) | test accuracy |\n|---|---|---|---|---|")
    for project in [Path(p).resolve() for p in projects]:
        os.chdir(project)
        p, _ = registry.load()  # every `auto` resolved, as train sees it
        x, y = (np.concatenate([np.load(project / f"data/features/{s}_{k}.npy") for s in ("train", "val")]) for k in "xy")
        x_test, y_test = (np.load(project / f"data/features/test_{k}.npy") for k in "xy")
        classes = len(np.unique(y))
        fitters = {"dense": lambda a, b: fold_dense(p, classes, a, b),
                   "logistic": lambda a, b: logistic_head(a, b, classes, p.train.loss, balanced=True)[0]}
        results = {"val split": [], "cross-validation": []}
        for seed in range(DRAWS):
            train, val = draw(y, np.random.default_rng(seed))
            fitted = {name: fit(x[train], y[train]) for name, fit in fitters.items()}
            on_test = {name: probabilities(model.predict(x_test, verbose=0)) for name, model in fitted.items()}
            scores = {name: (calibrated_losses(p_test, y_test).mean(), (p_test.argmax(1) == y_test).mean())
                      for name, p_test in on_test.items()}
            by_val = val_losses(fitted, x[val], y[val], tasks.of(p))
            both = np.concatenate([train, val])
            by_cv = cross_validated_losses(fitters, x[both], y[both], seed, tasks.of(p))
            for rule, losses in (("val split", by_val), ("cross-validation", by_cv)):
                kept = min(losses, key=losses.get)
                results[rule].append((kept == "dense", *scores[kept]))
        for rule, rows in results.items():
            dense, loss, accuracy = np.mean(rows, axis=0)
            print(f"| {project.name} | {rule} | {dense:.0%} | {loss:.3f} | {accuracy:.3f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
