"""finetune's rule for dropping fine-tuning: only where the val split shows that it hurt."""

import numpy as np
import pytest

from classifier.training.finetuning import hurt


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
