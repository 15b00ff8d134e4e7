"""The unknown check (classifier/model/unknown.py): its score and its threshold
(tests/test_pipeline.py checks it through the stages, on the baseline project)."""

import numpy as np
import pytest

from classifier.model import unknown


def test_the_score_is_the_cosine_distance_to_the_kth_nearest_training_photo():
    rng = np.random.default_rng(0)
    train, queries = rng.normal(size=(50, 8)), rng.normal(size=(7, 8))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    expected = 1 - np.sort(unit(queries) @ unit(train).T, axis=1)[:, -3]
    got = unknown.check(train, k=3).predict(queries, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Unit length first: a training photo's features, brighter or darker, are still at distance 0.
    np.testing.assert_allclose(unknown.check(train, k=1).predict(train[:5] * 7.0, verbose=0), 0, atol=1e-5)


def test_cross_fitted_scores_are_each_photos_distance_to_the_other_folds():
    bank = np.random.default_rng(2).normal(size=(40, 6))
    scores = unknown.cross_fitted(bank, k=2, seed=0)
    folds = np.random.default_rng(0).permutation(40) % unknown.FOLDS
    unit = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    for i in range(40):  # brute force: the 2nd nearest photo outside i's fold
        others = unit[folds != folds[i]]
        assert scores[i] == pytest.approx(1 - np.sort(others @ unit[i])[-2], abs=1e-5)
    # Against the whole bank a photo's nearest is itself: k = 1 would score every one 0.
    assert (unknown.cross_fitted(bank, k=1, seed=0) > 0.01).all()
    assert sorted(np.bincount(folds)) == [8] * 5  # five folds of one size


def test_the_threshold_lets_the_stated_share_of_val_photos_pass():
    scores = np.random.default_rng(1).permutation(np.arange(1, 201) / 100)
    threshold = unknown.threshold(scores, 0.95)
    assert (scores <= threshold).sum() == 190 and threshold == np.sort(scores)[189]  # the 190th score itself


def test_at_most_bank_training_photos_are_kept():
    rows = unknown.drawn(unknown.BANK * 3, seed=0)
    assert len(rows) == unknown.BANK == len(set(rows)) and (np.diff(rows) > 0).all()
    assert (unknown.drawn(10, seed=0) == np.arange(10)).all()


def test_evaluate_warns_where_the_flagged_share_is_not_the_promised_one():
    from classifier.report.scores import wilson
    from stages.evaluate import promise_broken

    def report(flagged, total, pass_share=0.95):
        return {"flagged": flagged / total, "flagged_ci95": wilson(flagged, total), "pass_share": pass_share}

    assert promise_broken(report(5, 100)) is None
    assert promise_broken(report(7, 90)) is None  # 7.8% [3.8%, 15.2%] holds 5%
    line = promise_broken(report(9, 90))  # 10% [5.4%, 17.9%]: the flowers figure of docs/unknown.md
    assert line.startswith("the unknown check flags 10.0% of the test photos (5.3% to 17.9%), not the 5% that")
    assert promise_broken(report(0, 100, pass_share=0.99)) is None  # 0 of 100 where 1 is expected: within [0, 3.7%]
