"""Several labels per photo: per-label calibration and thresholds, and the scores
of label sets (classifier/report/label_sets.py), against brute force and sklearn."""

import numpy as np
import pytest
from sklearn import metrics

from classifier.report import label_sets


def predictions(photos=120, labels=4, seed=0):
    """Labels and noisy sigmoid outputs that lean towards them, each label shifted
    its own way (so that one threshold cannot suit all)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((photos, labels)) < 0.35).astype(int)
    logits = 2.5 * (y - 0.5) + rng.normal(0, 1.2, y.shape) + np.linspace(-2, 2, labels)
    return y, 1 / (1 + np.exp(-logits))


def brute_force_f1(scores, truth):
    """The best F1 of any threshold (every score tried)."""
    return max(metrics.f1_score(truth, scores >= t, zero_division=0) for t in np.unique(scores))


def test_each_threshold_is_half_the_best_f1_of_a_scan_of_the_val_predictions():
    y, p = predictions()
    platt = label_sets.fit_platt(p, y)
    calibrated = label_sets.calibrated(p, platt)
    thresholds = label_sets.fit_thresholds(calibrated, y)
    for label, threshold in enumerate(thresholds):
        assert threshold == pytest.approx(brute_force_f1(calibrated[:, label], y[:, label]) / 2)
    assert len(set(np.round(thresholds, 3))) > 1  # one per label, not one for all


def test_half_the_best_f1_is_the_f1_best_threshold_of_calibrated_scores():
    """Lipton et al. (2014): where scores are the true probabilities, the threshold
    that maximises F1 is half the best F1. Many photos whose labels are drawn with
    their scores' probabilities: the two agree."""
    rng = np.random.default_rng(6)
    scores = rng.beta(0.7, 1.5, 200_000)
    truth = (rng.random(scores.size) < scores).astype(int)
    cuts = np.linspace(0.05, 0.95, 181)
    f1 = [metrics.f1_score(truth, scores >= cut) for cut in cuts]
    assert cuts[int(np.argmax(f1))] == pytest.approx(label_sets.best_f1(scores, truth) / 2, abs=0.02)


def test_platt_scaling_lowers_each_labels_log_loss_and_keeps_its_order():
    y, p = predictions(seed=1)
    calibrated = label_sets.calibrated(p, label_sets.fit_platt(p, y))
    for label in range(y.shape[1]):
        assert metrics.log_loss(y[:, label], calibrated[:, label]) < metrics.log_loss(y[:, label], p[:, label])
        assert (np.argsort(calibrated[:, label], kind="stable") == np.argsort(p[:, label], kind="stable")).all()


def test_a_label_with_too_few_val_positives_keeps_its_output_and_half():
    y, p = predictions()
    y[:, 2] = 0
    y[:label_sets.MIN_POSITIVES - 1, 2] = 1
    platt = label_sets.fit_platt(p, y)
    assert platt[2] == [1.0, 0.0]
    np.testing.assert_allclose(label_sets.calibrated(p, platt)[:, 2], p[:, 2], atol=1e-9)
    assert label_sets.fit_thresholds(p, y)[2] == label_sets.FALLBACK_THRESHOLD


def test_scores_are_sklearns_with_intervals_around_them():
    y, p = predictions(photos=80, seed=2)
    thresholds = [0.3, 0.5, 0.6, 0.7]
    said = p >= np.array(thresholds)
    got = label_sets.scores(y, p, thresholds)
    assert got["map_macro"] == pytest.approx(metrics.average_precision_score(y, p, average="macro"), abs=1e-4)
    assert got["map_micro"] == pytest.approx(metrics.average_precision_score(y, p, average="micro"), abs=1e-4)
    assert got["f1_macro"] == pytest.approx(metrics.f1_score(y, said, average="macro"), abs=1e-4)
    assert got["subset_accuracy"] == pytest.approx((said == y).all(axis=1).mean(), abs=1e-4)
    assert got["hamming_loss"] == pytest.approx((said != y).mean(), abs=1e-4)
    for name in label_sets.SCORES:
        interval = got[f"{name}_ci95"]
        assert interval["low"] <= got[name] <= interval["high"] and interval["low"] < interval["high"], name


def test_per_label_table_is_worst_first_and_counts_the_test_photos():
    y, p = predictions(seed=3)
    table = label_sets.per_label(y, p, [0.5] * 4, ["desert", "sea", "sunset", "trees"])
    assert table.f1.is_monotonic_increasing
    assert dict(zip(table.label, table.support)) == dict(zip(["desert", "sea", "sunset", "trees"], y.sum(axis=0)))
    row = table.set_index("label").loc["sea"]
    assert row.recall == pytest.approx(((p[:, 1] >= 0.5) & (y[:, 1] == 1)).sum() / y[:, 1].sum(), abs=1e-4)
    assert row.ap == pytest.approx(metrics.average_precision_score(y[:, 1], p[:, 1]), abs=1e-4)


def test_each_bootstrap_draw_is_sklearns_score_of_the_photos_drawn():
    y, p = predictions(photos=60, seed=4)
    p = np.round(p, 1)  # ties, which average precision takes together
    said = p >= 0.5
    counts = np.random.default_rng(5).multinomial(60, np.full(60, 1 / 60), size=3)
    got = label_sets.weighted(y.astype(bool), p, said, counts)
    for row, count in enumerate(counts):
        drawn = np.repeat(np.arange(60), count)
        expected = {
            "map_macro": metrics.average_precision_score(y[drawn], p[drawn], average="macro"),
            "map_micro": metrics.average_precision_score(y[drawn], p[drawn], average="micro"),
            "f1_macro": metrics.f1_score(y[drawn], said[drawn], average="macro", zero_division=0),
            "f1_micro": metrics.f1_score(y[drawn], said[drawn], average="micro", zero_division=0),
            "subset_accuracy": metrics.accuracy_score(y[drawn], said[drawn]),
            "hamming_loss": metrics.hamming_loss(y[drawn], said[drawn]),
        }
        for name, value in expected.items():
            assert got[name][row] == pytest.approx(value, abs=1e-9), name
