"""What `train` and `finetune` share: seeding, devices, optimizers, the logged,
resumable fit."""

import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from classifier.errors import UserError
from classifier.files import write_json
from classifier.training import backup


def setup(seed, distribute, mixed_precision):
    """Seed everything, pick the precision, and return the tf.distribute strategy.

    Same params, same metrics: Python, NumPy and TF are seeded and TF runs
    deterministic ops. Models must be built and compiled inside strategy.scope().
    """
    chosen = strategy(distribute)  # first: multi-worker collectives must precede any TF op
    print(f"tf.distribute: {type(chosen).__name__}, {chosen.num_replicas_in_sync} replicas")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    return chosen


def strategy(name):
    """none: one device; mirrored: all local GPUs (or CPUs)."""
    if name == "multiworker":
        # Measured: fit()'s first step reduces the (x, y) batch with strategy.reduce, which
        # MultiWorkerMirroredStrategy cannot do for a tuple (tests/test_pipeline.py).
        raise UserError(
            "train.distribute: multiworker does not work with Keras 3 (model.fit fails under "
            "MultiWorkerMirroredStrategy: keras-team/keras#20585). Use mirrored for the GPUs of one "
            "machine, or the DVC experiment queue to spread experiments over machines"
        )
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def optimizer(name, lr, momentum, ema=0.0):
    """sgd (with momentum) or adam; lr a number or a schedule; `ema` > 0: the
    optimizer keeps a moving average of the weights with that momentum, which
    `fit` validates and keeps."""
    average = {"use_ema": True, "ema_momentum": ema} if ema else {}
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=momentum, **average)
    return keras.optimizers.Adam(learning_rate=lr, **average)


def schedule(name, lr, epochs, steps_per_epoch):
    """constant: lr throughout; cosine: a linear warm-up from 0 over the first
    epoch, then cosine decay to 0 by the last step (Keras' CosineDecay)."""
    if name == "constant" or not epochs:
        return lr
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, (epochs - 1) * steps_per_epoch), warmup_target=lr, warmup_steps=steps_per_epoch
    )


class EpochSeeds(keras.callbacks.Callback):
    """Each epoch's order of the training rows and the state of every random
    layer (dropout, augmentation), set at the start of the epoch from (seed,
    epoch) alone: a run resumed at epoch k sees what an uninterrupted run saw.

    `order` is read by the training dataset (classifier/data/inputs.py) as each epoch's
    iterator starts, after this callback has set it. With `views`, the rows are
    that many cached augmented views of each of the `count` images (image i's
    view v is row i * views + v) and epoch e reads view e mod views.
    """

    def __init__(self, count, seed, random_layers=(), views=1):
        super().__init__()
        self.count, self.seed, self.random_layers, self.views = count, seed, random_layers, views
        self.order = tf.Variable(tf.range(count, dtype="int64"), trainable=False)

    def on_epoch_begin(self, epoch, logs=None):
        rng = np.random.default_rng([self.seed, epoch])
        self.order.assign(rng.permutation(self.count) * self.views + epoch % self.views)
        for layer in (self.model, *self.random_layers):
            for variable in layer.variables:
                if variable.path.endswith("seed_generator_state"):
                    variable.assign(np.array([rng.integers(2**30), 0]).astype(variable.dtype))


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' early stopping on val_loss, best weights restored at the end, with
    its state (best loss, epochs waited, best weights) saved in the backup folder
    after every epoch, so that a resumed run stops where an uninterrupted one would."""

    def __init__(self, folder, patience):
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=True)
        self.state, self.best_file = Path(folder) / "early_stopping.json", Path(folder) / "best_weights.npz"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.state.exists():
            saved = json.loads(self.state.read_text())
            self.wait, self.best, self.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
            with np.load(self.best_file) as arrays:
                self.best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch:
            backup.save_arrays(self.best_file, self.best_weights)
        write_json(self.state, {"wait": self.wait, "best": float(self.best), "best_epoch": self.best_epoch})


class StopOnNaN(keras.callbacks.Callback):
    """End the stage with one line when a loss stops being a number, before the
    epoch is backed up or a model saved (Keras' TerminateOnNaN would only end
    training, and the stage would save the broken model)."""

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = float((logs or {}).get(key, 0.0))
            if not np.isfinite(value):
                raise UserError(
                    f"{key} became {value} in epoch {epoch + 1}: training diverged; no model was saved. "
                    "Lower the learning rate (train.lr, finetune.lr)"
                )


def fit(model, data, val, *, seeds, epochs, patience, log_dir, class_weight=None):
    """Train with early stopping on val_loss (best weights restored), logged by dvclive.

    After every epoch the run is backed up to backup/<log_dir name>/
    (Keras' BackupAndRestore: weights, optimizer, epoch; plus the early-stopping
    state); a run that was killed resumes from there, and `seeds` makes the
    resumed epochs the same as an uninterrupted run's. Per-epoch metrics go to
    <log_dir>/plots/metrics/. With epochs 0 nothing is trained. `class_weight`
    ({class index: weight}) weighs each training image's loss, as Keras does.
    With an optimizer that keeps a moving average of the weights, the average is
    what is validated, stopped early on and kept (Keras' SwapEMAWeights).
    Returns {"seconds", "epochs"}.
    """
    log_dir = Path(log_dir)
    folder = backup.folder(log_dir.name)
    metadata = folder / "training_metadata.json"  # BackupAndRestore's: epochs done
    done = json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0
    # dvclive before BackupAndRestore: an epoch is logged before it counts as done.
    callbacks = [seeds, StopOnNaN(), EarlyStopping(folder, patience)]
    if getattr(model.optimizer, "use_ema", False):
        # First, so that every other callback sees the averaged weights at an epoch's end.
        swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
        # A backup is taken at an epoch's end, averaged weights in the model: the swap resumes from there.
        swap._ema_weights_in_model = bool(done)
        callbacks.insert(0, swap)
    start, ran = time.perf_counter(), 0
    with Live(str(log_dir), dvcyaml=None, save_dvc_exp=False, resume=bool(done)) as live:
        live.step = done  # one step per epoch (dvclive cannot tell "step 0 done" from "nothing done")
        if epochs:
            callbacks += [DVCLiveCallback(live=live), keras.callbacks.BackupAndRestore(str(folder), delete_checkpoint=False)]
            # shuffle=False: the order is `seeds`' (Keras would only warn that it ignores shuffle=True).
            history = model.fit(data, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=2, shuffle=False,
                                class_weight=class_weight)
            ran = history.epoch[-1] + 1 if history.epoch else epochs
    backup.remove(log_dir.name)
    return {"seconds": round(time.perf_counter() - start, 1), "epochs": ran}
