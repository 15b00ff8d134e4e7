"""Which head to train on a project's cached features: each candidate's
validation log loss (after temperature scaling, as predict reports
confidence), test accuracy and seconds. The measurement behind `head` choices
(issue: one switch gives a good model on every data set).

    python bench/head_candidates.py PROJECT [PROJECT...]   # after `dvc repro features` there
"""

import sys
import time
from pathlib import Path

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from classifier.report.calibration import fit_temperature, scaled

CANDIDATES = {
    "dense 256, dropout 0.5 (today)": {"units": 256, "dropout": 0.5},
    "dense 256, dropout 0.5, smoothing 0.1": {"units": 256, "dropout": 0.5, "smoothing": 0.1},
    "linear, dropout 0.5": {"units": 0, "dropout": 0.5},
    "linear, L2 1e-4": {"units": 0, "dropout": 0.0, "l2": 1e-4},
    "linear, L2 1e-3": {"units": 0, "dropout": 0.0, "l2": 1e-3},
    "linear, L2 1e-2": {"units": 0, "dropout": 0.0, "l2": 1e-2},
    "linear, L2 1e-3, smoothing 0.1": {"units": 0, "dropout": 0.0, "l2": 1e-3, "smoothing": 0.1},
}


def keras_head(x, y, k, units, dropout, l2=0.0, smoothing=0.0, seed=42):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(x["train"].shape[1:])
    hidden = keras.layers.Dense(units, activation="relu")(inputs) if units else inputs
    regularizer = keras.regularizers.L2(l2) if l2 else None
    outputs = keras.layers.Dense(k, activation="softmax", kernel_regularizer=regularizer)(keras.layers.Dropout(dropout)(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(3e-4), keras.losses.CategoricalCrossentropy(label_smoothing=smoothing))
    onehot = {s: keras.utils.to_categorical(y[s], k) for s in y}
    model.fit(x["train"], onehot["train"], validation_data=(x["val"], onehot["val"]), epochs=30, batch_size=32, verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    return {s: model.predict(x[s], verbose=0) for s in ("val", "test")}


def logistic(x, y, k, c):
    model = LogisticRegression(C=c, max_iter=3000).fit(x["train"], y["train"])
    return {s: model.predict_proba(x[s]) for s in ("val", "test")}


def row(name, seconds, p, y, k):
    labels = list(range(k))
    t = fit_temperature(p["val"], y["val"])
    val = log_loss(y["val"], scaled(p["val"], t), labels=labels)
    test = (p["test"].argmax(1) == y["test"]).mean()
    print(f"| {name} | {val:.4f} | {test:.4f} | {log_loss(y['test'], scaled(p['test'], t), labels=labels):.4f} | {seconds:.1f} |",
          flush=True)


def main(projects):
    for project in projects:
        x = {s: np.load(Path(project) / f"data/features/{s}_x.npy").astype("float32") for s in ("train", "val", "test")}
        y = {s: np.load(Path(project) / f"data/features/{s}_y.npy") for s in ("train", "val", "test")}
        k = int(max(y["train"].max(), y["test"].max()) + 1)
        print(f"\n{project}: {len(y['train'])} train, {len(y['val'])} val, {len(y['test'])} test, {k} classes\n")
        print("| head | val log loss (calibrated) | test accuracy | test log loss (calibrated) | seconds |\n|---|---|---|---|---|")
        for name, options in CANDIDATES.items():
            start = time.perf_counter()
            p = keras_head(x, y, k, **options)
            row(name, time.perf_counter() - start, p, y, k)
        for c in (0.01, 0.1, 1.0):
            start = time.perf_counter()
            p = logistic(x, y, k, c)
            row(f"scikit-learn logistic regression, C {c}", time.perf_counter() - start, p, y, k)


if __name__ == "__main__":
    main(sys.argv[1:])
