"""What helps a rare class, measured on a project's cached features: the head of
train (Dense 256, dropout 0.5, Adam 3e-4, early stopping on val) trained plain
or with balanced class weights, and deciding plainly or with logit adjustment
(log of each class's training share taken off its logit, times tau; Menon et
al., 2021). Balanced accuracy and the rare class's recall on the test split,
averaged over three seeds.

    python bench/rare_levers.py PROJECT RARE_CLASS   # after `dvc repro features` there
"""

import sys
from pathlib import Path

import keras
import numpy as np
from sklearn.metrics import balanced_accuracy_score, recall_score


def main(project, rare):
    x = {s: np.load(Path(project) / f"data/features/{s}_x.npy") for s in ("train", "val", "test")}
    y = {s: np.load(Path(project) / f"data/features/{s}_y.npy") for s in ("train", "val", "test")}
    classes = sorted(p.name for p in (Path(project) / "data/clean/images").iterdir())
    k, target = len(classes), classes.index(rare)
    counts = np.bincount(y["train"], minlength=k)
    log_prior, weights = np.log(counts / counts.sum()), {i: len(y["train"]) / (k * c) for i, c in enumerate(counts)}
    print(f"| class weights | tau | balanced accuracy | {rare} recall (per seed) |\n|---|---|---|---|")
    for weighted in (False, True):
        logits = [fit(x, y, k, weights if weighted else None, seed) for seed in range(3)]
        for tau in (0, 1, 1.5, 2):
            said = [(z - tau * log_prior).argmax(1) for z in logits]
            balanced = np.mean([balanced_accuracy_score(y["test"], s) for s in said])
            recall = [recall_score(y["test"], s, average=None)[target] for s in said]
            print(f"| {'balanced' if weighted else 'none'} | {tau} | {balanced:.3f} | {np.mean(recall):.3f} "
                  f"({', '.join(f'{r:.2f}' for r in recall)}) |")


def fit(x, y, k, class_weight, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(x["train"].shape[1:])
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(256, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(k)(hidden))
    model.compile(keras.optimizers.Adam(3e-4), keras.losses.CategoricalCrossentropy(from_logits=True))
    onehot = {s: keras.utils.to_categorical(y[s], k) for s in y}
    model.fit(x["train"], onehot["train"], validation_data=(x["val"], onehot["val"]), epochs=30, batch_size=32,
              verbose=0, class_weight=class_weight,
              callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    return model.predict(x["test"], verbose=0)


if __name__ == "__main__":
    main(*sys.argv[1:])
