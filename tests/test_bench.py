"""bench/bench.py section 5 without real photos or weights says so and reports no
accuracy (tests/test_real_photos.py runs it on real photos)."""

import sys

from conftest import ROOT, environment, make_images, sh


def bench(tmp_path, *args, env=None):
    results = tmp_path / "RESULTS.md"
    sh(ROOT, sys.executable, "bench/bench.py", "--sections", "5", "--results", str(results), *args, env=env)
    return results.read_text()


def test_without_photos_section_5_says_it_was_not_run(tmp_path):
    text = bench(tmp_path)
    assert "| status | not run: give --data DIR of real photos |" in text
    assert "accuracy head" not in text


def test_without_imagenet_weights_section_5_says_it_was_not_run(tmp_path):
    photos = make_images(tmp_path / "photos", per_class=8)
    env = {**environment(), "KERAS_HOME": str(tmp_path / "no-weights")}
    text = bench(tmp_path, "--data", str(photos), "--runs", "vgg16,resnet50v2", env=env)
    assert text.count("not run: no ImageNet weights in $KERAS_HOME/models") == 2
    assert "accuracy head" not in text

