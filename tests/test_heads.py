"""Heads: both losses train, and their outputs become one probability per class."""

import keras
import numpy as np
import pytest

from classifier.errors import UserError
from classifier.model.heads import (
    class_weights,
    dense_head,
    logistic_head,
    prior_shifted,
    probabilities,
    shift_prior,
    small_cnn,
    targets,
)

HEAD = {"units": 16, "dropout": 0.1}


def separable(n=80, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.normal(y[:, None] * 2.0, 1.0, (n, dim)).astype("float32"), y


@pytest.mark.parametrize("loss, units", [("categorical_crossentropy", 2), ("binary_crossentropy", 1)])
def test_both_losses_learn_two_classes(loss, units):
    keras.utils.set_random_seed(0)
    x, y = separable()
    head = dense_head(x.shape[1:], 2, loss, **HEAD)
    assert head.output_shape == (None, units)
    head.compile(keras.optimizers.Adam(0.01), loss=loss)
    head.fit(x, targets(y, 2, loss), epochs=30, verbose=0)
    p = probabilities(head.predict(x, verbose=0))
    assert p.shape == (80, 2) and np.allclose(p.sum(axis=1), 1)
    assert (p.argmax(axis=1) == y).mean() >= 0.9


def test_binary_loss_needs_two_classes():
    with pytest.raises(UserError, match="binary_crossentropy needs exactly 2 classes, found 3"):
        dense_head((8,), 3, "binary_crossentropy", **HEAD)


def test_cnn_baseline_takes_raw_pixels():
    cnn = small_cnn((32, 32, 3), 10, "categorical_crossentropy", **HEAD)
    out = cnn.predict(np.full((2, 32, 32, 3), 255, "float32"), verbose=0)
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy"])
def test_mixed_precision_keeps_the_output_float32(loss):
    """train.mixed_precision: float16 inside, a float32 output for a stable loss (one step on the CPU)."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        head = dense_head((16,), 2, loss, units=8, dropout=0.0)
        head.compile(optimizer="adam", loss=loss)
        x = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
        head.fit(x, targets(np.arange(8) % 2, 2, loss), epochs=1, verbose=0)
        assert head.layers[-2].compute_dtype == "float16"  # the hidden layer runs in float16
        assert head.get_layer("classes").compute_dtype == "float32"
        assert head.predict(x, verbose=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_balanced_weights():
    rare = np.array([0] * 90 + [1] * 10)
    assert class_weights(rare, 2) == pytest.approx({0: 100 / 180, 1: 100 / 20})
    assert class_weights(np.arange(30) % 3, 3) is None  # all 1: no weights at all


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy"])
def test_logit_adjustment_decides_as_if_classes_were_equally_common(loss):
    keras.utils.set_random_seed(0)
    head = dense_head((8,), 2, loss, **HEAD)
    x = np.random.default_rng(1).normal(size=(50, 8)).astype("float32")
    labels = np.array([0] * 45 + [1] * 5)  # class 1 is 10% of the training photos
    before = probabilities(head.predict(x, verbose=0))
    shift_prior(head, labels, 2)
    after = probabilities(head.predict(x, verbose=0))
    assert after == pytest.approx(prior_shifted(before, labels, 2), abs=1e-5)
    odds = (after[:, 1] / after[:, 0]) / (before[:, 1] / before[:, 0])
    assert odds == pytest.approx(np.full(50, 9.0), rel=1e-4)  # the rare class's odds times 45/5
    shift_prior(head, labels, 2, sign=-1)
    assert probabilities(head.predict(x, verbose=0)) == pytest.approx(before, abs=1e-6)


@pytest.mark.parametrize("classes, loss", [(3, "categorical_crossentropy"), (2, "categorical_crossentropy"),
                                           (2, "binary_crossentropy")])
def test_logistic_head_is_scikit_learns_regression(classes, loss):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.arange(120) % classes
    x = (rng.normal(y[:, None] * 0.7, 1.0, (120, 6)) * 3 + 5).astype("float32")  # far from standardised
    head, c = logistic_head(x, y, classes, loss, balanced=False)
    assert c in (0.001, 0.01, 0.1, 1.0) and head.get_layer("classes").units == (1 if loss == "binary_crossentropy" else classes)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    expected = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y).predict_proba((x - mean) / scale)
    assert probabilities(head.predict(x, verbose=0)) == pytest.approx(expected, abs=2e-3)


class Fixed:
    """A 'model' that gives the true class probability `p`; x's one column is the row's
    number, whose parity is its label. It records the rows it was fitted on and scored on."""

    def __init__(self, p, fitted_on, log):
        self.p, self.fitted_on, self.log = p, set(fitted_on[:, 0].astype(int)), log

    def predict(self, x, verbose=0):
        rows = x[:, 0].astype(int)
        self.log.append((self.fitted_on, set(rows)))
        out = np.full((len(rows), 2), 1 - self.p)
        out[np.arange(len(rows)), rows % 2] = self.p
        return out


def test_cross_validation_scores_every_row_once_on_folds_it_was_not_fitted_on():
    from classifier.report.calibration import calibrated_losses
    from classifier.model import tasks
    from classifier.training.choice import cross_validated_losses

    x = np.arange(40, dtype="float32")[:, None]
    y = np.arange(40) % 2
    log = []
    losses = cross_validated_losses({"sure": lambda x, y: Fixed(0.9, x, log), "unsure": lambda x, y: Fixed(0.6, x, [])},
                                    x, y, seed=0, task=tasks.named("single_label"))
    assert [len(fitted) for fitted, _ in log] == [32] * 5  # fitted on 4 folds of 8, 5 times
    assert all(not fitted & scored for fitted, scored in log)  # scored on the fold left out
    assert sorted(row for _, scored in log for row in scored) == list(range(40))  # every row once
    assert losses["sure"] < losses["unsure"]
    # Each score: the log loss after temperature scaling, averaged over the rows.
    assert losses["sure"] == pytest.approx(calibrated_losses(np.tile([[0.9, 0.1], [0.1, 0.9]], (4, 1)), y[:8]).mean(),
                                           abs=1e-5)
