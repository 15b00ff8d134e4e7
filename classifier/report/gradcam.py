"""Where the network looked: Grad-CAM (Selvaraju et al., 2017) on the last
convolutional feature map of any model the pipeline builds (shared by
`evaluate` and `predict --explain`; classifier/report/figures.py draws the overlays).

The class score differentiated is the log of its probability; the heatmap is
the ReLU of the feature map weighted by its spatially averaged gradient,
scaled to [0, 1].
"""

import keras
import numpy as np
import tensorflow as tf

from classifier.model.graph import backbone_of
from classifier.model.heads import per_class
from classifier.model.layers import Preprocess


def last_conv(network):
    """The last layer with a spatial (4-D) output that is not pooling."""
    for layer in reversed(network.layers):
        shape = getattr(layer, "output", None) is not None and layer.output.shape
        if shape and len(shape) == 4 and "Pooling" not in type(layer).__name__:
            return layer
    raise ValueError(f"{network.name} has no convolutional feature map")


def parts(model):
    """(before, network, after): the functional network holding the last feature
    map, what runs before it (preprocessing) and after it (pooling, head)."""
    extractor = next((layer for layer in model.layers if layer.name == "extractor"), None)
    if extractor is None:  # the cnn baseline: one flat network, pixels to probabilities
        return (lambda x: x), model, (lambda x: x)
    network = backbone_of(extractor)
    # Networks that rescale their input themselves have no Preprocess layer.
    preprocess = next((layer for layer in extractor.layers if isinstance(layer, Preprocess)), lambda x: x)
    pool, head = extractor.get_layer("pool"), model.get_layer("head")
    return preprocess, network, (lambda x: head(pool(x), training=False))


def heatmaps(model, images, classes=None):
    """Grad-CAM maps (N x h x w in [0, 1]) of `classes` (default: the predicted ones)
    for uint8 or float pixels in [0, 255]; also the probabilities (N x classes)."""
    before, network, after = parts(model)
    inner = keras.Model(network.inputs, [last_conv(network).output, network.output])
    x = before(tf.convert_to_tensor(images, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)  # the backbone may be frozen: record its ops from the input on
        feature_map, top = inner(x, training=False)
        outputs = after(top)
        probabilities = per_class(outputs)
        chosen = tf.argmax(probabilities, axis=1) if classes is None else tf.constant(classes)
        score = tf.math.log(tf.gather(probabilities, chosen, axis=1, batch_dims=1) + 1e-12)
    gradients = tape.gradient(score, feature_map)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1)).numpy()
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0), probabilities.numpy()

