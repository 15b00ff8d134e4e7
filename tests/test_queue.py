"""The label-next queue (classifier/training/queue.py): unsure photos, spread out."""

import numpy as np

from classifier.training.queue import margin, next_batch


def test_a_batch_takes_unsure_photos_from_different_scenes():
    rng = np.random.default_rng(0)
    scenes = np.eye(4)  # four scenes far apart in feature space; the fourth the model is sure of
    features = np.repeat(scenes, 3, axis=0) + rng.normal(0, 0.01, (12, 4))
    top = np.r_[0.50, 0.51, 0.52, 0.55, 0.56, 0.57, 0.58, 0.59, 0.60, 0.97, 0.98, 0.99]  # scene 0 the least sure
    probabilities = np.c_[top, 1 - top]
    chosen = next_batch(probabilities, features, labelled=np.empty((0, 4)), count=3)
    assert sorted(i // 3 for i in chosen) == [0, 1, 2]  # one per unsure scene, none of the sure one
    assert margin(probabilities)[chosen[0]] <= 0.2


def test_photos_like_the_labelled_ones_wait():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    probabilities = np.full((3, 2), 0.5)  # all equally unsure
    assert next_batch(probabilities, features, labelled=np.array([[1.0, 0.05]]), count=1) == [1]
