"""The label-next queue (classifier/training/queue.py): unsure photos, spread out."""

import numpy as np

from classifier.training.queue import BATCH, ROUNDS, margin, next_batch, ranked


def test_a_batch_takes_unsure_photos_from_different_scenes():
    rng = np.random.default_rng(0)
    scenes = np.eye(4)  # four scenes far apart in feature space; the fourth the model is sure of
    features = np.repeat(scenes, 3, axis=0) + rng.normal(0, 0.01, (12, 4))
    top = np.r_[0.50, 0.51, 0.52, 0.55, 0.56, 0.57, 0.58, 0.59, 0.60, 0.97, 0.98, 0.99]  # scene 0 the least sure
    probabilities = np.c_[top, 1 - top]
    chosen = next_batch(probabilities, features, labelled=np.empty((0, 4)), count=3)
    assert sorted(i // 3 for i in chosen) == [0, 1, 2]  # one per unsure scene, none of the sure one
    assert chosen[0] == int(np.argmin(margin(probabilities))) == 0  # nothing labelled yet: the least sure first


def test_photos_like_the_labelled_ones_wait():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    probabilities = np.full((3, 2), 0.5)  # all equally unsure
    assert next_batch(probabilities, features, labelled=np.array([[1.0, 0.05]]), count=1) == [1]


def test_the_queue_ranks_every_photo_once_in_batches_that_count_the_ones_before():
    rng = np.random.default_rng(1)
    features, top = rng.normal(size=(300, 8)), rng.uniform(0.5, 1, 300)
    probabilities = np.c_[top, 1 - top]
    order = ranked(probabilities, features, labelled=features[:0])
    assert sorted(order) == list(range(300))
    first = next_batch(probabilities, features, features[:0], BATCH)
    assert list(order[:BATCH]) == first
    left = np.setdiff1d(np.arange(300), first)
    second = left[next_batch(probabilities[left], features[left], features[first], BATCH)]
    assert list(order[BATCH:2 * BATCH]) == list(second)
    assert np.all(np.diff(margin(probabilities)[order[ROUNDS * BATCH:]]) >= 0)  # then margin alone
