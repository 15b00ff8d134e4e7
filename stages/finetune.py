"""Stage `finetune`: backbone + trained head, top blocks unfrozen, augmented images.

With `finetune.views` K > 0 the frozen layers below the top blocks run once, on
K augmented views of each training image, and every epoch trains the top on
one view (epoch e on view e mod K); with 0 every epoch augments afresh and runs
the whole backbone.

Writes models/model.keras, models/model.json (backbone, image size, class
names, the input contract, the task and what calibrates its confidence, fitted
on the validation split: the temperature, or with several labels per photo each
label's Platt scaling and threshold; what `predict` needs), logs/finetune/ and the
training time in metrics/finetune.json. For the `cnn` baseline the model is
the trained CNN, trained further here.
"""

import numpy as np

from classifier.data import manifest
from classifier.data.augment import augmentation, mixed, mixing
from classifier.data.inputs import INPUT, batches, from_memmap
from classifier.errors import run
from classifier.files import write_json
from classifier.model import backbones, graph, registry, tasks
from classifier.paths import FINETUNE_LOG, FINETUNE_REPORT, HEAD, MODEL, model_info
from classifier.training import backup
from classifier.training.finetuning import assemble, build, keep_or_drop, views_at_cut
from classifier.training.fit import EpochSeeds, fit, optimizer, schedule, setup


def epochs_to_run(p, val_count, classes):
    """finetune.epochs, or 0 where the val split has fewer than finetune.min_val photos
    per class (on average): early stopping and the keep-or-drop test would rest on
    a handful, too few to show that fine-tuning hurt; not fine-tuning cannot overfit them."""
    if p.finetune.epochs and val_count < p.finetune.min_val * classes:
        print(f"finetune: the val split has {val_count} photos for {classes} classes, fewer than "
              f"{p.finetune.min_val} per class (finetune.min_val): too few to judge fine-tuning by, "
              "so backbone + head are kept as trained")
        return 0
    return p.finetune.epochs


def main():
    p, _ = registry.load()
    t, views, task = p.train, p.finetune.views, tasks.of(p)
    strategy = setup(t.seed, t.distribute, t.mixed_precision)
    images = manifest.read()
    classes = manifest.classes(images, task.name)
    flagged = manifest.label_issues_in_train(images, p.audit.exclude)
    images = images[~flagged]
    labels = manifest.rows(images, "val", task.name)[1]
    epochs = epochs_to_run(p, len(labels), len(classes))
    y_train = manifest.rows(images, "train", task.name)[1]
    balanced = t.class_weight == "balanced"
    with strategy.scope():
        head = backbones.load_model(HEAD)
        if balanced:  # train trained it unshifted: so it goes on here
            task.shift_prior(head, y_train, len(classes), sign=-1)
        extractor, first = build(p.model, p.finetune.unfreeze)
        # Nothing to cache for the cnn, with no block unfrozen, or with no epoch to run.
        cached = bool(views and first and epochs)
        if cached:
            bottom, top = graph.cut(extractor, first)
            model = assemble(top, head)
        else:
            model = head if extractor is None else assemble(extractor, head)
        lr = schedule(p.finetune.schedule, p.finetune.lr, epochs, steps_per_epoch=-(-len(y_train) // t.batch_size))
        model.compile(optimizer=optimizer(t.optimizer, lr, t.momentum, p.finetune.ema),
                      loss=task.loss(t, y_train, len(classes)), metrics=task.metrics)

    def data(split, batch_size=t.batch_size, **options):
        paths, labels = manifest.rows(images, split, task.name)
        encoded = task.targets(labels, len(classes), t.loss)
        return batches(paths, encoded, p.model.image_size, batch_size, **options)

    if not p.finetune.epochs:
        print("finetune: finetune.epochs is 0, saving the model without fine-tuning")
    with backup.scratch("finetune-views") as folder:  # the views live on disk, not in memory
        train, val, seeds = training_data(p, images, len(classes), data, bottom if cached else None, folder)
        on_val = lambda: task.probabilities(model.predict(val, verbose=0))  # noqa: E731
        start, best = model.get_weights(), on_val()  # backbone + trained head
        timing = fit(model, train, val, seeds=seeds, epochs=epochs, patience=t.patience, log_dir=FINETUNE_LOG,
                     class_weight=task.class_weights(y_train, len(classes), balanced))
        timing["first_trained_layer"], timing["kept"] = first, False
        if epochs:
            best, decision = keep_or_drop(model, start, best, on_val(), labels, task.losses)
            timing.update(decision)
    if cached:
        model = assemble(extractor, head)  # the trained top back on its frozen bottom (shared layers)
    if balanced:
        task.shift_prior(head, y_train, len(classes))
        best = task.prior_shifted(best, y_train, len(classes))
    timing["val_images"] = len(labels)  # what early stopping, keep-or-drop and the calibration rest on
    save(model, p, classes, {"task": task.name, **task.calibration(best, labels)}, timing)


def training_data(p, images, classes, data, bottom, folder):
    """(train, val, seeds): the views at the cut under `bottom` (None: augment online),
    mixed as finetune.mix says."""
    t, views, task = p.train, p.finetune.views, tasks.of(p)
    count = len(manifest.rows(images, "train")[0])
    y_val = task.targets(manifest.rows(images, "val", task.name)[1], classes, t.loss)
    mix = mixing(p.finetune.mix, t.seed)
    mixes = [] if mix is None else [mix]  # random layers whose state EpochSeeds sets
    if bottom is None:
        augment = augmentation(p.augment, t.seed)
        seeds = EpochSeeds(count, t.seed, [augment, *mixes])
        return mixed(data("train", augment=augment, order=seeds.order), mix), data("val"), seeds
    augments = [augmentation(p.augment, t.seed + view) for view in range(views)]
    x_train, x_val = views_at_cut(bottom, data, count, len(y_val), folder, augments=augments,
                                  batch_size=t.batch_size, engine=p.runtime.engine)
    y_train = task.targets(manifest.rows(images, "train", task.name)[1], classes, t.loss)
    seeds = EpochSeeds(count, t.seed, mixes, views=views)
    train = from_memmap(x_train, np.repeat(y_train, views, axis=0), t.batch_size, order=seeds.order)
    return mixed(train, mix), from_memmap(x_val, y_val, t.batch_size), seeds


def save(model, p, classes, calibrated, report):
    """models/model.keras, the model.json that predict reads, metrics/finetune.json.
    `calibrated`: the task and how to calibrate and decide (tasks.py's calibration)."""
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL)
    info = {"backbone": p.model.backbone, "image_size": p.model.image_size, "classes": classes,
            "input": INPUT, **calibrated}
    write_json(model_info(MODEL), info)
    write_json(FINETUNE_REPORT, {"finetune": report})


if __name__ == "__main__":
    run(main)
