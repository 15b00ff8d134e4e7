"""finetune's rule for dropping fine-tuning: only where the val split shows that it hurt."""

import numpy as np
import pytest

from classifier.training.finetuning import hurt
from conftest import ROOT


def val_split(images=600, seed=0):
    """Probabilities of a decent two-class model, and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, images)
    right = rng.uniform(0.6, 0.99, images)
    right[rng.choice(images, images // 20, replace=False)] = 0.2  # 5% mistakes
    probabilities = np.where(labels[:, None] == np.arange(2), right[:, None], 1 - right[:, None])
    return probabilities, labels


def flip(probabilities, labels, images):
    """The same model, wrong with confidence 0.9 on `images` more of the ones it had right."""
    worse = probabilities.copy()
    right = np.flatnonzero(probabilities[np.arange(len(labels)), labels] > 0.5)[:images]
    worse[right, labels[right]], worse[right, 1 - labels[right]] = 0.1, 0.9
    return worse


def test_a_model_that_errs_on_many_more_val_images_is_dropped():
    start, labels = val_split()
    assert hurt(flip(start, labels, 60), start, labels) < 0.05


def test_a_gap_of_a_few_val_images_is_not_proof_that_fine_tuning_hurt():
    start, labels = val_split()
    assert hurt(flip(start, labels, 2), start, labels) >= 0.05


def test_a_better_or_unchanged_model_is_kept():
    start, labels = val_split()
    assert hurt(start, flip(start, labels, 60), labels) > 0.5
    assert hurt(start, start, labels) == 1.0


def test_too_few_val_photos_per_class_means_no_fine_tuning(capsys):
    from types import SimpleNamespace

    from stages.finetune import epochs_to_run

    p = SimpleNamespace(finetune=SimpleNamespace(epochs=6, min_val=10))
    assert epochs_to_run(p, val_count=49, classes=5) == 0
    assert "the val split has 49 photos for 5 classes, fewer than 10 per class" in capsys.readouterr().out
    assert epochs_to_run(p, val_count=50, classes=5) == 6
    p.finetune.min_val = 0
    assert epochs_to_run(p, val_count=3, classes=5) == 6


def test_cosine_schedule_warms_up_over_one_epoch_then_decays_to_zero():
    from classifier.training.fit import schedule

    lr = schedule("cosine", 1e-3, epochs=5, steps_per_epoch=10)
    rates = [float(lr(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[:3] == pytest.approx([0.0, 5e-4, 1e-3])
    assert rates[3] == pytest.approx(5e-4) and rates[4] == pytest.approx(0.0, abs=1e-9)  # half-way, then the end
    assert schedule("constant", 1e-3, epochs=5, steps_per_epoch=10) == 1e-3


def test_label_smoothing_reaches_the_loss():
    from classifier.model.heads import loss_function

    smoothed = loss_function("categorical_crossentropy", 0.1)
    sure = np.array([[1.0 - 1e-7, 1e-7]])
    assert float(smoothed(np.array([[1.0, 0.0]]), sure)) > 0.5  # smoothed targets punish certainty
    assert float(loss_function("categorical_crossentropy", 0.0)(np.array([[1.0, 0.0]]), sure)) < 1e-3


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder where fit() can keep its backup (fingerprinted by dvc.yaml and params.yaml)."""
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fitted(steps, ema, epochs=1, patience=9):
    """A linear model fitted by fit() for `epochs` epochs of `steps` batches of 16 rows, in order."""
    import keras

    from classifier.data.inputs import from_arrays
    from classifier.training.fit import EpochSeeds, fit, optimizer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16 * steps, 4)).astype("float32")
    y = keras.utils.to_categorical(x[:, 0] > 0, 2)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer("sgd", 0.5, 0.0, ema), loss="categorical_crossentropy")
    fit(model, from_arrays(x, y, 16), from_arrays(x, y, 16), seeds=EpochSeeds(len(x), 0), epochs=epochs,
        patience=patience, log_dir="logs/finetune")
    return model.get_weights()


def test_ema_keeps_the_moving_average_of_the_weights(workdir):
    # Keras' average starts at the weights after the first step, then moves by 1 - momentum per step.
    first, second = fitted(1, 0.0)[0], fitted(2, 0.0)[0]
    assert not np.allclose(first, second)
    np.testing.assert_allclose(fitted(2, 0.25)[0], 0.25 * first + 0.75 * second, rtol=1e-5)


def test_a_killed_run_with_ema_resumes_as_an_uninterrupted_one(workdir, monkeypatch):
    import keras

    whole = fitted(2, 0.5, epochs=3)
    saved = keras.callbacks.BackupAndRestore.on_epoch_end

    def killed(self, epoch, logs=None):
        saved(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", killed)
    with pytest.raises(KeyboardInterrupt):
        fitted(2, 0.5, epochs=3)
    monkeypatch.undo()
    monkeypatch.chdir(workdir)
    resumed = fitted(2, 0.5, epochs=3)
    assert all(np.array_equal(a, b) for a, b in zip(whole, resumed, strict=True))


def test_mixup_and_cutmix_mix_the_training_batches_and_their_labels():
    import keras

    from classifier.data.augment import mixed, mixing
    from classifier.data.inputs import from_arrays

    x = np.stack([np.full((64, 64, 3), 200 * (i % 2), "uint8") for i in range(32)])  # black and white in turn
    y = keras.utils.to_categorical(np.arange(32) % 2, 2)
    assert mixing("none", 0) is None and mixed(from_arrays(x, y, 16), None) is not None
    for name in ("mixup", "cutmix"):
        images, labels = map(np.concatenate, zip(*mixed(from_arrays(x, y, 16), mixing(name, 0)).as_numpy_iterator()))
        white = images.mean(axis=(1, 2, 3)) / 200  # the share of the white image in each mixed one
        assert len(np.unique(white.round(3))) > 8  # mixed in many proportions
        # Each label says how much of each class (CutMix's from its box before it is cut to whole pixels).
        np.testing.assert_allclose(labels[:, 1], white, atol=0.04)
        np.testing.assert_allclose(labels.sum(axis=1), 1, atol=1e-6)
