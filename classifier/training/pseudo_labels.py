"""Pseudo-labels (train.pseudo_labels: confident): unlabelled pool photos the
model is sure of, trained on with its own class (self-training; Lee, 2013). Only
in the training set of `train`'s head: val and test stay photos a person
labelled, so that every figure is measured on true labels, and fine-tuning
trains on the labelled photos alone.

The judge is the pipeline's logistic head fitted on the labelled training
photos' cached features, calibrated on val (temperature scaling). A photo
qualifies when its calibrated confidence reaches CONFIDENCE and the unknown
check (classifier/model/unknown.py over the same features, its threshold set as
the `unknown` stage sets it; `pool_features` applies it) does not flag it: a
photo of none of the classes must not be taught as one of them. Class-balanced:
at most as many per class as the mean number of labelled photos per class, the
most confident first, so that a common class, which the model is sure of most
often, does not swallow the pool and push the others out (Zou et al.,
"class-balanced self-training", ECCV 2018). bench/label_next.py measures it with
the labelling replay (bench/RESULTS.md): a larger cap or a higher confidence did
no better.
"""

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95  # calibrated probability of the top class


def confident(probabilities, labelled_per_class, flagged=None):
    """(indices into the pool's rows, their classes) to train on: per class at most
    `labelled_per_class` photos with probability >= CONFIDENCE, none of those `flagged`."""
    probabilities = np.asarray(probabilities)
    guess, sure = probabilities.argmax(axis=1), probabilities.max(axis=1)
    usable = sure >= CONFIDENCE
    if flagged is not None:
        usable &= ~np.asarray(flagged, dtype=bool)
    cap = int(labelled_per_class)
    picks = [np.flatnonzero(usable & (guess == c)) for c in range(probabilities.shape[1])]
    picks = np.concatenate([p[np.argsort(-sure[p], kind="stable")][:cap] for p in picks]).astype(int)
    return picks, guess[picks]


@dataclass
class PseudoLabels:
    picks: np.ndarray  # indices into the pool's rows
    classes: np.ndarray  # the class each is given
    confidence: np.ndarray  # its calibrated confidence


def flagged(x_train, x_val, x_pool, p):
    """Which pool photos the unknown check flags, over the backbone's features: its
    threshold set as the `unknown` stage sets it (unknown.k, unknown.pass_share)."""
    from classifier.model import unknown

    bank = x_train[unknown.drawn(len(x_train), p.train.seed)]
    check = unknown.check(bank, p.unknown.k)
    k = check.get_layer("unknown_score").k
    known = np.concatenate([check.predict(x_val, verbose=0), unknown.cross_fitted(bank, k, p.train.seed)])
    return check.predict(x_pool, verbose=0) > unknown.threshold(known, p.unknown.pass_share)


def chosen(x_train, y_train, x_val, y_val, x_pool, flags, p, task, classes):
    """The pool photos (cached features `x_pool`, `flags` from `flagged`) to train on,
    the class each is given and its confidence."""
    head = task.logistic_head(x_train, y_train, classes, p.train.loss, balanced=p.train.class_weight == "balanced")[0]
    calibration = task.calibration(task.probabilities(head.predict(x_val, verbose=0)), y_val)
    probabilities = task.calibrated(task.probabilities(head.predict(x_pool, verbose=0)), calibration)
    picks, given = confident(probabilities, len(y_train) / classes, flags)
    return PseudoLabels(picks, given, probabilities.max(axis=1)[picks])
