"""Which unlabelled photos to label next: the ones the model is least sure of,
spread over the feature space so that a batch is not twenty shots of one scene;
and, while there are few labels, the most typical photos instead.

The model's uncertainty is the task's `certainty` (classifier/model/tasks.py):
the margin between the two most likely classes (calibrated probabilities), or
with several labels per photo, the distance of the label nearest its
threshold; the CANDIDATES x batch least sure photos are the
candidates, and k-center greedy (Sener & Savarese, 2018) picks the batch among
them: each pick the candidate farthest (cosine distance of the cached
features) from every labelled photo and every earlier pick.

The cold start: with fewer than SWITCH labelled photos per class a model's
confidence is not worth following (Hacohen, Dekel & Weinshall, ICML 2022), so
batches are TypiClust's picks instead (scikit-activeml): k-means over the
features into as many clusters as labelled photos + the batch, and from each of
the largest clusters with no labelled photo, its most typical photo (the
densest among its nearest neighbours). bench/label_next.py measured the switch
against the queue alone, TypiClust alone, ProbCover, CoreSet, margin and random
choice (bench/RESULTS.md).
"""

import numpy as np

CANDIDATES = 3  # candidates per photo picked: bench/label_next.py measured 1 (margin alone), 3 and 5


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def next_batch(certainty, features, labelled, count):
    """Indices (into the pool's rows) of the `count` photos to label next, in order.

    certainty: how sure the model is of each pool photo (0 a toss-up); features: the
    pool's cached features; labelled: the labelled photos' features."""
    count = min(count, len(features))
    candidates = np.argsort(certainty, kind="stable")[:CANDIDATES * count]
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


ROUNDS, BATCH = 10, 20  # the queue's first ROUNDS x BATCH photos, picked batch by batch; the rest by certainty
SWITCH = 10  # labelled photos per class from which the queue follows the model (bench/label_next.py)


def typical_batch(features, labelled, count, seed=0):
    """Indices (into the pool's rows) of `count` typical photos of clusters that hold no
    labelled photo: TypiClust over unit-length features, its k-means seeded too
    (scikit-activeml's #503)."""
    from skactiveml.pool import TypiClust

    labelled = np.asarray(labelled, dtype="float32").reshape(-1, features.shape[1])
    x = unit(np.concatenate([labelled, np.asarray(features, dtype="float32")]))
    y = np.full(len(x), np.nan)
    y[:len(labelled)] = 0  # only which photos are labelled counts, not their class
    finder = TypiClust(random_state=seed, cluster_algo_dict={"random_state": seed, "n_init": 1})
    return [int(i) - len(labelled) for i in finder.query(x, y, batch_size=min(count, len(features)))]


def choose(certainty, features, labelled, count, classes, seed=0):
    """The next batch: typical photos while the labelled ones are fewer than SWITCH per
    class (or label), the least sure photos, spread out, from there."""
    if len(labelled) < SWITCH * classes:
        return typical_batch(features, labelled, count, seed)
    return next_batch(certainty, features, labelled, count)


def cold_rounds(labelled, classes):
    """How many of ranked's batches are typical photos (the cold start), for `labelled` photos."""
    return min(ROUNDS, max(0, -(-(SWITCH * classes - labelled) // BATCH)))


def ranked(certainty, features, labelled, classes):
    """Every pool row, in labelling order: ROUNDS batches of `choose`, each
    counting the batches before it as labelled, then the rest by certainty alone
    (after a few rounds the model is retrained and the queue ranked again)."""
    left, order = np.arange(len(features)), []
    known = unit(np.asarray(labelled, dtype="float32"))
    for _ in range(ROUNDS):
        if not len(left):
            break
        picks = left[choose(certainty[left], features[left], known, BATCH, classes)]
        order.extend(picks)
        known = np.concatenate([known, unit(np.asarray(features[picks], dtype="float32"))])
        left = np.setdiff1d(left, picks)
    order.extend(left[np.argsort(certainty[left], kind="stable")])
    return np.asarray(order, dtype=int)


def queued(photos, outputs, info, labelled_features, threshold):
    """label_next's rows of the photos the model saw (`outputs`: probabilities, unknown
    score and features each): those over the unknown check's `threshold` in `unknown`,
    the others ranked in `next`; `info`: models/model.json."""
    from classifier.model import tasks  # imports Keras: only where a pool is ranked

    if not photos:
        return []
    task = tasks.of_model(info)
    scores = task.calibrated(task.probabilities(np.stack([o[0] for o in outputs])), info)
    certainty = task.certainty(scores, info)
    unknown = np.array([float(o[1]) for o in outputs])
    features = np.stack([o[2] for o in outputs])
    classes = len(info["classes"])
    flagged = unknown > threshold
    rows = []
    order = np.flatnonzero(~flagged)
    order = order[ranked(certainty[order], features[order], labelled_features, classes)]
    typical, diverse = BATCH * cold_rounds(len(labelled_features), classes), ROUNDS * BATCH
    for rank, i in enumerate(order, start=1):
        why = task.doubt(scores[i], info)
        if rank <= typical:
            why = f"typical of photos with no label near them yet (the model guesses {task.guess(scores[i], info)})"
        rows.append(row(photos[i], "next", rank, task.suggestion(scores[i], info), scores[i], certainty[i], unknown[i],
                        why + (", unlike the photos above it" if typical < rank <= diverse else "")))
    for rank, i in enumerate(np.argsort(-unknown[flagged], kind="stable"), start=1):
        i = np.flatnonzero(flagged)[i]
        rows.append(row(photos[i], "unknown", rank, task.suggestion(scores[i], info), scores[i], certainty[i],
                        unknown[i], f"none of the classes? score {unknown[i]:.3f} > threshold {threshold:.3f}"))
    return rows


def row(path, name, rank, suggested, scores, certainty, unknown_score, reason):
    return {"rank": rank, "path": path, "queue": name, "suggested": suggested, "confidence": round(float(scores.max()), 4),
            "certainty": round(float(certainty), 4), "unknown_score": round(float(unknown_score), 6), "reason": reason}
