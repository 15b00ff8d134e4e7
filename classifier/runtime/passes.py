"""Passes of a predictor over a tf.data split: plain, or averaged with the mirror image.
"""

import numpy as np
from sklearn import metrics
from tqdm import tqdm

from classifier.report.scores import with_ci
from classifier.runtime import tta


def passes(predict, data, count, desc):
    """predict(images) over the batches, with a progress bar: an array, or a dict
    of arrays where predict returns dicts."""
    rows = []
    with tqdm(total=count, desc=desc, unit="img") as bar:
        for images, _ in data:
            rows.append(predict(images.numpy()))
            bar.update(len(images))
    if isinstance(rows[0], dict):
        return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}
    return np.concatenate(rows)


def flip_averaged(predict, data, y):
    """Test accuracy (with its interval) and loss with test-time flip averaging."""
    probabilities = passes(lambda images: tta.flip_average(predict, images), data, len(y), "evaluate: flip averaging")
    labels = list(range(probabilities.shape[1]))
    return {**with_ci("accuracy", (probabilities.argmax(axis=1) == y).sum(), len(y)),
            "loss": metrics.log_loss(y, probabilities, labels=labels)}
