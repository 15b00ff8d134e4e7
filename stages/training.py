"""What `train` and `finetune` share: seeding, optimizers, and the logged fit."""

import keras
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

LOSS = "categorical_crossentropy"


def seed_everything(seed):
    """Same params, same metrics: seed Python, NumPy and TF, and use deterministic ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def optimizer(name, lr, momentum):
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
    return keras.optimizers.Adam(learning_rate=lr)


def fit(model, x, y, val, *, epochs, patience, log_dir, **fit_args):
    """Train with early stopping on val_loss (best weights kept), logged by dvclive.

    The per-epoch metrics go to <log_dir>/plots/metrics/ for `dvc plots`; the
    plots are declared at the top level of dvc.yaml, so dvclive writes no dvc.yaml.
    """
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    with Live(str(log_dir), dvcyaml=None, save_dvc_exp=False) as live:
        history = model.fit(
            x,
            y,
            validation_data=val,
            epochs=epochs,
            callbacks=[stop, DVCLiveCallback(live=live)],
            verbose=2,
            **fit_args,
        )
    return history
