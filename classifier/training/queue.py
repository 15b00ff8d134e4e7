"""Which unlabelled photos to label next: the ones the model is least sure of,
spread over the feature space so that a batch is not twenty shots of one scene.

The model's uncertainty is the margin between its two most likely classes
(calibrated probabilities); the CANDIDATES x batch least sure photos are the
candidates, and k-center greedy (Sener & Savarese, 2018) picks the batch among
them: each pick the candidate farthest (cosine distance of the cached
features) from every labelled photo and every earlier pick.
"""

import numpy as np

CANDIDATES = 3  # candidates per photo picked: bench/label_next.py measured 1 (margin alone), 3 and 5


def margin(probabilities):
    """Top class minus second: 0 is a toss-up, 1 is sure."""
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def next_batch(probabilities, features, labelled, count):
    """Indices (into the pool's rows) of the `count` photos to label next, in order.

    probabilities: the pool's calibrated class probabilities; features: the pool's
    cached features; labelled: the labelled photos' features."""
    count = min(count, len(features))
    candidates = np.argsort(margin(probabilities), kind="stable")[:CANDIDATES * count]
    x = unit(np.asarray(features[candidates], dtype="float32"))
    known = unit(np.asarray(labelled, dtype="float32"))
    nearest = (1 - x @ known.T).min(axis=1) if len(known) else np.full(len(x), 2.0)
    chosen = []
    for _ in range(count):
        pick = int(np.argmax(nearest))
        chosen.append(int(candidates[pick]))
        nearest = np.minimum(nearest, 1 - x @ x[pick])
        nearest[pick] = -np.inf
    return chosen


ROUNDS, BATCH = 10, 20  # the queue's first ROUNDS x BATCH photos, picked batch by batch; the rest by margin


def ranked(probabilities, features, labelled):
    """Every pool row, in labelling order: ROUNDS batches of next_batch, each
    counting the batches before it as labelled, then the rest by margin alone
    (after a few rounds the model is retrained and the queue ranked again)."""
    left, order = np.arange(len(features)), []
    known = unit(np.asarray(labelled, dtype="float32"))
    for _ in range(ROUNDS):
        if not len(left):
            break
        picks = left[next_batch(probabilities[left], features[left], known, BATCH)]
        order.extend(picks)
        known = np.concatenate([known, unit(np.asarray(features[picks], dtype="float32"))])
        left = np.setdiff1d(left, picks)
    order.extend(left[np.argsort(margin(probabilities[left]), kind="stable")])
    return np.asarray(order, dtype=int)


def queued(photos, outputs, info, labelled_features, threshold):
    """label_next's rows of the photos the model saw (`outputs`: probabilities, unknown
    score and features each): those over the unknown check's `threshold` in `unknown`,
    the others ranked in `next`; `info`: models/model.json."""
    from classifier.model.heads import probabilities  # imports Keras: only where a pool is ranked
    from classifier.report import calibration

    if not photos:
        return []
    scores = calibration.scaled(probabilities(np.stack([o[0] for o in outputs])), info["temperature"])
    unknown = np.array([float(o[1]) for o in outputs])
    features = np.stack([o[2] for o in outputs])
    classes = info["classes"]
    flagged = unknown > threshold
    rows = []
    order = np.flatnonzero(~flagged)
    order = order[ranked(scores[order], features[order], labelled_features)]
    diverse = ROUNDS * BATCH
    for rank, i in enumerate(order, start=1):
        top, second = np.argsort(scores[i])[::-1][:2]
        why = f"unsure: {classes[top]} {scores[i, top]:.0%} or {classes[second]} {scores[i, second]:.0%}"
        rows.append(row(photos[i], "next", rank, classes[top], scores[i], unknown[i],
                        why + (", unlike the photos above it" if rank <= diverse else "")))
    for rank, i in enumerate(np.argsort(-unknown[flagged], kind="stable"), start=1):
        i = np.flatnonzero(flagged)[i]
        top = int(np.argmax(scores[i]))
        rows.append(row(photos[i], "unknown", rank, classes[top], scores[i], unknown[i],
                        f"none of the classes? score {unknown[i]:.3f} > threshold {threshold:.3f}"))
    return rows


def row(path, name, rank, suggested, scores, unknown_score, reason):
    top = np.sort(scores)
    return {"rank": rank, "path": path, "queue": name, "suggested": suggested, "confidence": round(float(top[-1]), 4),
            "margin": round(float(top[-1] - top[-2]), 4), "unknown_score": round(float(unknown_score), 6),
            "reason": reason}
