"""Fine-tuning's parts: backbone + head as one model, the frozen layers' output
for K augmented views of each image, and whether fine-tuning helped.
"""

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import ttest_1samp

from classifier.model import backbones, graph, registry
from classifier.report import calibration
from classifier.runtime import engines


def assemble(extractor, head):
    inputs = keras.Input(extractor.input_shape[1:], name="image")
    # training=False keeps BatchNormalization in inference mode while fine-tuning:
    # its ImageNet statistics would be wrecked by small, augmented batches.
    features = extractor(inputs, training=False)
    return keras.Model(inputs, head(features), name="classifier")


def build(model, unfreeze):
    """The extractor for the `model` params with its top `unfreeze` blocks trainable,
    and the name of its first trainable layer; (None, None) for the cnn baseline."""
    if registry.BACKBONES[model.backbone].from_scratch:
        return None, None
    extractor = backbones.extractor(model)
    return extractor, graph.unfreeze(graph.backbone_of(extractor), model.backbone, unfreeze)


def hurt(tuned, start, labels, losses=calibration.calibrated_losses):
    """The one-sided p-value that fine-tuning raised the mean calibrated val loss.

    Calibrated, as `predict` reports confidence: a fine-tuned model is surer of
    itself, which raw log loss punishes on a few mistakes. Tested per image, not
    compared as two means, because the head's val loss is the best of its epochs
    and small gaps favour it: on the shared photos a fine-tuned model better on
    test (99.2% vs 98.8%) was 0.0026 worse on val (p = 0.32).
    """
    difference = losses(tuned, labels) - losses(start, labels)
    p = ttest_1samp(difference, 0.0, alternative="greater").pvalue
    return 1.0 if np.isnan(p) else float(p)  # nan: no difference at all


def views_at_cut(bottom, data, count, val_count, folder, *, augments, batch_size, engine):
    """The frozen layers' output for one augmented view of every training image
    per layer of `augments` (image i's view v is row i * views + v) and for the
    validation images, as memory-mapped float16 arrays in `folder`. `data(split,
    batch_size=, augment=)` reads a split's images.

    Below the cut nothing trains and BatchNormalization runs in inference mode,
    so this output is fixed for a given image: computed once here (on
    `runtime.engine`), each epoch then runs only the trainable top. Each image
    is decoded once for all its views.
    """
    views = len(augments)

    def each_view(images, training):
        stacked = tf.stack([augment(images, training=training) for augment in augments], axis=1)
        return tf.reshape(stacked, (-1, *images.shape[1:]))  # uint8 pixels, as the engines take them

    train = data("train", batch_size=max(1, batch_size // views), augment=each_view)
    forward = engines.forward(bottom, engine, next(iter(train))[0].numpy())
    engines.stream_to_npy(forward, train, views * count, folder / "train.npy", "float16", f"finetune: {views} views at the cut")
    engines.stream_to_npy(forward, data("val"), val_count, folder / "val.npy", "float16", "finetune: val at the cut")
    return (np.load(folder / f"{split}.npy", mmap_mode="r") for split in ("train", "val"))


def keep_or_drop(model, start, before, after, labels, losses=calibration.calibrated_losses):
    """Early stopping keeps the best epoch, but the starting point is no epoch: go back
    to it (the weights `start`) only where the val split shows that fine-tuning hurt.
    Returns the kept model's val probabilities and {"kept", "p_hurt"}."""
    p_hurt = round(hurt(after, before, labels, losses), 4)
    if p_hurt >= 0.05:
        return after, {"kept": True, "p_hurt": p_hurt}
    model.set_weights(start)
    print(f"finetune: fine-tuning raised the calibrated val loss (p = {p_hurt:.3f}); keeping backbone + head as they were")
    return before, {"kept": False, "p_hurt": p_hurt}
