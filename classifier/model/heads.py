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


def targets(labels, classes, loss):
    """Integer labels as the loss expects them."""
    if loss == "binary_crossentropy":
        return np.asarray(labels, dtype="float32").reshape(-1, 1)
    return keras.utils.to_categorical(labels, classes)


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


def dense_head(feature_shape, classes, loss, *, units, dropout):
    """Dense(units) -> Dropout -> output; units 0 means a linear classifier."""
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if units:
        x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, output_layer(classes, loss)(x), name="head")


def small_cnn(image_shape, classes, loss, *, units, dropout):
    """The from-scratch baseline: four conv blocks, as in Keras' cats-vs-dogs example."""
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
    return keras.Model(inputs, output_layer(classes, loss)(x), name="cnn")
