"""Stage `train`: a dense head on the cached features (no backbone pass per epoch).

Writes models/head.keras and the per-epoch log under logs/train/.
"""

import keras

from stages import manifest, params
from stages.errors import run
from stages.features import load
from stages.paths import HEAD, TRAIN_LOG
from stages.training import LOSS, fit, optimizer, seed_everything


def build_head(feature_shape, classes, h):
    """Dense(units) -> Dropout -> softmax; units 0 means a linear classifier."""
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if h.units:
        x = keras.layers.Dense(h.units, activation="relu")(x)
    x = keras.layers.Dropout(h.dropout)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="head")


def main():
    p = params.load()
    seed_everything(p.train.seed)
    classes = len(manifest.classes(manifest.read()))
    x_train, y_train = load("train")
    x_val, y_val = load("val")
    head = build_head(x_train.shape[1:], classes, p.head)
    head.compile(
        optimizer=optimizer(p.train.optimizer, p.train.lr, p.train.momentum),
        loss=LOSS,
        metrics=["accuracy"],
    )
    onehot = lambda y: keras.utils.to_categorical(y, classes)  # noqa: E731
    fit(
        head,
        x_train,
        onehot(y_train),
        (x_val, onehot(y_val)),
        epochs=p.train.epochs,
        patience=p.train.patience,
        log_dir=TRAIN_LOG,
        batch_size=p.train.batch_size,
        shuffle=True,
    )
    HEAD.parent.mkdir(parents=True, exist_ok=True)
    head.save(HEAD)


if __name__ == "__main__":
    run(main)
