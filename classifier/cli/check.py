"""Check params.yaml by hand: `python -m classifier.cli.check` (every stage also checks it).

Not a stage: it checks the values that belong to other modules too (backbone
names and sizes, export formats), which no single stage needs all of.
"""

from classifier import params
from classifier.errors import run
from classifier.model import registry
from classifier.runtime import formats


def check_all(raw):
    """Validate a params dict as params.yaml would be; return its namespaces
    (every `auto` resolved) and {key: what auto or the value resolved to}."""
    p = params.validate(raw)
    formats.check(p.export.formats)
    return registry.resolve(p)


def main():
    p, recipe = check_all(params.read())
    print(f"{params.PARAMS_FILE}: ok; for {p.model.backbone} this runs "
          + ", ".join(f"{key} = {value}" for key, value in recipe.items()))


if __name__ == "__main__":
    run(main)
