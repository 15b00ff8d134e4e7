"""Stage `finetune`: backbone + trained head, top blocks unfrozen, augmented images.

With `finetune.views` K > 0 the frozen layers below the top blocks run once, on
K augmented views of each training image, and every epoch trains the top on
one view (epoch e on view e mod K); with 0 every epoch augments afresh and runs
the whole backbone.

Writes models/model.keras, models/model.json (backbone, image size, class
names, the input contract and the temperature that calibrates its confidence,
fitted on the validation split: what `predict` needs), logs/finetune/ and the
training time in metrics/finetune.json. For the `cnn` baseline the model is
the trained CNN, trained further here.
"""

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import ttest_1samp

from classifier.data import manifest
from classifier.data.augment import augmentation
from classifier.data.inputs import INPUT, batches, from_memmap
from classifier.errors import run
from classifier.model import backbones, registry
from classifier.model.heads import probabilities, targets
from classifier.paths import FINETUNE_LOG, FINETUNE_REPORT, HEAD, MODEL, model_info, write_json
from classifier.report import calibration
from classifier.runtime import engines
from classifier.training import backup
from classifier.training.fit import EpochSeeds, fit, optimizer, setup


def assemble(extractor, head):
    inputs = keras.Input(extractor.input_shape[1:], name="image")
    # training=False keeps BatchNormalization in inference mode while fine-tuning:
    # its ImageNet statistics would be wrecked by small, augmented batches.
    features = extractor(inputs, training=False)
    return keras.Model(inputs, head(features), name="classifier")


def build(p):
    """The extractor with its top `finetune.unfreeze` blocks trainable, and the
    name of its first trainable layer; (None, None) for the cnn baseline."""
    if registry.BACKBONES[p.model.backbone].from_scratch:
        return None, None
    extractor = backbones.extractor(p.model)
    return extractor, backbones.unfreeze(backbones.backbone_of(extractor), p.model.backbone, p.finetune.unfreeze)


def calibrated_losses(probabilities, labels):
    """Each validation image's log loss after temperature scaling, as `predict` reports confidence."""
    scaled = calibration.scaled(probabilities, calibration.fit_temperature(probabilities, labels))
    return -np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-15, 1.0))


def hurt(tuned, start, labels):
    """The one-sided p-value that fine-tuning raised the mean calibrated val loss.

    Calibrated, as `predict` reports confidence: a fine-tuned model is surer of
    itself, which raw log loss punishes on a few mistakes. Tested per image, not
    compared as two means, because the head's val loss is the best of its epochs
    and small gaps favour it: on the shared photos a fine-tuned model better on
    test (99.2% vs 98.8%) was 0.0026 worse on val (p = 0.32).
    """
    difference = calibrated_losses(tuned, labels) - calibrated_losses(start, labels)
    p = ttest_1samp(difference, 0.0, alternative="greater").pvalue
    return 1.0 if np.isnan(p) else float(p)  # nan: no difference at all


def views_at_cut(p, bottom, data, count, val_count, folder):
    """The frozen layers' output for `finetune.views` augmented views of every
    training image (image i's view v is row i * views + v) and for the
    validation images, as memory-mapped float16 arrays in `folder`.

    Below the cut nothing trains and BatchNormalization runs in inference mode,
    so this output is fixed for a given image: computed once here (on
    `runtime.engine`), each epoch then runs only the trainable top. Each image
    is decoded once for all its views.
    """
    views = p.finetune.views
    augments = [augmentation(p.augment, p.train.seed + view) for view in range(views)]

    def each_view(images, training):
        stacked = tf.stack([augment(images, training=training) for augment in augments], axis=1)
        return tf.reshape(stacked, (-1, *images.shape[1:]))  # uint8 pixels, as the engines take them

    train = data("train", batch_size=max(1, p.train.batch_size // views), augment=each_view)
    forward = engines.forward(bottom, p.runtime.engine, next(iter(train))[0].numpy())
    engines.stream_to_npy(forward, train, views * count, folder / "train.npy", "float16", f"finetune: {views} views at the cut")
    engines.stream_to_npy(forward, data("val"), val_count, folder / "val.npy", "float16", "finetune: val at the cut")
    return (np.load(folder / f"{split}.npy", mmap_mode="r") for split in ("train", "val"))


def main():
    p, _ = registry.load()
    t, views = p.train, p.finetune.views
    strategy = setup(t.seed, t.distribute, t.mixed_precision)
    images = manifest.read()
    classes = manifest.classes(images)
    with strategy.scope():
        head = backbones.load_model(HEAD)
        extractor, first = build(p)
        # Nothing to cache for the cnn, with no block unfrozen, or with no epoch to run.
        cached = bool(views and first and p.finetune.epochs)
        if cached:
            bottom, top = backbones.cut(extractor, first)
            model = assemble(top, head)
        else:
            model = head if extractor is None else assemble(extractor, head)
        model.compile(optimizer=optimizer(t.optimizer, p.finetune.lr, t.momentum), loss=t.loss, metrics=["accuracy"])

    def data(split, batch_size=t.batch_size, **options):
        paths, labels = manifest.rows(images, split)
        encoded = targets(labels, len(classes), t.loss)
        return batches(paths, encoded, p.model.image_size, batch_size, **options)

    if not p.finetune.epochs:
        print("finetune: finetune.epochs is 0, saving the model without fine-tuning")
    labels = manifest.rows(images, "val")[1]
    with backup.scratch("finetune-views") as folder:  # the views live on disk, not in memory
        train, val, seeds = training_data(p, images, len(classes), data, bottom if cached else None, folder)
        on_val = lambda: probabilities(model.predict(val, verbose=0))  # noqa: E731
        start, best = model.get_weights(), on_val()  # backbone + trained head
        timing = fit(model, train, val, seeds=seeds, epochs=p.finetune.epochs, patience=t.patience, log_dir=FINETUNE_LOG)
        timing["first_trained_layer"], timing["kept"] = first, False
        if p.finetune.epochs:
            best, decision = keep_or_drop(model, start, best, on_val(), labels)
            timing.update(decision)
    if cached:
        model = assemble(extractor, head)  # the trained top back on its frozen bottom (shared layers)
    save(model, p, classes, calibration.fit_temperature(best, labels), timing)


def training_data(p, images, classes, data, bottom, folder):
    """(train, val, seeds): the views at the cut under `bottom` (None: augment online)."""
    t, views = p.train, p.finetune.views
    count = len(manifest.rows(images, "train")[0])
    y_val = targets(manifest.rows(images, "val")[1], classes, t.loss)
    if bottom is None:
        augment = augmentation(p.augment, t.seed)
        seeds = EpochSeeds(count, t.seed, [augment])
        return data("train", augment=augment, order=seeds.order), data("val"), seeds
    x_train, x_val = views_at_cut(p, bottom, data, count, len(y_val), folder)
    y_train = targets(manifest.rows(images, "train")[1], classes, t.loss)
    seeds = EpochSeeds(count, t.seed, views=views)
    train = from_memmap(x_train, np.repeat(y_train, views, axis=0), t.batch_size, order=seeds.order)
    return train, from_memmap(x_val, y_val, t.batch_size), seeds


def keep_or_drop(model, start, before, after, labels):
    """Early stopping keeps the best epoch, but the starting point is no epoch: go back
    to it (the weights `start`) only where the val split shows that fine-tuning hurt.
    Returns the kept model's val probabilities and {"kept", "p_hurt"}."""
    p_hurt = round(hurt(after, before, labels), 4)
    if p_hurt >= 0.05:
        return after, {"kept": True, "p_hurt": p_hurt}
    model.set_weights(start)
    print(f"finetune: fine-tuning raised the calibrated val loss (p = {p_hurt:.3f}); keeping backbone + head as they were")
    return before, {"kept": False, "p_hurt": p_hurt}


def save(model, p, classes, temperature, report):
    """models/model.keras, the model.json that predict reads, metrics/finetune.json."""
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL)
    info = {"backbone": p.model.backbone, "image_size": p.model.image_size, "classes": classes,
            "input": INPUT, "temperature": temperature}
    write_json(model_info(MODEL), info)
    write_json(FINETUNE_REPORT, {"finetune": report})


if __name__ == "__main__":
    run(main)
