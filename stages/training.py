"""What `train` and `finetune` share: seeding, devices, optimizers, the logged fit."""

import time
from pathlib import Path

import keras
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

CHECKPOINTS = Path("models/checkpoints")


def setup(t):
    """Seed everything, pick the precision, and return the tf.distribute strategy.

    Same params, same metrics: Python, NumPy and TF are seeded and TF runs
    deterministic ops. Models must be built and compiled inside strategy.scope().
    """
    keras.utils.set_random_seed(t.seed)
    tf.config.experimental.enable_op_determinism()
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    return strategy(t.distribute)


def strategy(name):
    """none: one device; mirrored: all local GPUs (or CPUs); multiworker: from TF_CONFIG."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "none"
    if name == "mirrored":
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def optimizer(t, lr):
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=t.momentum)
    return keras.optimizers.Adam(learning_rate=lr)


def fit(model, x, y, val, *, epochs, patience, log_dir, **fit_args):
    """Train with early stopping on val_loss (best weights restored), logged by dvclive.

    The best model so far is also checkpointed to models/checkpoints/ (kept
    only if the run dies). Per-epoch metrics go to <log_dir>/plots/metrics/.
    With epochs 0 nothing is trained. Returns {"seconds", "epochs"}.
    """
    log_dir = Path(log_dir)
    checkpoint = CHECKPOINTS / f"{log_dir.name}.keras"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
    ]
    ran = 0
    start = time.perf_counter()
    with Live(str(log_dir), dvcyaml=None, save_dvc_exp=False) as live:
        if epochs:
            callbacks.append(DVCLiveCallback(live=live))
            history = model.fit(
                x, y, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=2, **fit_args
            )
            ran = len(history.epoch)
    checkpoint.unlink(missing_ok=True)
    if not any(CHECKPOINTS.iterdir()):
        CHECKPOINTS.rmdir()
    return {"seconds": round(time.perf_counter() - start, 1), "epochs": ran}
