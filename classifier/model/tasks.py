"""What changes with the task (model.task, resolved once by params.task()): how
targets are encoded, the output layer and its loss, how outputs become
calibrated probabilities and decisions. Stages ask `of(p)` (or, reading a
model.json, `named(info["task"])`); only where the outputs themselves differ
does a stage branch on the task's name: evaluate's report, the audit's label
issues, the model card, and the app's Review and Label views (a label set to
choose: a multi-select and check boxes).

single_label: one class per photo; softmax (or, with train.loss
binary_crossentropy and two classes, one sigmoid unit); temperature scaling;
the most probable class. multi_label: several labels per photo, none allowed; one
sigmoid unit per label and binary cross-entropy; Platt scaling and a threshold
(half the best val F1) per label, fitted on val (classifier/report/label_sets.py); every
label over its threshold.
"""

import keras
import numpy as np
from sklearn.model_selection import StratifiedKFold

from classifier.model import heads
from classifier.report import calibration, label_sets


class SingleLabel:
    name = "single_label"

    @property
    def metrics(self):
        return ["accuracy"]  # logged per epoch

    def output_layer(self, classes, loss):
        return heads.output_layer(classes, loss)

    def loss(self, t, y_train, classes):
        return heads.loss_function(t.loss, t.label_smoothing)

    targets = staticmethod(heads.targets)
    probabilities = staticmethod(heads.probabilities)

    def class_weights(self, y, classes, balanced):
        return heads.class_weights(y, classes) if balanced else None

    def shift_prior(self, model, y, classes, sign=1):
        heads.shift_prior(model, y, classes, sign)

    prior_shifted = staticmethod(heads.prior_shifted)

    def logistic_head(self, x, y, classes, loss, *, balanced):
        return heads.logistic_head(x, y, classes, loss, balanced=balanced)

    def folds(self, y, count, seed):
        return StratifiedKFold(max(2, min(count, np.bincount(y).min())), shuffle=True, random_state=seed)

    losses = staticmethod(calibration.calibrated_losses)

    def calibration(self, probabilities, y):
        """What model.json keeps to calibrate the model's outputs (fitted on val)."""
        return {"temperature": calibration.fit_temperature(probabilities, y)}

    def calibrated(self, probabilities, info):
        return calibration.scaled(probabilities, info["temperature"])

    def decide(self, calibrated, info):
        """The class index of each photo."""
        return calibrated.argmax(axis=1)

    decision = "label"  # predict's key for the decision, null where --reject-unknown rejects it

    def line(self, row, info, top_k):
        """predict's line for one photo's calibrated probabilities: its class and confidence."""
        ranked = row.argsort()[::-1]
        line = {"label": info["classes"][ranked[0]], "confidence": float(row[ranked[0]])}
        if top_k:
            line["top_k"] = [{"label": info["classes"][i], "confidence": float(row[i])} for i in ranked[:top_k]]
        return line

    def summary(self, line):
        return f"{line['label']}, {line['confidence']:.1%}"

    def readout(self, line, info):
        """The app's (label, confidence, scores) texts for predict's line (with top_k)."""
        return line["label"], f"{line['confidence']:.1%}", ", ".join(
            f"{entry['label']} {entry['confidence']:.1%}" for entry in line["top_k"])

    def certainty(self, calibrated, info):
        """How sure the model is of each photo, for the label-next queue: the margin
        between its two most likely classes (0 a toss-up)."""
        top = np.sort(calibrated, axis=1)
        return top[:, -1] - top[:, -2]

    def suggestion(self, row, info):
        """The label-next queue's suggestion for one photo: its most likely class."""
        return info["classes"][int(np.argmax(row))]

    def guess(self, row, info):
        """The suggestion and how sure, in words."""
        return f"{self.suggestion(row, info)} {row.max():.0%}"

    def doubt(self, row, info):
        """Why the queue asks about the photo: its two most likely classes."""
        first, second = np.argsort(row)[::-1][:2]
        return f"unsure: {info['classes'][first]} {row[first]:.0%} or {info['classes'][second]} {row[second]:.0%}"


class MultiLabel:
    name = "multi_label"

    @property
    def metrics(self):
        # Logged per epoch as "accuracy", as one class per photo's: the share of right 0/1 decisions at 0.5.
        return [keras.metrics.BinaryAccuracy(name="accuracy")]

    def output_layer(self, classes, loss):
        # float32 output keeps the loss stable under mixed precision.
        return keras.layers.Dense(classes, activation="sigmoid", name="classes", dtype="float32")

    def loss(self, t, y_train, classes):
        """Binary cross-entropy per label, averaged over labels; with
        train.class_weight balanced each label's photos with it and without it weigh
        alike: n / (2 x positives) and n / (2 x negatives), as scikit-learn's
        balanced weights for that label alone (train.label_smoothing: targets
        1 - s/2 and s/2)."""
        if t.class_weight != "balanced":
            return keras.losses.BinaryCrossentropy(label_smoothing=t.label_smoothing)
        positive, negative = balanced_weights(y_train)
        smoothing = t.label_smoothing

        def weighted_binary_crossentropy(truth, predicted):
            truth = keras.ops.cast(truth, "float32") * (1 - smoothing) + smoothing / 2
            predicted = keras.ops.clip(keras.ops.cast(predicted, "float32"), 1e-7, 1 - 1e-7)
            each = -(positive * truth * keras.ops.log(predicted) + negative * (1 - truth) * keras.ops.log(1 - predicted))
            return keras.ops.mean(each, axis=-1)

        return weighted_binary_crossentropy

    def targets(self, y, classes, loss):
        return np.asarray(y, dtype="float32")

    def probabilities(self, outputs):
        return np.asarray(outputs, dtype="float64")

    def class_weights(self, y, classes, balanced):
        return None  # Keras' class_weight is for one class per photo: the weights are in the loss

    def shift_prior(self, model, y, classes, sign=1):
        """Nothing: each label's threshold, fitted on val, decides how common it is."""

    def prior_shifted(self, probabilities, y, classes):
        return probabilities

    def logistic_head(self, x, y, classes, loss, *, balanced):
        return one_vs_rest(x, y, balanced=balanced)

    def folds(self, y, count, seed):
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        return MultilabelStratifiedKFold(max(2, min(count, int(y.sum(axis=0).min()))), shuffle=True, random_state=seed)

    def losses(self, probabilities, y):
        """Each photo's binary cross-entropy (mean over labels) after Platt scaling
        fitted on these photos: how the calibrated scores fare."""
        scaled = label_sets.calibrated(probabilities, label_sets.fit_platt(probabilities, y))
        scaled = np.clip(scaled, 1e-15, 1 - 1e-15)
        return -(y * np.log(scaled) + (1 - y) * np.log1p(-scaled)).mean(axis=1)

    def calibration(self, probabilities, y):
        platt = label_sets.fit_platt(probabilities, y)
        return {"platt": platt, "thresholds": label_sets.fit_thresholds(label_sets.calibrated(probabilities, platt), y)}

    def calibrated(self, probabilities, info):
        return label_sets.calibrated(probabilities, info["platt"])

    def decide(self, calibrated, info):
        """0/1 per label: the label's calibrated score reaches its threshold."""
        return (calibrated >= np.asarray(info["thresholds"])).astype("int64")

    decision = "labels"

    def line(self, row, info, top_k):
        """predict's line for one photo's calibrated scores: every label over its threshold
        (possibly none) and every label's score."""
        classes = info["classes"]
        line = {"labels": [name for name, on in zip(classes, self.decide(row[None], info)[0]) if on],
                "scores": {name: round(float(score), 6) for name, score in zip(classes, row)}}
        if top_k:
            line["top_k"] = [{"label": classes[i], "confidence": float(row[i])} for i in row.argsort()[::-1][:top_k]]
        return line

    def summary(self, line):
        return " ".join(line["labels"]) or "none of the labels"

    def readout(self, line, info):
        """The app's (label, confidence, scores) texts: the labels said, no one confidence,
        and every label's score against its threshold, those over it ticked."""
        thresholds = dict(zip(info["classes"], info["thresholds"]))
        ranked = sorted(line["scores"], key=line["scores"].get, reverse=True)
        return self.summary(line), "", ", ".join(
            f"{'✓ ' if name in line['labels'] else ''}{name} {line['scores'][name]:.1%} "
            f"(threshold {thresholds[name]:.1%})" for name in ranked)


    def certainty(self, calibrated, info):
        """How sure the model is of each photo's label set, for the label-next queue: the
        distance of the label nearest its threshold (0: a label on the fence)."""
        return np.abs(calibrated - np.asarray(info["thresholds"])).min(axis=1)

    def suggestion(self, row, info):
        """The label-next queue's suggestion: the label set, space-separated (as data/labelled.csv holds it)."""
        return " ".join(name for name, on in zip(info["classes"], self.decide(row[None], info)[0]) if on)

    def guess(self, row, info):
        return self.suggestion(row, info) or "none of the labels"

    def doubt(self, row, info):
        """Why the queue asks about the photo: the label nearest its threshold."""
        thresholds = np.asarray(info["thresholds"])
        i = int(np.argmin(np.abs(row - thresholds)))
        return f"unsure: {info['classes'][i]} {row[i]:.0%} against its threshold {thresholds[i]:.0%}"


def balanced_weights(y):
    """Per label, the weight of a photo with it and of a photo without it."""
    positives = np.maximum(y.sum(axis=0), 1)
    negatives = np.maximum(len(y) - y.sum(axis=0), 1)
    return (len(y) / (2 * positives)).astype("float32"), (len(y) / (2 * negatives)).astype("float32")


def one_vs_rest(x, y, *, balanced, folds=5, seed=0):
    """One logistic regression per label (heads.logistic_head's recipe: standardised
    features, L2 strength cross-validated by log loss) as one Keras layer of sigmoid
    units. Returns (model, the median C)."""
    strengths, coefs, intercepts = [], [], []
    for label in range(y.shape[1]):
        model, strength = heads.logistic_head(x, y[:, label].astype("int64"), 2, "binary_crossentropy",
                                              balanced=balanced, folds=folds, seed=seed)
        kernel, bias = model.get_layer("classes").get_weights()
        coefs.append(kernel[:, 0])
        intercepts.append(bias[0])
        strengths.append(strength)
    inputs = keras.Input(x.shape[1:], name="features")
    layer = MultiLabel().output_layer(y.shape[1], None)
    model = keras.Model(inputs, layer(inputs), name="head")
    layer.set_weights([np.stack(coefs, axis=1), np.asarray(intercepts, dtype="float32")])
    return model, float(np.median(strengths))


TASKS = {task.name: task for task in (SingleLabel(), MultiLabel())}


def named(name):
    return TASKS[name]


def of_model(info):
    """The task of a model, from its model.json."""
    return TASKS[info.get("task", "single_label")]  # models from before several labels per photo


def of(p):
    return TASKS[p.model.task]
