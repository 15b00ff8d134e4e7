"""Grad-CAM, calibration and test-time augmentation, on models trained here."""

import keras
import numpy as np
import pytest

from classifier.model.heads import small_cnn
from classifier.report import calibration, gradcam
from classifier.runtime import tta

SIZE, SQUARE = 48, 12


def squares(n, seed):
    """Grey noise with one coloured square somewhere: red means class 0, blue class 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    images = rng.normal(128, 30, (n, SIZE, SIZE, 3))
    corners = rng.integers(0, SIZE - SQUARE, (n, 2))
    for image, (top, left), label in zip(images, corners, y):
        image[top : top + SQUARE, left : left + SQUARE] = (220, 40, 40) if label == 0 else (40, 40, 220)
    return np.clip(images, 0, 255).astype("uint8"), y, corners


@pytest.fixture(scope="module")
def square_model():
    """The pipeline's from-scratch CNN, trained to tell the squares apart."""
    keras.utils.set_random_seed(0)
    x, y, _ = squares(400, seed=0)
    model = small_cnn((SIZE, SIZE, 3), 2, "categorical_crossentropy", units=0, dropout=0.0)
    model.compile(keras.optimizers.Adam(0.003), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype("float32"), keras.utils.to_categorical(y, 2), epochs=6, batch_size=32, verbose=0)
    return model


def test_gradcam_peaks_inside_the_square_that_decides_the_class(square_model):
    x, y, corners = squares(20, seed=1)
    maps, probabilities = gradcam.heatmaps(square_model, x)
    assert (probabilities.argmax(axis=1) == y).mean() >= 0.9  # the model learnt the task
    cell = SIZE // maps.shape[1]  # pixels per feature-map cell
    inside = 0
    for heatmap, (top, left) in zip(maps, corners):
        row, column = np.unravel_index(heatmap.argmax(), heatmap.shape)
        centre = ((row + 0.5) * cell, (column + 0.5) * cell)
        inside += top - cell / 2 <= centre[0] <= top + SQUARE + cell / 2 and left - cell / 2 <= centre[1] <= left + SQUARE + cell / 2
    assert inside >= 18, inside
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)


def test_ece_is_zero_when_calibrated_and_positive_when_over_confident():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    certain = np.eye(2)[y]  # always right and 100% sure
    assert calibration.ece(certain, y) == 0
    # Always 90% sure of class 0, right half of the time.
    sure = np.tile([0.9, 0.1], (8, 1))
    assert calibration.ece(sure, y) == pytest.approx(0.4)


def test_temperature_lowers_log_loss_of_an_over_confident_model_and_keeps_every_prediction():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    logits = rng.normal(0, 1, (2000, 3)) + 1.5 * np.eye(3)[y]
    over_confident = calibration.scaled(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.25)
    temperature = calibration.fit_temperature(over_confident, y)
    fixed = calibration.scaled(over_confident, temperature)
    assert temperature > 1
    assert (fixed.argmax(1) == over_confident.argmax(1)).all()
    loss = lambda p: -np.log(p[np.arange(len(y)), y]).mean()  # noqa: E731
    assert loss(fixed) < loss(over_confident)
    assert calibration.ece(fixed, y) < calibration.ece(over_confident, y)


def test_no_temperature_from_a_val_split_without_a_mistake():
    y = np.arange(40) % 2
    right = np.where(np.eye(2)[y] == 1, 0.8, 0.2)  # every one right, and under-confident
    assert calibration.fit_temperature(right, y) == 1.0
    right[0] = [0.3, 0.7]  # one mistake: the fit is bounded again, and sharpens
    assert calibration.fit_temperature(right, y) < 1


def test_flip_average_is_the_same_for_an_image_and_its_mirror(square_model):
    x = squares(4, seed=2)[0]
    predict = lambda batch: square_model.predict_on_batch(batch.astype("float32"))  # noqa: E731
    np.testing.assert_allclose(tta.flip_average(predict, x), tta.flip_average(predict, x[:, :, ::-1]), atol=1e-6)
    assert not np.allclose(predict(x), predict(x[:, :, ::-1]), atol=1e-6)  # the model itself is not symmetric
