"""How far each exported file agrees with the Keras model, and how fast it runs.
"""

import statistics
import time

import numpy as np
from tqdm import tqdm

from classifier.errors import UserError
from classifier.model.heads import probabilities

LATENCY_IMAGES = 20  # timed one at a time: the median is the latency


def latency_ms(predict, images):
    """Median milliseconds for one image (a batch of one), after a warm-up call."""
    predict(images[:1])
    times = []
    for image in images[:LATENCY_IMAGES]:
        start = time.perf_counter()
        predict(image[None])
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3)


def check_int8_input(path):
    """The int8 model's uint8 input must be the pixels themselves."""
    from ai_edge_litert.interpreter import Interpreter

    quantization = Interpreter(model_path=str(path)).get_input_details()[0]["quantization"]
    if quantization != (1.0, 0):
        raise UserError(f"{path}: input quantization {quantization}, expected (1.0, 0): pixels would need rescaling")


def compare(predictors, data, count):
    """Per predictor: predicted classes and the largest |probability difference| from Keras."""
    predicted = {name: [] for name in predictors}
    largest = dict.fromkeys(predictors, 0.0)
    with tqdm(total=count, desc="check", unit="img") as bar:
        for images, _ in data:
            images = images.numpy().astype("uint8")
            expected = probabilities(predictors["keras"](images))
            for name, predict in predictors.items():
                got = expected if name == "keras" else probabilities(predict(images))
                largest[name] = max(largest[name], float(np.abs(got - expected).max()))
                predicted[name].append(got.argmax(axis=1))
            bar.update(len(images))
    return {name: np.concatenate(rows) for name, rows in predicted.items()}, largest
