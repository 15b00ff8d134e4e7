"""Test-time augmentation: a photo and its mirror image are the same photo."""


def flip_average(predict, images):
    """Mean of the class probabilities of the images and of their horizontal flips
    (N x H x W x 3 pixels; `predict` returns probabilities)."""
    return (predict(images) + predict(images[:, :, ::-1].copy())) / 2
