"""Stage `finetune`: backbone + trained head, top layers unfrozen, augmented images.

Writes models/model.keras, models/model.json (backbone, image size, class
names, the input contract and the temperature that calibrates its confidence,
fitted on the validation split: what `predict` needs), logs/finetune/ and the
training time in metrics/finetune.json. For the `cnn` baseline the model is
the trained CNN, trained further here.
"""

import keras
from sklearn.metrics import log_loss

from stages import backbones, calibration, manifest, params
from stages.errors import run
from stages.heads import probabilities, targets
from stages.inputs import INPUT, augmentation, batches
from stages.paths import FINETUNE_LOG, FINETUNE_REPORT, HEAD, MODEL, model_info, write_json
from stages.training import EpochSeeds, fit, optimizer, setup


def assemble(extractor, head):
    inputs = keras.Input(extractor.input_shape[1:], name="image")
    # training=False keeps BatchNormalization in inference mode while fine-tuning:
    # its ImageNet statistics would be wrecked by small, augmented batches.
    features = extractor(inputs, training=False)
    return keras.Model(inputs, head(features), name="classifier")


def build(p):
    """The model to fine-tune, with the top `finetune.unfreeze` backbone layers trainable."""
    head = backbones.load_model(HEAD)
    if backbones.BACKBONES[p.model.backbone].from_scratch:
        return head
    extractor = backbones.extractor(p.model)
    backbones.unfreeze(backbones.network(extractor), p.finetune.unfreeze)
    return assemble(extractor, head)


def main():
    p = params.load()
    backbones.check(p.model)
    t = p.train
    strategy = setup(t)
    images = manifest.read()
    classes = manifest.classes(images)
    with strategy.scope():
        model = build(p)
        model.compile(optimizer=optimizer(t, p.finetune.lr), loss=t.loss, metrics=["accuracy"])

    def data(split, **options):
        paths, labels = manifest.rows(images, split)
        encoded = targets(labels, len(classes), t.loss)
        return batches(paths, encoded, p.model.image_size, t.batch_size, **options)

    if not p.finetune.epochs:
        print("finetune: finetune.epochs is 0, saving the model without fine-tuning")
    augment = augmentation(p.augment, t.seed)
    seeds = EpochSeeds(len(manifest.rows(images, "train")[0]), t.seed, [augment])
    train = data("train", augment=augment, order=seeds.order)
    val = data("val")
    y_val = manifest.rows(images, "val")[1]
    on_val = lambda: probabilities(model.predict(val, verbose=0))  # noqa: E731
    loss = lambda scores: log_loss(y_val, scores, labels=list(range(len(classes))))  # noqa: E731
    start, best = model.get_weights(), on_val()  # backbone + trained head
    timing = fit(model, train, val, seeds=seeds, epochs=p.finetune.epochs, patience=t.patience, log_dir=FINETUNE_LOG)
    # Early stopping keeps the best epoch, but the starting point is no epoch:
    # keep it when fine-tuning never beat it.
    timing["improved"] = False
    if p.finetune.epochs:
        tuned = on_val()
        timing["improved"] = bool(loss(tuned) < loss(best))
        if timing["improved"]:
            best = tuned
        else:
            model.set_weights(start)
            print(f"finetune: no epoch beat the head's val_loss {loss(best):.4f}; keeping backbone + head as they were")
    temperature = calibration.fit_temperature(best, y_val)
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL)
    info = {"backbone": p.model.backbone, "image_size": p.model.image_size, "classes": classes,
            "input": INPUT, "temperature": temperature}
    write_json(model_info(MODEL), info)
    write_json(FINETUNE_REPORT, {"finetune": timing})


if __name__ == "__main__":
    run(main)
