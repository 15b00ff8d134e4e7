"""How far a model's confidence holds: expected calibration error, reliability
bins, and temperature scaling (Guo et al., 2017).

Temperature scaling divides the logits by one scalar T fitted on the
validation split; it changes no prediction (the argmax stays), only how sure
the model says it is. The logits are recovered from the probabilities as
log(p), which softmax maps back to p.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import log_loss

BINS = 15


def scaled(probabilities, temperature):
    """Class probabilities with the logits divided by `temperature`."""
    logits = np.log(np.clip(probabilities, 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(probabilities, y):
    """The T > 0 that minimises the log loss of scaled(probabilities, T) on labels y;
    1 where the model gets every one of them right: the loss then only falls as T
    goes to 0, and the fit would make the model sure of everything (measured: 37
    val photos of ants and bees, all right, gave T = 0.05 and a worse test ECE)."""
    if (probabilities.argmax(axis=1) == y).all():
        return 1.0
    labels = list(range(probabilities.shape[1]))
    loss = lambda log_t: log_loss(y, scaled(probabilities, np.exp(log_t)), labels=labels)  # noqa: E731
    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))


def calibrated_losses(probabilities, labels):
    """Each image's log loss after temperature scaling fitted on these images: how
    predict's confidence fares (fair to a model made less sure by design, such as
    label smoothing's)."""
    scaled_probabilities = scaled(probabilities, fit_temperature(probabilities, labels))
    return -np.log(np.clip(scaled_probabilities[np.arange(len(labels)), labels], 1e-15, 1.0))


def reliability(probabilities, y, bins=BINS):
    """Per confidence bin (equal width on [0, 1]): mean confidence, accuracy, count."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        members = index == b
        if members.any():
            rows.append((float(confidence[members].mean()), float(correct[members].mean()), int(members.sum())))
    return rows


def ece(probabilities, y, bins=BINS):
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over bins."""
    return sum(count * abs(accuracy - confidence)
               for confidence, accuracy, count in reliability(probabilities, y, bins)) / len(y)


def before_after(probabilities, y, temperature):
    """[(label, reliability bins, ECE)] as trained and after temperature scaling."""
    versions = (("as trained", probabilities), (f"T = {temperature:.2f}", scaled(probabilities, temperature)))
    return [(label, reliability(p, y), ece(p, y)) for label, p in versions]
