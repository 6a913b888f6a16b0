"""The channel layout of a Segmenter: forced with ``layout=``, else detected once, privately."""

from __future__ import annotations

import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np
import pytest

from camvidseg import Segmenter
from camvidseg.postprocess import ChannelLayout
from camvidseg.testing import NearestColorBackend, street_scene

VOID = 30


def test_detection_leaves_the_public_setting_alone() -> None:
    image, truth = street_scene(20, 24, seed=1)
    segmenter = Segmenter(NearestColorBackend())
    np.testing.assert_array_equal(segmenter.segment(image).labels, truth)
    assert segmenter.layout is None  # what it learnt at run time is not a setting
    assert segmenter.layout_for(33).name == "background33"
    assert segmenter.layout_for(32).name == "void32"
    assert Segmenter(NearestColorBackend(), drop_void=True).layout_for(32).name == "void32-drop"


def test_a_forced_layout_is_used_when_it_fits_the_scores() -> None:
    forced = ChannelLayout.detect(32, drop_void=True)
    segmenter = Segmenter(NearestColorBackend(channels=32), layout=forced)
    assert segmenter.layout_for(32) is forced
    assert segmenter.layout_for(33).name == "background33"  # it does not fit 33 channels
    black = np.zeros((3, 4, 3), np.uint8)  # the Void colour
    assert (Segmenter(NearestColorBackend(channels=32)).segment(black).labels == VOID).all()
    # Forcing "drop Void" acts like drop_void=True: the next-nearest class wins.
    dropped = Segmenter(NearestColorBackend(channels=32), drop_void=True).segment(black)
    assert not (dropped.labels == VOID).any()
    np.testing.assert_array_equal(segmenter.segment(black).labels, dropped.labels)


@pytest.mark.parametrize("fused_labels", [True, False])
def test_threads_sharing_a_segmenter_detect_the_layout_once(
    monkeypatch: pytest.MonkeyPatch, fused_labels: bool
) -> None:
    real_detect = ChannelLayout.detect
    calls: list[int] = []
    lock = threading.Lock()

    def slow_detect(num_channels: int, **kwargs: Any) -> ChannelLayout:
        with lock:
            calls.append(num_channels)
        time.sleep(0.02)  # widen the window in which a second thread could detect again
        return real_detect(num_channels, **kwargs)

    monkeypatch.setattr(ChannelLayout, "detect", staticmethod(slow_detect))
    images = [street_scene(16, 20, seed=i) for i in range(12)]
    segmenter = Segmenter(NearestColorBackend(), fused_labels=fused_labels)
    start = threading.Barrier(6)

    def segment(index: int) -> np.ndarray[Any, Any]:
        start.wait()
        return segmenter.segment(images[index][0]).labels

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(segment, range(12)))
    assert calls == [33]
    for (_, truth), labels in zip(images, results, strict=True):
        np.testing.assert_array_equal(labels, truth)
    assert segmenter.layout is None


def test_copies_and_pickles_learn_the_layout_again() -> None:
    image, truth = street_scene(12, 16, seed=4)
    segmenter = Segmenter(NearestColorBackend(), batch_size=2)
    segmenter.segment(image)
    restored = pickle.loads(pickle.dumps(segmenter))
    assert restored.batch_size == 2
    np.testing.assert_array_equal(restored.segment(image).labels, truth)
    copy = attrs.evolve(segmenter, batch_size=3)
    assert copy.layout is None
    np.testing.assert_array_equal(copy.segment(image).labels, truth)
