"""How far each exported file agrees with the Keras model, and how fast it runs.
"""

import statistics
import time

import numpy as np
from tqdm import tqdm

from classifier.errors import UserError

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


def compare(predictors, data, count, threshold, decide):
    """Per predictor: its decisions (`decide`: outputs -> a class index per photo, or
    rows of 0/1 for several labels per photo), unknown verdicts (score above
    `threshold`) and the largest |difference| from Keras of any class probability
    and of the score."""
    predicted = {name: [] for name in predictors}
    verdicts = {name: [] for name in predictors}
    largest = {name: {"probability": 0.0, "unknown_score": 0.0} for name in predictors}
    with tqdm(total=count, desc="check", unit="img") as bar:
        for images, _ in data:
            images = images.numpy().astype("uint8")
            expected = predictors["keras"](images)
            for name, predict in predictors.items():
                got = expected if name == "keras" else predict(images)
                for output, key in (("probabilities", "probability"), ("unknown_score", "unknown_score")):
                    difference = np.abs(np.asarray(got[output], "float64") - expected[output]).max()
                    largest[name][key] = max(largest[name][key], float(difference))
                predicted[name].append(decide(got["probabilities"]))
                verdicts[name].append(np.asarray(got["unknown_score"]).reshape(-1) > threshold)
            bar.update(len(images))
    return ({name: np.concatenate(rows) for name, rows in predicted.items()},
            {name: np.concatenate(rows) for name, rows in verdicts.items()}, largest)


def same(a, b):
    """Per photo: the same class, or the same set of labels."""
    return (np.asarray(a).reshape(len(a), -1) == np.asarray(b).reshape(len(b), -1)).all(axis=1)
