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



def test_the_label_next_replay_starts_every_strategy_from_the_same_labelled_photos(monkeypatch):
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("label_next_bench", ROOT / "bench/label_next.py")
    replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replay)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 16))

    def split(n):
        y = np.arange(n) % 3
        return (centres[y] + rng.normal(0, 1, (n, 16))).astype("float32"), y

    data = {"train": split(150), "val": split(30), "test": split(60)}
    fitted, seen = replay.fitted, []
    monkeypatch.setattr(replay, "fitted", lambda x, *args: seen.append(x) or fitted(x, *args))

    def first_photos(strategy, seed):
        seen.clear()
        points = replay.curve(data, True, strategy, seed=seed, rounds=2, batch=5)
        assert [n for n, *_ in points] == [3 * replay.START, 3 * replay.START + 5, 3 * replay.START + 10]
        return seen[0], seen[-1]

    (start, end), others = first_photos("random", 4), [first_photos(s, 4) for s in ("queue", "switch")]
    for other_start, other_end in others:
        assert np.array_equal(other_start, start)  # paired: the same labelled photos to begin with
        assert not np.array_equal(other_end, end)  # then each strategy picks its own
    assert not np.array_equal(first_photos("random", 5)[0], start)  # a seed draws its own start
