"""Layers of this project that saved models hold: keras.applications' preprocessing
as a layer. Registered under the package name "stages" (as when it was saved
first), so that every saved .keras file loads.
"""

import keras

# ImageNet's mean pixel, in RGB order ("caffe" mode of keras.applications).
IMAGENET_MEAN = (123.68, 116.779, 103.939)


@keras.saving.register_keras_serializable(package="stages")
class Preprocess(keras.layers.Layer):
    """keras.applications' preprocess_input as a layer, giving the same numbers
    (tests/test_backbones.py checks it): "caffe" (VGG16) RGB to BGR minus the
    ImageNet mean, "tf" (MobileNetV2, ResNet50V2, InceptionV3) scale to [-1, 1]."""

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images):
        if self.mode == "tf":
            return images / 127.5 - 1.0
        # The mean comes off before the channels are reversed (Keras does it the
        # other way round): the input then feeds one subtraction, which keeps a
        # full-integer LiteRT model's uint8 input the pixels themselves.
        return keras.ops.flip(images - keras.ops.convert_to_tensor(IMAGENET_MEAN), axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
