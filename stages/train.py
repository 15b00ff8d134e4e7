"""Stage `train`: a dense head on the cached features (no backbone pass per epoch).

For the `cnn` baseline the cached "features" are the resized images, and the
whole network is trained here, with augmentation. Writes models/head.keras,
the per-epoch log under logs/train/ and the training time in metrics/train.json.
With audit.exclude: label_issues, the training images the audit found likely
mislabelled are left out.
"""

from classifier.data import manifest
from classifier.data.augment import augmentation
from classifier.data.inputs import from_arrays
from classifier.errors import run
from classifier.files import read_features, write_json
from classifier.model import registry
from classifier.model.heads import class_weights, dense_head, loss_function, shift_prior, small_cnn, targets
from classifier.paths import HEAD, TRAIN_LOG, TRAIN_REPORT
from classifier.training.fit import EpochSeeds, fit, optimizer, setup


def main():
    p, _ = registry.load()
    t = p.train
    strategy = setup(t.seed, t.distribute, t.mixed_precision)
    images = manifest.read()
    classes = len(manifest.classes(images))
    x_train, y_train = read_features("train")
    flagged = manifest.label_issues_in_train(images, p.audit.exclude)[images.split == "train"].to_numpy()
    x_train, y_train = x_train[~flagged], y_train[~flagged]
    x_val, y_val = read_features("val")
    from_scratch = registry.BACKBONES[p.model.backbone].from_scratch
    with strategy.scope():
        build = small_cnn if from_scratch else dense_head
        model = build(x_train.shape[1:], classes, t.loss, units=p.head.units, dropout=p.head.dropout)
        model.compile(optimizer=optimizer(t.optimizer, t.lr, t.momentum), loss=loss_function(t.loss, t.label_smoothing),
                      metrics=["accuracy"])
    augment = augmentation(p.augment, t.seed) if from_scratch else None  # the cnn sees images
    seeds = EpochSeeds(len(x_train), t.seed, [augment] if augment else [])
    data = from_arrays(x_train, targets(y_train, classes, t.loss), t.batch_size, augment=augment, order=seeds.order)
    val = from_arrays(x_val, targets(y_val, classes, t.loss), t.batch_size)
    balanced = t.class_weight == "balanced"
    weights = class_weights(y_train, classes) if balanced else None
    timing = fit(model, data, val, seeds=seeds, epochs=t.epochs, patience=t.patience, log_dir=TRAIN_LOG,
                 class_weight=weights)
    if balanced:
        shift_prior(model, y_train, classes)
    HEAD.parent.mkdir(parents=True, exist_ok=True)
    model.save(HEAD)
    if weights:
        timing["class_weight"] = {"min": round(min(weights.values()), 4), "max": round(max(weights.values()), 4)}
    write_json(TRAIN_REPORT, {"head": {**timing, "val_images": len(y_val), "label_issues_left_out": int(flagged.sum())}})


if __name__ == "__main__":
    run(main)
