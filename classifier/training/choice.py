"""Which head `train` keeps: the candidate with the lower log loss after
temperature scaling, on the val split, or (head.choose_by folds) in k-fold
cross-validation over train + val, each candidate fitted on k-1 folds and
scored on the one left out."""

FOLDS = 5


def loss(model, x, y, task):
    """Mean log loss of the model's calibrated probabilities on (x, y) (the task's
    calibration: temperature scaling, or Platt scaling per label)."""
    return task.losses(task.probabilities(model.predict(x, verbose=0)), y).mean()


def val_losses(models, x_val, y_val, task):
    return {name: round(float(loss(model, x_val, y_val, task)), 5) for name, model in models.items()}


def cross_validated_losses(fitters, x, y, seed, task):
    """{name: mean loss over the held-out folds}; `fitters` maps a name to a function
    (x, y) -> fitted model."""
    losses = {name: [] for name in fitters}
    for fitted_on, left_out in task.folds(y, FOLDS, seed).split(x, y):
        for name, fit in fitters.items():
            model = fit(x[fitted_on], y[fitted_on])
            losses[name].append(loss(model, x[left_out], y[left_out], task) * len(left_out))
    return {name: round(float(sum(total) / len(y)), 5) for name, total in losses.items()}
