"""Stage `finetune`: backbone + trained head, top layers unfrozen, augmented images.

Writes models/model.keras, models/model.json (backbone, image size and class
names: what `predict` needs to feed the model) and logs/finetune/.
"""

import json

import keras

from stages import backbones, manifest, params
from stages.errors import run
from stages.inputs import augmentation, batches
from stages.paths import FINETUNE_LOG, HEAD, MODEL, model_info
from stages.training import LOSS, fit, optimizer, seed_everything


def assemble(extractor, head):
    inputs = keras.Input(extractor.input_shape[1:], name="image")
    # training=False keeps BatchNormalization in inference mode while fine-tuning:
    # its ImageNet statistics would be wrecked by small, augmented batches.
    features = extractor(inputs, training=False)
    return keras.Model(inputs, head(features), name="classifier")


def main():
    p = params.load()
    seed_everything(p.train.seed)
    images = manifest.read()
    classes = manifest.classes(images)
    extractor = backbones.extractor(p.model)
    model = assemble(extractor, keras.models.load_model(HEAD))
    if p.finetune.epochs:
        backbones.unfreeze(extractor.layers[0], p.finetune.unfreeze)
        model.compile(
            optimizer=optimizer(p.train.optimizer, p.finetune.lr, p.train.momentum),
            loss=LOSS,
            metrics=["accuracy"],
        )

        def data(split, **options):
            paths, labels = manifest.rows(images, split)
            onehot = keras.utils.to_categorical(labels, len(classes))
            size = p.model.image_size
            return batches(paths, onehot, p.model.backbone, size, p.train.batch_size, **options)

        train = data(
            "train",
            augment=augmentation(p.augment, p.train.seed),
            shuffle_seed=p.train.seed,
        )
        fit(
            model,
            train,
            None,
            data("val"),
            epochs=p.finetune.epochs,
            patience=p.train.patience,
            log_dir=FINETUNE_LOG,
            shuffle=False,  # the tf.data pipeline shuffles, with the seed
        )
    else:
        print("finetune: finetune.epochs is 0, saving backbone + head unchanged")
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL)
    info = {"backbone": p.model.backbone, "image_size": p.model.image_size, "classes": classes}
    model_info(MODEL).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    run(main)
