"""The label-next queue (classifier/training/queue.py): unsure photos, spread out."""

import numpy as np
import pytest

from classifier.model.tasks import SingleLabel
from classifier.training.queue import BATCH, ROUNDS, SWITCH, choose, cold_rounds, next_batch, ranked, typical_batch


def margin(probabilities):
    return SingleLabel().certainty(probabilities, {})


def test_a_batch_takes_unsure_photos_from_different_scenes():
    rng = np.random.default_rng(0)
    scenes = np.eye(4)  # four scenes far apart in feature space; the fourth the model is sure of
    features = np.repeat(scenes, 3, axis=0) + rng.normal(0, 0.01, (12, 4))
    top = np.r_[0.50, 0.51, 0.52, 0.55, 0.56, 0.57, 0.58, 0.59, 0.60, 0.97, 0.98, 0.99]  # scene 0 the least sure
    probabilities = np.c_[top, 1 - top]
    chosen = next_batch(margin(probabilities), features, labelled=np.empty((0, 4)), count=3)
    assert sorted(i // 3 for i in chosen) == [0, 1, 2]  # one per unsure scene, none of the sure one
    assert chosen[0] == int(np.argmin(margin(probabilities))) == 0  # nothing labelled yet: the least sure first


def test_photos_like_the_labelled_ones_wait():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    probabilities = np.full((3, 2), 0.5)  # all equally unsure
    assert next_batch(margin(probabilities), features, labelled=np.array([[1.0, 0.05]]), count=1) == [1]


def test_the_queue_ranks_every_photo_once_in_batches_that_count_the_ones_before():
    rng = np.random.default_rng(1)
    features, top = rng.normal(size=(300, 8)), rng.uniform(0.5, 1, 300)
    probabilities = np.c_[top, 1 - top]
    labelled = rng.normal(size=(2 * SWITCH, 8))  # SWITCH per class: past the cold start
    order = ranked(margin(probabilities), features, labelled, classes=2)
    assert sorted(order) == list(range(300))
    first = next_batch(margin(probabilities), features, labelled, BATCH)
    assert list(order[:BATCH]) == first
    left = np.setdiff1d(np.arange(300), first)
    second = left[next_batch(margin(probabilities)[left], features[left], np.r_[labelled, features[first]], BATCH)]
    assert list(order[BATCH:2 * BATCH]) == list(second)
    assert np.all(np.diff(margin(probabilities)[order[ROUNDS * BATCH:]]) >= 0)  # then margin alone


def scenes_and_strays(rng):
    """Three dense scenes of 40 photos the model is sure of, and 12 stray photos it is not."""
    centres = np.eye(8)[:3] * 5
    scenes = np.repeat(centres, 40, axis=0) + rng.normal(0, 0.3, (120, 8))
    strays = rng.normal(0, 3, (12, 8))
    top = np.r_[np.full(120, 0.95), np.full(12, 0.5)]
    return np.r_[scenes, strays], np.c_[top, 1 - top]


def test_with_few_labels_a_batch_is_typical_photos_of_scenes_with_no_label_yet():
    features, probabilities = scenes_and_strays(np.random.default_rng(0))
    labelled = features[:1] + 0.01  # one photo of the first scene labelled
    picks = choose(margin(probabilities), features, labelled, count=2, classes=2)
    assert sorted(i // 40 for i in picks) == [1, 2]  # the other two scenes, no stray photo
    for i in picks:  # each its scene's most typical photo: near the scene's centre
        scene = features[i // 40 * 40:(i // 40 + 1) * 40]
        assert np.linalg.norm(features[i] - scene.mean(axis=0)) < np.median(np.linalg.norm(scene - scene.mean(axis=0), axis=1))
    assert picks == typical_batch(features, labelled, 2)  # seeded: the same batch every run


def test_with_enough_labels_a_batch_is_the_least_sure_photos():
    features, probabilities = scenes_and_strays(np.random.default_rng(0))
    labelled = features[:2 * SWITCH]
    assert all(i >= 120 for i in choose(margin(probabilities), features, labelled, count=5, classes=2))  # the strays
    assert cold_rounds(2 * SWITCH, classes=2) == 0 and cold_rounds(0, classes=2) == -(-2 * SWITCH // BATCH)


def test_the_cold_start_ranks_typical_photos_first_and_says_so():
    from classifier.training.queue import queued

    features, probabilities = scenes_and_strays(np.random.default_rng(0))
    outputs = [(p, 0.0, f) for p, f in zip(probabilities, features)]
    info = {"task": "single_label", "classes": ["a", "b"], "temperature": 1.0}
    rows = queued([f"{i}.jpg" for i in range(len(features))], outputs, info, features[:1] + 0.01, threshold=1.0)
    cold = BATCH * cold_rounds(1, 2)
    assert [row["reason"].startswith("typical of photos with no label") for row in rows] == [True] * cold + [False] * (
        len(rows) - cold)
    first = [int(row["path"].split(".")[0]) for row in rows[:BATCH]]
    assert first == typical_batch(features, features[:1] + 0.01, BATCH)


def test_with_several_labels_a_batch_takes_photos_with_a_label_near_its_threshold():
    from classifier.training.queue import queued

    rng = np.random.default_rng(2)
    info = {"task": "multi_label", "classes": ["a", "b", "c"], "thresholds": [0.3, 0.9, 0.5],
            "platt": [[1.0, 0.0]] * 3}  # a = 1, b = 0: the calibrated scores are the outputs
    scores = rng.uniform(0.01, 0.99, (100, 3))
    features = rng.normal(size=(100, 8))
    outputs = [(s, 0.0, f) for s, f in zip(scores, features)]
    labelled = rng.normal(size=(3 * SWITCH, 8))  # past the cold start
    rows = queued([f"{i}.jpg" for i in range(100)], outputs, info, labelled, threshold=1.0)
    nearest = np.abs(scores - info["thresholds"]).min(axis=1)  # the distance of the label nearest its threshold
    first = [int(row["path"].split(".")[0]) for row in rows[:BATCH]]
    assert set(first) <= set(np.argsort(nearest)[:3 * BATCH])  # CANDIDATES x BATCH least sure: none of the surest
    for row in rows:
        i = int(row["path"].split(".")[0])
        assert row["certainty"] == pytest.approx(nearest[i], abs=1e-4)
        assert row["suggested"] == " ".join(name for name, s, t in zip("abc", scores[i], info["thresholds"]) if s >= t)
        label = "abc"[int(np.argmin(np.abs(scores[i] - info["thresholds"])))]
        assert row["reason"].startswith(f"unsure: {label} ")
