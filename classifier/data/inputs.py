"""tf.data input pipelines: decode, resize and augment images.

Every stage that feeds images to a network (features, finetune, evaluate,
export, predict) goes through `decode`, so they all see the same pixels: what
INPUT describes, and what the exported models take. The networks preprocess
inside (classifier/model/backbones.py).
"""

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE

# With the autotuner off, AUTOTUNE still means one parallel call per core and
# prefetching still overlaps; what goes away is a 0-7 s stall when an iterator
# is deleted (after every pass: each split of `features`, every epoch), measured
# in bench/RESULTS.md (2026-11-23).
OPTIONS = tf.data.Options()
OPTIONS.autotune.enabled = False


# The input contract of every model (written into model.json).
INPUT = {
    "dtype": "uint8",
    "shape": ["batch", "image_size", "image_size", 3],
    "color": "RGB, 0-255",
    "resize": "the whole photo to image_size x image_size (aspect ratio not kept), bilinear "
    "with antialiasing, rounded: tf.image.resize(image, (size, size), antialias=True); "
    "Pillow's image.resize((size, size), Image.BILINEAR) is within one level of it",
    "output": "probabilities: one per class, in the order of classes (labels.txt); unknown_score: one per "
    "photo, above unknown.threshold for a photo of none of the classes",
}


def decode(jpeg_bytes, size):
    """JPEG bytes (as written by `clean`) to the uint8 size x size x 3 image of INPUT."""
    # INTEGER_ACCURATE is libjpeg's default, the one Pillow uses in `clean`.
    image = tf.io.decode_jpeg(jpeg_bytes, channels=3, dct_method="INTEGER_ACCURATE")
    return tf.saturate_cast(tf.round(tf.image.resize(image, (size, size), antialias=True)), tf.uint8)


def batches(paths, labels, size, batch_size, *, augment=None, order=None):
    """Batches of (uint8 pixels, labels) read from image files (the models cast them).

    `order`: a variable holding each epoch's order of the rows (training.EpochSeeds
    sets it); None keeps them in place. Decoding runs in parallel and ahead of
    the model (prefetch); augmentation is applied to whole batches.
    """
    paths, labels = tf.constant(list(map(str, paths)), tf.string), tf.constant(labels)
    data = rows(len(paths), order).map(
        lambda i: (decode(tf.io.read_file(paths[i]), size), labels[i]),
        num_parallel_calls=AUTOTUNE,
    )
    return finish(data, batch_size, augment)


def from_arrays(x, y, batch_size, *, augment=None, order=None):
    """The same from in-memory arrays (cached features; the images of the cnn baseline)."""
    x, y = tf.constant(x), tf.constant(y)
    return finish(rows(len(x), order).map(lambda i: (x[i], y[i])), batch_size, augment)


def from_memmap(x, y, batch_size, *, order=None):
    """The same from a memory-mapped array, read a batch of rows at a time:
    memory does not grow with its size."""
    y = tf.constant(y)

    def read(i):
        x_batch = tf.numpy_function(lambda rows: x[rows].astype("float32"), [i], tf.float32)
        x_batch.set_shape((None, *x.shape[1:]))
        return x_batch, tf.gather(y, i)

    data = rows(len(x), order).batch(batch_size).map(read, num_parallel_calls=AUTOTUNE)
    return data.prefetch(AUTOTUNE).with_options(OPTIONS)


def rows(count, order):
    """Row indices: `order`'s current values (read as each epoch starts), or 0..count-1."""
    if order is None:
        return tf.data.Dataset.range(count)
    return tf.data.Dataset.range(order.shape[0]).map(lambda i: order[i])


def finish(data, batch_size, augment):
    # Pixels stay uint8 (augmented as such): casting them to float32 here took as
    # long as augmenting them, and the models cast their inputs anyway.
    data = data.batch(batch_size)
    if augment is not None:
        data = data.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=AUTOTUNE)
    return data.prefetch(AUTOTUNE).with_options(OPTIONS)
