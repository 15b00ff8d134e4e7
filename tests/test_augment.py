"""RandomAffine draws what Keras' RandomFlip, RandomRotation, RandomZoom and
RandomTranslation would, each within its range, in one resampling."""

import math

import numpy as np
import tensorflow as tf

from classifier.data.augment import RandomAffine, warp

SIZE, COUNT = 64, 200
CENTRE = (SIZE - 1) / 2


def blob(x, y):
    """COUNT copies of a small bright spot at (x, y) on black."""
    rows, columns = np.mgrid[:SIZE, :SIZE]
    spot = np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / 2.0).astype("float32")
    return np.repeat(spot[None, :, :, None], COUNT, axis=0).repeat(3, axis=3) * 255


def spots(layer, images):
    """Where each output's spot ended up, relative to the centre: (dx, dy) per image."""
    out = np.asarray(layer(images, training=True))[..., 0]
    rows, columns = np.mgrid[:SIZE, :SIZE]
    weight = out.sum(axis=(1, 2))
    return np.stack([(out * columns).sum(axis=(1, 2)) / weight, (out * rows).sum(axis=(1, 2)) / weight], 1) - CENTRE


def test_nothing_asked_changes_nothing():
    images = blob(10, 20)
    np.testing.assert_array_equal(RandomAffine(seed=1)(images, training=True), images)
    np.testing.assert_array_equal(RandomAffine("horizontal", 0.1, seed=1)(images, training=False), images)


def test_flip_mirrors_about_half_of_the_images_exactly():
    images = np.random.default_rng(0).integers(0, 256, (COUNT, 16, 16, 3)).astype("float32")
    out = np.asarray(RandomAffine("horizontal", seed=1)(images, training=True))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == images, axis=(1, 2, 3))
    assert np.all(mirrored | kept)
    assert 0.35 < mirrored.mean() < 0.65


def test_rotation_keeps_the_distance_and_turns_at_most_its_fraction_of_a_turn():
    before = np.array([20.0, 0.0])
    after = spots(RandomAffine(rotation=0.05, seed=1), blob(CENTRE + 20, CENTRE))
    np.testing.assert_allclose(np.hypot(*after.T), 20, atol=0.3)
    turned = np.degrees(np.arctan2(after[:, 1], after[:, 0]) - math.atan2(before[1], before[0]))
    assert np.abs(turned).max() <= 18 + 0.5 and turned.min() < -9 and turned.max() > 9


def test_zoom_scales_the_distance_by_at_most_its_fraction():
    after = spots(RandomAffine(zoom=0.1, seed=1), blob(CENTRE + 20, CENTRE))
    ratio = np.hypot(*after.T) / 20  # sampling at 1 + z times the distance moves the spot by 1 / (1 + z)
    assert ratio.min() >= 1 / 1.1 - 0.01 and ratio.max() <= 1 / 0.9 + 0.01
    assert ratio.min() < 0.95 and ratio.max() > 1.05
    np.testing.assert_allclose(after[:, 1], 0, atol=0.05)


def test_translation_shifts_by_at_most_its_fraction_of_the_size():
    after = spots(RandomAffine(translation=0.1, seed=1), blob(CENTRE, CENTRE))
    assert np.abs(after).max() <= 0.1 * SIZE + 0.05
    assert after.min(axis=0).max() < -3 and after.max(axis=0).min() > 3


def test_same_seed_same_views_and_the_state_is_what_epoch_seeds_sets():
    images = blob(30, 20)
    first, second = (RandomAffine("horizontal", 0.05, 0.1, 0.1, seed=7) for _ in range(2))
    np.testing.assert_array_equal(first(images), second(images))
    assert [v.path.rsplit("/", 1)[-1] for v in first.variables] == ["seed_generator_state"]
    assert not np.array_equal(first(images), first(images))  # the state moves on between calls


def test_inside_tf_data_each_batch_gets_its_own_draws():
    layer = RandomAffine("horizontal", 0.05, 0.1, 0.1, seed=3)
    data = tf.data.Dataset.from_tensor_slices(blob(30, 20)[:8]).batch(4).map(lambda x: layer(x, training=True))
    first, second = data.as_numpy_iterator()
    assert first.shape == (4, SIZE, SIZE, 3) and not np.array_equal(first, second)


def test_the_resampling_is_tensorflows_with_reflected_borders():
    images = tf.image.resize(np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 3)), (SIZE, SIZE)).numpy()
    angle, scale = 0.3, 1.2  # turned and zoomed out: the corners sample far outside the image
    a, b = math.cos(angle) * scale, math.sin(angle) * scale
    transforms = np.array([[a, -b, -9.0, b, a, 4.5, 0, 0]] * 2, "float32")
    expected = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[SIZE, SIZE], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")
    got = warp(images, transforms[:, :6].reshape(-1, 2, 3))
    np.testing.assert_allclose(got, expected, atol=0.01)
