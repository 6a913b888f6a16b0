"""Fine-tuning without TensorFlow: pairing, labels, split, class weights, clean errors before any
training, head files and fingerprints, and the Segmenter on a model with its own label set."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from camvidseg import ConfigError, Segmenter
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.backends.head import (
    HEAD_FILE,
    Head,
    HeadBackend,
    HeadInfo,
    HeadWeights,
    backbone_fingerprint,
    head_identity,
    read_head,
    same_backbone,
)
from camvidseg.exceptions import UnknownColorError
from camvidseg.finetune import (
    DataError,
    DataOptions,
    EpochRecord,
    FinetuneConfig,
    Sample,
    finetune,
)
from camvidseg.finetune.data import class_weights, find_samples, read_labels, split_samples
from camvidseg.finetune.trainer import learning_rate
from camvidseg.imageio import read_label_png, save_label_png
from camvidseg.labelset import LabelSet
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import labels_and_confidence
from camvidseg.testing import street_scene
from tests.finetune_data import BLOCK_CLASSES, block_scene, write_blocks, write_streets

BLOCKS = LabelSet.from_classes("blocks", [*BLOCK_CLASSES, ("void", (0, 0, 0))], ignore=["void"])


# -- pairing and labels --------------------------------------------------------------------------


def test_samples_pair_like_evaluate(tmp_path: Path) -> None:
    streets = write_streets(tmp_path / "s", 3)
    (streets / "images" / "lonely.png").write_bytes((streets / "images" / "s00.png").read_bytes())
    samples, unlabelled = find_samples(streets / "images", streets / "labels")
    assert [(s.key, s.labels.name) for s in samples] == [
        ("s00", "s00_L.png"),
        ("s01", "s01_L.png"),
        ("s02", "s02_L.png"),
    ]
    assert [p.name for p in unlabelled] == ["lonely.png"]
    # One folder holding images and their *_L labels: the labels are not taken as images.
    both = tmp_path / "both"
    both.mkdir()
    for p in [*(streets / "images").iterdir(), *(streets / "labels").iterdir()]:
        (both / p.name).write_bytes(p.read_bytes())
    samples, _ = find_samples(both, both)
    assert [(s.image.name, s.labels.name) for s in samples][:1] == [("s00.png", "s00_L.png")]
    assert len(samples) == 3


def test_ambiguous_and_missing_folders(tmp_path: Path) -> None:
    root = write_blocks(tmp_path / "b", 2)
    (root / "images" / "sub").mkdir()
    (root / "images" / "sub" / "b00.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="several predictions share the name 'b00'"):
        find_samples(root / "images", root / "labels")
    with pytest.raises(ConfigError, match=r"label folder .*nope: no such folder"):
        find_samples(root / "images", root / "nope")


def test_read_labels_in_each_label_set(tmp_path: Path) -> None:
    _, truth = street_scene(24, 32, seed=3)
    rgb = tmp_path / "a_L.png"
    Image.fromarray(CamVidPalette.camvid32().colorize(truth)).save(rgb)
    c32 = read_labels(rgb, DataOptions(label_set=LabelSet.camvid32()))
    assert np.array_equal(c32, truth)
    c11 = read_labels(rgb, DataOptions(label_set=LabelSet.camvid11()))  # grouped with "merge"
    assert c11[truth == CamVidPalette.camvid32().id_of("LaneMkgsDriv")].tolist()[:1] == [3]
    segnet = tmp_path / "segnet.png"
    Image.fromarray(c11, "L").save(segnet)
    with pytest.raises(ConfigError, match="finetune with --classes 11"):
        read_labels(segnet, DataOptions(label_set=LabelSet.camvid32()))
    # A custom label set reads its colours and its ids.
    image_labels = block_scene(5)[1]
    colour = tmp_path / "b_L.png"
    Image.fromarray(BLOCKS.to_palette().colorize(image_labels)).save(colour)
    assert np.array_equal(read_labels(colour, DataOptions(label_set=BLOCKS)), image_labels)
    index = tmp_path / "b.png"
    Image.fromarray(image_labels, "L").save(index)
    assert np.array_equal(read_labels(index, DataOptions(label_set=BLOCKS)), image_labels)
    written = save_label_png(tmp_path / "pred.png", truth, CamVidPalette.camvid32())
    with pytest.raises(ConfigError, match="holds camvid32 ids"):
        read_labels(written, DataOptions(label_set=BLOCKS))


def test_unknown_colours_become_void_only_with_an_ignored_class() -> None:
    no_void = LabelSet.from_classes("two", [("a", (1, 1, 1)), ("b", (2, 2, 2))])
    with pytest.raises(ConfigError, match="has none"):
        DataOptions(label_set=no_void, unknown="void")
    assert DataOptions(label_set=BLOCKS, unknown="void").unknown == "void"


@given(
    keys=st.lists(
        st.text("abcdefgh", min_size=1, max_size=6), min_size=2, max_size=30, unique=True
    ),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**16),
)
def test_split_is_a_seeded_partition(keys: list[str], fraction: float, seed: int) -> None:
    samples = [Sample(k, Path(k), Path(k)) for k in keys]
    train, val = split_samples(samples, fraction, seed)
    assert 1 <= len(val) <= len(samples) - 1
    assert len(val) == min(len(samples) - 1, max(1, round(fraction * len(samples))))
    assert {s.key for s in train} | {s.key for s in val} == set(keys)
    assert not {s.key for s in train} & {s.key for s in val}
    # The order files are found in does not matter.
    assert split_samples(samples[::-1], fraction, seed)[1] == sorted(val, key=samples[::-1].index)


def test_split_needs_two_samples() -> None:
    with pytest.raises(ConfigError, match="at least 2 are needed"):
        split_samples([Sample("a", Path("a"), Path("a"))], 0.2, 0)


def test_class_weights(tmp_path: Path) -> None:
    counts = np.array([600, 300, 100, 50], np.int64)  # the last is Void
    assert class_weights("none", counts, BLOCKS).tolist() == [1, 1, 1, 0]
    inverse = class_weights("inverse", counts, BLOCKS)
    assert inverse[:3] * counts[:3] == pytest.approx([1000 / 3] * 3)
    assert inverse[3] == 0
    median = class_weights("median-freq", counts, BLOCKS)
    assert median.tolist() == pytest.approx([0.5, 1.0, 3.0, 0.0])
    as_json = tmp_path / "w.json"
    as_json.write_text(json.dumps({"Blue": 4.5}))
    assert class_weights(str(as_json), counts, BLOCKS).tolist() == [1, 1, 4.5, 0]
    as_csv = tmp_path / "w.csv"
    as_csv.write_text("name,weight\nred,0.5\n")
    assert class_weights(str(as_csv), counts, BLOCKS).tolist() == [0.5, 1, 1, 0]
    absent = np.array([600, 300, 0, 50], np.int64)
    assert class_weights("inverse", absent, BLOCKS)[2] == 0  # no pixels: never weighed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"pink": 1}', "no class 'pink'"),
        ('{"red": -1}', "weight must be a number >= 0"),
        ('{"red": "x"}', "weight must be a number >= 0"),
        ('{"blue": 2}', "'blue', which has no training pixels"),
        ('{"void": 2}', "'void', which has no training pixels (it is ignored)"),
        ("red;1\n", "line 1: expected name,weight"),
    ],
)
def test_bad_class_weight_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "weights.txt"
    path.write_text(content)
    counts = np.array([600, 300, 0, 50], np.int64)
    with pytest.raises(ConfigError) as excinfo:
        class_weights(str(path), counts, BLOCKS)
    assert message in str(excinfo.value)
    assert str(path) in str(excinfo.value)
    with pytest.raises(ConfigError, match=r"no such file .*expected none, inverse, median-freq"):
        class_weights("median", counts, BLOCKS)


def test_schedule_warms_up_then_decays() -> None:
    rates = [learning_rate(s, 40, 0.01) for s in range(40)]
    assert rates[0] == pytest.approx(0.005)
    assert max(rates) == pytest.approx(0.01)
    assert all(a >= b for a, b in itertools.pairwise(rates[1:]))
    assert 0 < rates[-1] < 0.001


def test_settings_validate() -> None:
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1"):
        FinetuneConfig(epochs=0)
    with pytest.raises(ConfigError, match="val_split must be a number in"):
        FinetuneConfig(val_split=1.0)
    with pytest.raises(ConfigError, match="augment must be one of none, flip, scale"):
        FinetuneConfig(augment="rotate")
    with pytest.raises(ConfigError, match="unknown finetune setting"):
        FinetuneConfig.from_dict({"epochs": 2, "momentum": 0.9})
    assert FinetuneConfig.from_dict(FinetuneConfig().to_dict()) == FinetuneConfig()
    record = EpochRecord(3, 0.41234, 0.5321, 0.811, 0.0016, 4.2, True)
    assert record.summary(8) == (
        "epoch 3/8  loss 0.4123  val mIoU 0.532  pixel acc 0.811  lr 1.6e-03  4.2 s  best"
    )


# -- clean errors before any training (the numpy fake backbone: no TensorFlow) ---------------


def _finetune(root: Path, **kwargs: object) -> None:
    options = {"data": DataOptions(label_set=BLOCKS), "config": FinetuneConfig(epochs=1)}
    options.update(kwargs)
    finetune(
        root / "images",
        root / "labels",
        root / "head",
        backbone=NearestColorBackend(),
        base_model="fake:33",
        **options,  # type: ignore[arg-type]
    )


def _assert_nothing_trained(root: Path) -> None:
    assert not (root / "head" / HEAD_FILE).exists()
    assert not (root / "head" / "checkpoint.npz").exists()


def test_size_mismatch_unknown_colours_and_bad_ids_are_listed(tmp_path: Path) -> None:
    root = write_blocks(tmp_path, 6)
    Image.new("L", (10, 10)).save(root / "labels" / "b01.png")
    Image.fromarray(np.full((32, 48), 7, np.uint8), "L").save(root / "labels" / "b02.png")
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(root / "labels" / "b03.png")
    with pytest.raises(DataError) as excinfo:
        _finetune(root, data=DataOptions(label_set=BLOCKS))
    message = str(excinfo.value)
    assert "3 of 6 training/validation files cannot be used" in message
    assert "b01.png: size 48x32 does not match its labels" in message
    assert "b02.png: holds ids that are not blocks classes (0..3 or 255): 7" in message
    assert "b03.png: 1 pixels have colours not in blocks: (1, 2, 3)" in message
    _assert_nothing_trained(root)


def test_unknown_colours_as_void(tmp_path: Path) -> None:
    root = write_blocks(tmp_path, 2)
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(root / "labels" / "b00.png")
    options = DataOptions(label_set=BLOCKS, gt_format="rgb", unknown="void")
    assert read_labels(root / "labels" / "b00.png", options)[0, :2].tolist() == [3, 3]
    with pytest.raises(UnknownColorError):
        read_labels(root / "labels" / "b00.png", attrs.evolve(options, unknown="error"))


def test_empty_sets_and_missing_folders(tmp_path: Path) -> None:
    root = write_blocks(tmp_path, 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no image in .* pairs with a label file"):
        finetune(
            root / "images",
            tmp_path / "empty",
            tmp_path / "head",
            backbone=NearestColorBackend(),
            base_model="fake:33",
        )
    with pytest.raises(ConfigError, match=r"image folder .*missing: no such file or folder"):
        finetune(
            tmp_path / "missing",
            root / "labels",
            tmp_path / "head",
            backbone=NearestColorBackend(),
            base_model="fake:33",
        )
    with pytest.raises(ConfigError, match="validation folders come in pairs"):
        _finetune(root, val_images=root / "images")
    one = write_blocks(tmp_path / "one", 1)
    with pytest.raises(ConfigError, match="1 labelled image"):
        _finetune(one)


def test_labels_without_any_trained_pixel(tmp_path: Path) -> None:
    root = write_blocks(tmp_path, 3)
    for path in (root / "labels").iterdir():
        Image.fromarray(np.full((32, 48), 3, np.uint8), "L").save(path)  # all Void
    with pytest.raises(DataError, match="no pixel of any trained class"):
        _finetune(root)
    _assert_nothing_trained(root)


def test_weights_file_naming_a_class_without_pixels(tmp_path: Path) -> None:
    root = write_blocks(tmp_path, 4)
    for path in (root / "labels").iterdir():  # no blue anywhere
        labels = np.asarray(Image.open(path))
        Image.fromarray(np.where(labels == 2, 0, labels).astype(np.uint8), "L").save(path)
    weights = root / "weights.json"
    weights.write_text('{"blue": 3}')
    with pytest.raises(ConfigError, match="'blue', which has no training pixels"):
        _finetune(root, config=FinetuneConfig(class_weights=str(weights)))
    _assert_nothing_trained(root)


# -- head files and fingerprints -----------------------------------------------------------------


def _head(backbone: NearestColorBackend, label_set: LabelSet = BLOCKS) -> Head:
    info = HeadInfo(label_set, "fake:33", backbone_fingerprint(backbone), "3x3", {"seed": 3})
    weights = HeadWeights.initial("3x3", backbone.feature_dim, label_set.channels, width=4)
    return Head(info, weights)


def test_head_files_round_trip(tmp_path: Path) -> None:
    backbone = NearestColorBackend(feature_dim=8)
    head = _head(backbone)
    head.weights.save(tmp_path / "head.weights.npz")
    (tmp_path / HEAD_FILE).write_text(json.dumps(head.info.to_dict()))
    loaded = read_head(tmp_path)
    assert loaded.info == head.info
    assert loaded.info.details == {"seed": 3}
    assert loaded.weights.equals(head.weights)
    assert loaded.label_set == BLOCKS
    assert head_identity(tmp_path).startswith("head:")
    with pytest.raises(ConfigError, match=r"holds no head.json"):
        read_head(tmp_path.parent)
    (tmp_path / "head.weights.npz").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot read head weights"):
        read_head(tmp_path)
    with pytest.raises(ConfigError, match="no such folder"):
        read_head(tmp_path / "missing")


def test_head_is_refused_on_another_backbone() -> None:
    head = _head(NearestColorBackend(feature_dim=8))
    with pytest.raises(ConfigError, match=r"takes 8 feature channels but .* gives 16"):
        HeadBackend(NearestColorBackend(feature_dim=16), head)

    @attrs.define
    class OtherBackbone(NearestColorBackend):
        def get_features(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
            return -super().get_features(batch)

    with pytest.raises(ConfigError, match=r"trained on another backbone \(fake:33\)"):
        HeadBackend(OtherBackbone(feature_dim=8), head)
    assert HeadBackend(NearestColorBackend(feature_dim=8, channels=32), head).input_multiple == 4


def test_fingerprints() -> None:
    a = backbone_fingerprint(NearestColorBackend())
    assert same_backbone(a, backbone_fingerprint(NearestColorBackend(channels=32)))
    assert not same_backbone(a, backbone_fingerprint(NearestColorBackend(feature_dim=719)))
    values = [float(v) for v in a.split(":")[2].split(",")]
    nudged = "probe1:720:" + ",".join(f"{v * 1.001:.6e}" for v in values)
    assert same_backbone(a, nudged)
    assert not same_backbone(a, "probe1:720:" + ",".join(f"{-v:.6e}" for v in values))
    assert same_backbone("opaque", "opaque")
    assert not same_backbone("opaque", a)


# -- the Segmenter on a model with its own label set --------------------------------------------


@attrs.define
class ExactBackend:
    """A numpy model returning one channel per trained class (as a fine-tuned export does):
    the nearest class colour."""

    label_set: LabelSet
    name: str = "exact"
    input_multiple: int = 1

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        colors = self.label_set.colors[list(self.label_set.trained_ids)].astype(np.float32)
        pixels = np.rint(batch * 255.0)
        dist = ((pixels[..., None, :] - colors) ** 2).sum(-1)
        logits = -dist / 2048.0
        exp = np.exp(logits - logits.max(-1, keepdims=True))
        probs: NDArray[np.float32] = (exp / exp.sum(-1, keepdims=True)).astype(np.float32)
        return probs


def test_segmenter_follows_the_model_label_set(tmp_path: Path) -> None:
    image, truth = block_scene(7)
    segmenter = Segmenter(ExactBackend(BLOCKS))
    assert segmenter.palette.name == "blocks"
    seg = segmenter.segment(image, return_scores=True)
    scored = truth != 3
    assert np.array_equal(seg.labels[scored], truth[scored])
    assert seg.scores is not None
    assert seg.scores.shape == (32, 48, 4)
    assert seg.class_areas().keys() <= {"red", "green", "blue"}
    labels, embedded = read_label_png(seg.save(tmp_path / "labels.png"))
    assert np.array_equal(labels, seg.labels)
    assert embedded is not None
    assert embedded[:4].tolist() == BLOCKS.colors.tolist()
    with pytest.raises(ConfigError, match=r"palette camvid32 does not fit .* blocks"):
        Segmenter(ExactBackend(BLOCKS), palette=CamVidPalette.camvid32())


def test_segmenter_groups_a_camvid32_label_set_to_11() -> None:
    image, truth = street_scene(24, 32, seed=2)
    backend = ExactBackend(LabelSet.camvid32())
    seg32 = Segmenter(backend).segment(image)
    assert seg32.palette.name == "camvid32"
    scored = truth != 30
    assert np.array_equal(seg32.labels[scored], truth[scored])
    seg11 = Segmenter(backend, palette=CamVidPalette.camvid11()).segment(image)
    assert seg11.palette.name == "camvid11"
    assert seg11.labels.max() <= 10
    with pytest.raises(ConfigError, match="does not fit the model's own label set camvid11"):
        Segmenter(ExactBackend(LabelSet.camvid11()), palette=CamVidPalette.camvid32())


def test_wrong_channel_count_is_a_clear_error() -> None:
    @attrs.define
    class Short(ExactBackend):
        def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
            return super().predict(batch)[..., :2]

    with pytest.raises(Exception, match="returned 2 channels; its label set blocks"):
        Segmenter(Short(BLOCKS)).segment(np.zeros((4, 4, 3), np.uint8))


def test_exact_layout_matches_numpy_argmax() -> None:
    batch = block_scene(1)[0][None].astype(np.float32) / np.float32(255)
    scores = ExactBackend(BLOCKS).predict(batch)[0]
    labels, _ = labels_and_confidence(scores, BLOCKS.channel_layout())
    assert np.array_equal(labels, np.array(BLOCKS.trained_ids)[scores.argmax(-1)])


@given(counts=st.lists(st.integers(0, 10**6), min_size=3, max_size=3))
def test_class_weight_properties(counts: list[int]) -> None:
    pixels = np.array([*counts, 0], np.int64)  # the last class is the ignored Void
    present = pixels[:3] > 0
    for mode in ("none", "inverse", "median-freq"):
        weights = class_weights(mode, pixels, BLOCKS)
        assert weights[3] == 0
        assert np.all(weights[:3][~present] == 0)
        assert np.all(weights[:3][present] > 0)
    inverse = class_weights("inverse", pixels, BLOCKS)[:3][present]
    if present.any():
        # Every class present weighs the same in total, and the pixels' mean weight is 1.
        totals = inverse * pixels[:3][present]
        assert np.allclose(totals, totals[0])
        assert totals.sum() == pytest.approx(pixels.sum())
        median = class_weights("median-freq", pixels, BLOCKS)[:3][present]
        if present.sum() % 2 == 1:
            # median(freq) / freq: the class of median frequency weighs exactly 1 (with an even
            # number of classes the median is the mean of two and no class need weigh 1).
            assert float(np.median(median)) == pytest.approx(1.0)
