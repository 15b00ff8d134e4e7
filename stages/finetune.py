"""Stage `finetune`: backbone + trained head, top layers unfrozen, augmented images.

Writes models/model.keras, models/model.json (backbone, image size, class
names and the input contract: what `predict` needs to feed the model), logs/finetune/ and the
training time in metrics/finetune.json. For the
`cnn` baseline the model is the trained CNN, trained further here.
"""

import keras

from stages import backbones, manifest, params
from stages.errors import run
from stages.heads import targets
from stages.inputs import INPUT, augmentation, batches
from stages.paths import FINETUNE_LOG, FINETUNE_REPORT, HEAD, MODEL, model_info, write_json
from stages.training import fit, optimizer, setup


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
    train = data("train", augment=augmentation(p.augment, t.seed), shuffle_seed=t.seed)
    val = data("val")
    val_loss = lambda: model.evaluate(val, verbose=0, return_dict=True)["loss"]  # noqa: E731
    if p.finetune.epochs:
        start, before = model.get_weights(), val_loss()
    timing = fit(model, train, None, val, shuffle=False,  # tf.data shuffles, seeded
                 epochs=p.finetune.epochs, patience=t.patience, log_dir=FINETUNE_LOG)
    # Early stopping keeps the best epoch, but the starting point (backbone +
    # trained head) is no epoch: keep it when fine-tuning never beat it.
    timing["improved"] = bool(p.finetune.epochs) and val_loss() < before
    if p.finetune.epochs and not timing["improved"]:
        model.set_weights(start)
        print(f"finetune: no epoch beat the head's val_loss {before:.4f}; keeping backbone + head as they were")
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL)
    info = {"backbone": p.model.backbone, "image_size": p.model.image_size, "classes": classes, "input": INPUT}
    write_json(model_info(MODEL), info)
    write_json(FINETUNE_REPORT, {"finetune": timing})


if __name__ == "__main__":
    run(main)
