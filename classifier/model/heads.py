"""Classifier heads and the from-scratch CNN, and how labels and outputs are encoded.

With `categorical_crossentropy` a head ends in one softmax unit per class;
with `binary_crossentropy` (two classes only) in one sigmoid unit, the
probability of the second class.
"""

import keras
import numpy as np

from classifier.errors import UserError


def output_layer(classes, loss):
    if loss == "binary_crossentropy":
        if classes != 2:
            raise UserError(
                f"train.loss: binary_crossentropy needs exactly 2 classes, found {classes}; "
                "use categorical_crossentropy"
            )
        # float32 output keeps the loss stable under mixed precision.
        return keras.layers.Dense(1, activation="sigmoid", name="classes", dtype="float32")
    return keras.layers.Dense(classes, activation="softmax", name="classes", dtype="float32")


def loss_function(loss, smoothing):
    """The Keras loss for train.loss, with label smoothing (targets 1 - s + s/classes, s/classes)."""
    if loss == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(label_smoothing=smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)


def targets(labels, classes, loss):
    """Integer labels as the loss expects them."""
    if loss == "binary_crossentropy":
        return np.asarray(labels, dtype="float32").reshape(-1, 1)
    return keras.utils.to_categorical(labels, classes)


def class_weights(labels, classes):
    """Balanced weights, n / (classes x count) for each class; None on a balanced set,
    where all would be 1 (and Keras would still take another path through fit)."""
    counts = np.bincount(labels, minlength=classes)
    if (counts == counts[0]).all():
        return None
    return {i: len(labels) / (classes * count) for i, count in enumerate(counts) if count}


def training_log_prior(labels, classes):
    share = np.bincount(labels, minlength=classes) / len(labels)
    return np.log(np.maximum(share, 1 / len(labels)))


def prior_shifted(probabilities, labels, classes):
    """What shift_prior does to a softmax's (or sigmoid's) output, on its probabilities."""
    shifted = probabilities * np.exp(-training_log_prior(labels, classes))
    return shifted / shifted.sum(axis=1, keepdims=True)


def shift_prior(model, labels, classes, sign=1):
    """Logit adjustment (Menon et al., 2021), in the output layer's bias: sign 1
    takes log(training share of each class) off each class's logit, so that the
    model decides as if the classes were equally common; -1 undoes it.

    Class weights alone barely move a rare class: a head learns its few
    training photos whatever their weight (measured on the shared flowers with
    roses cut to 10 of 100: roses' test recall 0.05 plain, 0.14 weighted, 0.50
    weighted and shifted; docs/benchmarks.md)."""
    log_prior = training_log_prior(labels, classes)
    if model.get_layer("classes").units == 1:  # one sigmoid unit: the logit of class 1 against class 0
        log_prior = log_prior[1:] - log_prior[:1]
    kernel, bias = model.get_layer("classes").get_weights()
    model.get_layer("classes").set_weights([kernel, bias - sign * log_prior.astype(bias.dtype)])


def per_class(outputs):
    """One probability per class: a sigmoid unit's p becomes (1 - p, p), other outputs
    pass as they are. Keras ops: for arrays, eager tensors and symbolic ones alike."""
    if outputs.shape[-1] != 1:
        return outputs
    return keras.ops.concatenate([1 - outputs, outputs], axis=-1)


def probabilities(outputs):
    """Model outputs as one probability per class (float64), whatever the loss."""
    outputs = np.asarray(per_class(np.asarray(outputs, dtype="float64")))
    return outputs / outputs.sum(axis=1, keepdims=True)  # float32 rows miss 1 slightly


def dense_head(feature_shape, classes, loss, *, units, dropout, output=output_layer):
    """Dense(units) -> Dropout -> output(classes, loss) (the task's output layer);
    units 0 means a linear classifier."""
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if units:
        x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, output(classes, loss)(x), name="head")


def logistic_head(x, y, classes, loss, *, balanced, folds=5, seed=0):
    """A linear softmax (or, for binary_crossentropy, sigmoid) head fitted by
    scikit-learn's logistic regression on standardised features, its L2 strength
    C chosen by cross-validated log loss on the training features (the reliable
    baseline of transfer: Kornblith et al., 2019), as a Keras model like
    dense_head's, the standardisation folded into its weights. Returns (model, C)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    folds = max(2, min(folds, np.bincount(y).min()))
    fitted = LogisticRegressionCV(
        Cs=[0.001, 0.01, 0.1, 1.0], cv=StratifiedKFold(folds, shuffle=True, random_state=seed), scoring="neg_log_loss",
        class_weight="balanced" if balanced else None, max_iter=2000,
    ).fit((x - mean) / scale, y)
    coef, intercept = fitted.coef_ / scale, fitted.intercept_ - (fitted.coef_ / scale) @ mean
    if classes == 2 and loss != "binary_crossentropy":  # one logit of class 1 vs 0 -> two softmax logits
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    inputs = keras.Input(x.shape[1:], name="features")
    layer = output_layer(classes, loss)
    model = keras.Model(inputs, layer(inputs), name="head")
    layer.set_weights([coef.T.astype("float32"), intercept.astype("float32")])
    return model, float(fitted.C_[0])


def small_cnn(image_shape, classes, loss, *, units, dropout, output=output_layer):
    """The from-scratch baseline: four conv blocks, as in Keras' cats-vs-dogs example;
    `output` as dense_head's."""
    inputs = keras.Input(image_shape, name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for filters in (32, 64, 128, 256):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if units:
        x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, output(classes, loss)(x), name="cnn")
