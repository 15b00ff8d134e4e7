"""Is a photo of none of the classes? Its distance to the training photos.

The score is 1 - the cosine similarity between a photo's features (what the
head reads: the backbone's pooled output) and those of its k-th nearest
training photo: deep nearest neighbours (Sun et al., 2022), which normalise
the features to unit length and rank by the k-th distance. A photo unlike
every training photo is far from all of them, whatever the softmax says. The
threshold is the `unknown.pass_share` quantile of the scores of photos like the
training ones: the val photos' and, cross-fitted, the training photos' own
(each against the training photos of the other folds), so that that share of
new photos like them pass; no outside photo is needed. The val photos alone
were too few and had helped choose the model: on the shared sets they let
2.2% to 10.0% of the test photos be flagged for a promised 5%; with the
training photos, 4.7% to 5.9% (bench/unknown_threshold.py, docs/unknown.md).

The training features live in the model as a layer (`Nearest`), so that every
exported format computes the same score in the same pass as the classes
(with_score). At most BANK training photos are kept: memory and the cost per
photo stay bounded however many there are (bench/unknown.py measured the
alternatives: Mahalanobis distance and the softmax's own confidence).
"""

import math

import keras
import numpy as np

from classifier.model.heads import per_class

# Training photos the check keeps at most (a seeded draw): BANK x features floats,
# 5,000 x 1,280 x 4 bytes = 26 MB for MobileNetV2, 10 MB for VGG16's 512.
BANK = 5000
OUTPUTS = ("probabilities", "unknown_score")


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@keras.saving.register_keras_serializable(package="classifier")
class Nearest(keras.layers.Layer):
    """Features -> 1 - cosine similarity to the k-th nearest row of `bank` (unit rows)."""

    def __init__(self, rows, k, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.k = rows, k

    def build(self, input_shape):
        self.bank = self.add_weight(shape=(self.rows, input_shape[-1]), initializer="zeros", trainable=False,
                                    name="bank")

    def call(self, features):
        features = keras.ops.cast(features, "float32")
        length = keras.ops.sqrt(keras.ops.sum(features * features, axis=-1, keepdims=True))
        similarity = keras.ops.matmul(features / keras.ops.maximum(length, 1e-12), keras.ops.transpose(self.bank))
        nearest, _ = keras.ops.top_k(similarity, self.k)
        return 1.0 - nearest[:, -1]

    def compute_output_shape(self, input_shape):
        return input_shape[:1]

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "k": self.k}


def drawn(count, seed):
    """Which of `count` training photos the check keeps: all, or BANK drawn with `seed`."""
    if count <= BANK:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, BANK, replace=False))


def check(train_features, k):
    """The check as a Keras model (features -> score) holding the training features."""
    rows = unit(np.asarray(train_features, dtype="float32"))
    features = keras.Input(rows.shape[1:], name="features")
    layer = Nearest(len(rows), min(k, len(rows)), name="unknown_score")
    model = keras.Model(features, layer(features), name="unknown")
    layer.set_weights([rows])
    return model


FOLDS = 5


def cross_fitted(bank, k, seed):
    """Each bank photo's score against the bank photos of the other folds (seeded):
    what a new photo like it would score, not 0 as it scores against itself."""
    rows = unit(np.asarray(bank, dtype="float32"))
    folds = np.random.default_rng(seed).permutation(len(rows)) % FOLDS
    scores = np.empty(len(rows), dtype="float32")
    for fold in range(FOLDS):
        others = rows[folds != fold]
        similarity = rows[folds == fold] @ others.T
        scores[folds == fold] = 1 - np.sort(similarity, axis=1)[:, -min(k, len(others))]
    return scores


def threshold(scores, pass_share):
    """The lowest score at or below which `pass_share` of `scores` lie."""
    return float(np.sort(scores)[max(0, math.ceil(pass_share * len(scores)) - 1)])


def features_of(model):
    """What the head of a classifier (train + finetune's) reads: the extractor's
    output, or for the cnn baseline, which has none, what its output layer reads."""
    names = [layer.name for layer in model.layers]
    return model.get_layer("extractor").output if "extractor" in names else model.get_layer("classes").input


def embedder(model):
    """Pixels -> the features the check compares."""
    return keras.Model(model.inputs, features_of(model), name="embedder")


def with_score(model, unknown):
    """One pass, two outputs: {"probabilities": one per class, "unknown_score"}."""
    return keras.Model(model.inputs, {"probabilities": per_class(model.output),
                                      "unknown_score": unknown(features_of(model))}, name="classifier_with_check")
