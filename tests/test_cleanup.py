"""camvidseg.cleanup against slow obvious references (exactly) and scipy.ndimage per class."""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg import ConfigError, InvalidImageError
from camvidseg.cleanup import (
    SHAPES,
    CleanupConfig,
    Shape,
    closing,
    fill_regions,
    label_regions,
    majority_filter,
    opening,
    remove_small_regions,
    structuring_element,
)
from camvidseg.testing import street_scene

ndi = pytest.importorskip("scipy.ndimage")

Labels = NDArray[np.uint8]
Mask = NDArray[np.bool_]

# -- strategies ------------------------------------------------------------------------------------


@st.composite
def few_class_maps(draw: st.DrawFn, max_side: int = 12) -> Labels:
    """Small maps over a few (arbitrary) ids, so regions, thin parts and ties are common."""
    ids = draw(st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True))
    shape = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    return draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from(ids)))


@st.composite
def blocky_maps(draw: st.DrawFn) -> Labels:
    """Maps of 2x2 blocks plus speckles: larger regions with some noise."""
    coarse = draw(few_class_maps(max_side=7))
    labels = np.kron(coarse, np.ones((2, 2), np.uint8))
    noise = draw(hnp.arrays(np.bool_, labels.shape, elements=st.booleans()))
    flips = draw(hnp.arrays(np.uint8, labels.shape, elements=st.sampled_from([3, 9])))
    keep = draw(st.booleans())
    return labels if keep else np.where(noise & (flips == 3), flips, labels).astype(np.uint8)


any_map = st.one_of(few_class_maps(), blocky_maps())
many_class_map = hnp.arrays(
    np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 255)
)
shapes = st.sampled_from(SHAPES)
radii = st.integers(0, 3)
connectivities = st.sampled_from([4, 8])


def class_subsets(labels: Labels) -> st.SearchStrategy[list[int] | None]:
    present = sorted({int(v) for v in np.unique(labels)})
    return st.one_of(st.none(), st.lists(st.sampled_from([*present, 7]), max_size=3))


# -- slow references -------------------------------------------------------------------------------


def ref_element(shape: str, radius: int) -> Mask:
    out = np.zeros((2 * radius + 1, 2 * radius + 1), bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if shape == "square":
                inside = True
            elif shape == "cross":
                inside = dy == 0 or dx == 0
            else:
                inside = dy * dy + dx * dx <= radius * radius
            out[dy + radius, dx + radius] = inside
    return out


def element_offsets(element: Mask) -> list[tuple[int, int]]:
    r = element.shape[0] // 2
    return [(int(y) - r, int(x) - r) for y, x in zip(*np.nonzero(element), strict=True)]


def ref_erode(mask: Mask, element: Mask) -> Mask:
    """Outside the image counts as inside the mask."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            out[y, x] = all(
                mask[y + dy, x + dx]
                for dy, dx in element_offsets(element)
                if 0 <= y + dy < h and 0 <= x + dx < w
            )
    return out


def ref_dilate(mask: Mask, element: Mask) -> Mask:
    """Outside the image counts as outside the mask."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            out[y, x] = any(
                mask[y - dy, x - dx]
                for dy, dx in element_offsets(element)
                if 0 <= y - dy < h and 0 <= x - dx < w
            )
    return out


def allowed(classes: Iterable[int] | None, label: int) -> bool:
    return classes is None or label in set(classes)


def ref_opening(
    labels: Labels,
    element: Mask,
    classes: list[int] | None,
    fill: int | None,
    connectivity: int = 8,
) -> Labels:
    removed = np.zeros(labels.shape, bool)
    for c in np.unique(labels):
        if allowed(classes, int(c)):
            mask = labels == c
            removed |= mask & ~ref_dilate(ref_erode(mask, element), element)
    if fill is not None:
        out: Labels = labels.copy()
        out[removed] = fill
        return out
    return ref_fill_regions(labels, removed, connectivity)


def ref_closing(labels: Labels, element: Mask, classes: list[int] | None) -> Labels:
    out: Labels = labels.copy()
    claimed = np.zeros(labels.shape, bool)
    for c in sorted(int(v) for v in np.unique(labels)):  # ascending: smallest id wins
        if allowed(classes, c):
            mask = labels == c
            claims = ref_erode(ref_dilate(mask, element), element) & ~mask & ~claimed
            out[claims] = c
            claimed |= claims
    return out


def ref_majority(labels: Labels, size: int) -> Labels:
    h, w = labels.shape
    r = size // 2
    out: Labels = labels.copy()
    for y in range(h):
        for x in range(w):
            window = labels[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
            counts = Counter(int(v) for v in window.reshape(-1))
            best = max(counts.values())
            tied = sorted(c for c, n in counts.items() if n == best)
            out[y, x] = labels[y, x] if int(labels[y, x]) in tied else tied[0]
    return out


def neighbours(y: int, x: int, shape: tuple[int, ...], connectivity: int) -> list[tuple[int, int]]:
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    return [
        (y + dy, x + dx) for dy, dx in steps if 0 <= y + dy < shape[0] and 0 <= x + dx < shape[1]
    ]


def ref_components(values: NDArray[np.generic], connectivity: int) -> NDArray[np.int64]:
    """Region ids 1.. by breadth-first search, numbered in raster order of first pixels."""
    h, w = values.shape
    ids = np.zeros((h, w), np.int64)
    count = 0
    for y in range(h):
        for x in range(w):
            if ids[y, x]:
                continue
            count += 1
            ids[y, x] = count
            queue = deque([(y, x)])
            while queue:
                cy, cx = queue.popleft()
                for ny, nx in neighbours(cy, cx, (h, w), connectivity):
                    if not ids[ny, nx] and values[ny, nx] == values[cy, cx]:
                        ids[ny, nx] = count
                        queue.append((ny, nx))
    return ids


def boundary(ids: NDArray[np.int64], region: int, connectivity: int) -> set[tuple[int, int]]:
    out = set()
    for y, x in zip(*np.nonzero(ids == region), strict=True):
        for ny, nx in neighbours(int(y), int(x), ids.shape, connectivity):
            if ids[ny, nx] != region:
                out.add((ny, nx))
    return out


def vote(labels: Labels, voters: Iterable[tuple[int, int]]) -> int:
    counts = Counter(int(labels[p]) for p in voters)
    best = max(counts.values())
    return min(c for c, n in counts.items() if n == best)


def ref_remove_small(
    labels: Labels, min_size: int, connectivity: int, classes: list[int] | None
) -> Labels:
    ids = ref_components(labels, connectivity)
    sizes = Counter(ids.reshape(-1).tolist())
    small = {
        r for r, n in sizes.items() if n < min_size and allowed(classes, int(labels[ids == r][0]))
    }
    out: Labels = labels.copy()
    for r in small:
        border = boundary(ids, r, connectivity)
        if not border:
            continue
        stays = [p for p in border if ids[p] not in small]
        out[ids == r] = vote(labels, stays or border)
    return out


def ref_fill_regions(labels: Labels, mask: Mask, connectivity: int) -> Labels:
    ids = ref_components(mask, connectivity)
    out: Labels = labels.copy()
    for r in np.unique(ids[mask]):
        border = boundary(ids, int(r), connectivity)
        if border:
            out[ids == r] = vote(labels, border)
    return out


# -- structuring elements --------------------------------------------------------------------------


@given(shapes, radii)
def test_structuring_element_matches_definition(shape: Shape, radius: int) -> None:
    element = structuring_element(shape, radius)
    np.testing.assert_array_equal(element, ref_element(shape, radius))
    np.testing.assert_array_equal(element, element[::-1, ::-1])  # symmetric


def test_small_elements_equal_scipy_structures() -> None:
    np.testing.assert_array_equal(
        structuring_element("cross", 1), ndi.generate_binary_structure(2, 1)
    )
    np.testing.assert_array_equal(structuring_element("disk", 1), structuring_element("cross", 1))
    np.testing.assert_array_equal(
        structuring_element("square", 1), ndi.generate_binary_structure(2, 2)
    )


# -- opening and closing ---------------------------------------------------------------------------


@given(st.data(), any_map, shapes, radii)
def test_opening_equals_reference(
    st_data: st.DataObject, labels: Labels, shape: Shape, r: int
) -> None:
    classes = st_data.draw(class_subsets(labels))
    fill = st_data.draw(st.sampled_from([None, 0, 255]))
    connectivity = st_data.draw(connectivities)
    got = opening(labels, r, shape=shape, classes=classes, fill=fill, connectivity=connectivity)
    want = ref_opening(labels, ref_element(shape, r), classes, fill, connectivity)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


@given(st.data(), any_map, shapes, radii)
def test_closing_equals_reference(
    st_data: st.DataObject, labels: Labels, shape: Shape, r: int
) -> None:
    classes = st_data.draw(class_subsets(labels))
    got = closing(labels, r, shape=shape, classes=classes)
    np.testing.assert_array_equal(got, ref_closing(labels, ref_element(shape, r), classes))


@given(many_class_map, shapes, st.integers(1, 2))
def test_morphology_with_more_than_64_classes(labels: Labels, shape: Shape, r: int) -> None:
    element = ref_element(shape, r)
    np.testing.assert_array_equal(
        opening(labels, r, shape=shape, fill=1), ref_opening(labels, element, None, 1)
    )
    np.testing.assert_array_equal(
        closing(labels, r, shape=shape), ref_closing(labels, element, None)
    )


def scipy_opening(labels: Labels, element: Mask, fill: int) -> Labels:
    out: Labels = labels.copy()
    for c in np.unique(labels):
        mask = labels == c
        eroded = ndi.binary_erosion(mask, element, border_value=1)
        out[mask & ~ndi.binary_dilation(eroded, element, border_value=0)] = fill
    return out


def scipy_closing(labels: Labels, element: Mask) -> Labels:
    out: Labels = labels.copy()
    claimed = np.zeros(labels.shape, bool)
    for c in np.unique(labels):
        mask = labels == c
        dilated = ndi.binary_dilation(mask, element, border_value=0)
        claims = ndi.binary_erosion(dilated, element, border_value=1) & ~mask & ~claimed
        out[claims] = c
        claimed |= claims
    return out


@pytest.fixture(scope="module")
def noisy_scene() -> Labels:
    _, labels = street_scene(90, 120, seed=4)
    rng = np.random.default_rng(4)
    noisy: Labels = labels.copy()
    spots = rng.random(labels.shape) < 0.03
    noisy[spots] = rng.choice(np.unique(labels), int(spots.sum()))
    return noisy


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("radius", [1, 2, 4])
def test_opening_and_closing_equal_scipy_per_class(
    noisy_scene: Labels, shape: Shape, radius: int
) -> None:
    element = structuring_element(shape, radius)
    opened = opening(noisy_scene, radius, shape=shape, fill=255)
    np.testing.assert_array_equal(opened, scipy_opening(noisy_scene, element, 255))
    assert (opened != noisy_scene).any()  # the noise really was removed
    closed = closing(noisy_scene, radius, shape=shape)
    np.testing.assert_array_equal(closed, scipy_closing(noisy_scene, element))
    assert (closed != noisy_scene).any()


@given(any_map)
def test_opening_and_closing_equal_scipy_on_random_maps(labels: Labels) -> None:
    element = structuring_element("square", 1)
    np.testing.assert_array_equal(opening(labels, 1, fill=7), scipy_opening(labels, element, 7))
    np.testing.assert_array_equal(closing(labels, 1), scipy_closing(labels, element))


def test_opening_fills_a_removed_line_with_the_surroundings() -> None:
    labels = np.full((7, 9), 4, np.uint8)
    labels[3, 1:8] = 6  # one pixel thick: no 3x3 fits inside
    labels[5:7, 0:3] = 2
    out = opening(labels, 1, classes=[6])
    assert (out[3] == 4).all()
    np.testing.assert_array_equal(out[5:7, 0:3], 2)  # class 2 was not opened


def test_border_does_not_erode_regions() -> None:
    labels = np.zeros((6, 6), np.uint8)
    labels[:2, :] = 5  # a 2-pixel strip along the top edge: thinner than 3x3 only with the border
    labels[5, 2] = 5  # a speck touching the bottom edge
    out = opening(labels, 1, fill=9)
    np.testing.assert_array_equal(out[:2], 5)
    assert out[5, 2] == 9


# -- majority filter -------------------------------------------------------------------------------


@given(st.one_of(any_map, many_class_map), st.sampled_from([1, 3, 5, 7]))
def test_majority_equals_reference(labels: Labels, size: int) -> None:
    np.testing.assert_array_equal(majority_filter(labels, size), ref_majority(labels, size))


def scipy_majority(labels: Labels, size: int) -> Labels:
    present = np.unique(labels)
    kernel = np.ones((size, size), np.int32)
    counts = np.stack(
        [ndi.correlate((labels == c).astype(np.int32), kernel, mode="constant") for c in present]
    )
    where = (np.searchsorted(present, labels), *np.indices(labels.shape))
    own = counts[where]
    best = counts.max(axis=0)
    return np.where(own == best, labels, present[counts.argmax(axis=0)]).astype(np.uint8)


@pytest.mark.parametrize("size", [3, 5, 9])
def test_majority_equals_scipy_counts(noisy_scene: Labels, size: int) -> None:
    out = majority_filter(noisy_scene, size)
    np.testing.assert_array_equal(out, scipy_majority(noisy_scene, size))
    assert (out != noisy_scene).mean() > 0.01


def test_majority_tie_rules() -> None:
    labels = np.array([[2, 2, 2], [5, 5, 5], [7, 7, 9]], np.uint8)
    out = majority_filter(labels, 3)
    assert out[1, 1] == 5  # 2 x3, 5 x3, 7 x2: the own label is among the tied -> kept
    assert out[2, 2] == 5  # clipped window 5, 5, 7, 9 -> 5
    labels = np.array([[1, 3], [3, 1]], np.uint8)
    np.testing.assert_array_equal(majority_filter(labels, 3), labels)  # 2-2 ties keep their own
    labels = np.array([[4, 9, 2, 2, 4, 4]], np.uint8)
    assert majority_filter(labels, 3).tolist() == [[4, 9, 2, 2, 4, 4]]  # 1-1-1 ties keep own


def test_majority_tie_goes_to_smallest_id_when_own_label_loses() -> None:
    labels = np.array([[6, 6, 0], [3, 9, 0], [3, 0, 6]], np.uint8)
    # Window of the centre: 6 x3, 0 x3, 3 x2, 9 x1 -> tie between 0 and 6, own 9 not tied -> 0.
    assert majority_filter(labels, 3)[1, 1] == 0


# -- connected regions -----------------------------------------------------------------------------


@given(st.one_of(any_map, many_class_map), connectivities)
def test_label_regions_equals_breadth_first_search(labels: Labels, connectivity: int) -> None:
    regions, count = label_regions(labels, connectivity)
    assert regions.dtype == np.int32
    ref = ref_components(labels, connectivity)
    np.testing.assert_array_equal(regions, ref)
    assert count == ref.max()


@given(any_map, connectivities)
def test_label_regions_equals_scipy_label_per_class(labels: Labels, connectivity: int) -> None:
    regions, _ = label_regions(labels, connectivity)
    structure = ndi.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    for c in np.unique(labels):
        mask = labels == c
        expected, _ = ndi.label(mask, structure)
        ours = np.zeros_like(expected)
        ours[mask] = np.unique(regions[mask], return_inverse=True)[1] + 1
        np.testing.assert_array_equal(ours, expected)


def test_label_regions_on_a_scene_equals_scipy(noisy_scene: Labels) -> None:
    regions, count = label_regions(noisy_scene, 8)
    total = 0
    for c in np.unique(noisy_scene):
        mask = noisy_scene == c
        expected, n = ndi.label(mask, np.ones((3, 3)))
        total += n
        ours = np.zeros_like(expected)
        ours[mask] = np.unique(regions[mask], return_inverse=True)[1] + 1
        np.testing.assert_array_equal(ours, expected)
    assert count == total


def test_label_regions_spiral_needs_many_merges() -> None:
    # A long snake of one class whose runs meet in an order that defeats one-step hooking.
    labels = np.zeros((21, 21), np.uint8)
    for k in range(0, 21, 4):
        labels[k, :] = 1
        labels[k : k + 4, 20 if k % 8 == 0 else 0] = 1
    regions, _ = label_regions(labels, 4)
    np.testing.assert_array_equal(regions, ref_components(labels, 4))


@given(st.data(), any_map, st.integers(0, 10), connectivities)
def test_remove_small_regions_equals_reference(
    st_data: st.DataObject, labels: Labels, min_size: int, connectivity: int
) -> None:
    classes = st_data.draw(class_subsets(labels))
    got = remove_small_regions(labels, min_size, connectivity=connectivity, classes=classes)
    np.testing.assert_array_equal(got, ref_remove_small(labels, min_size, connectivity, classes))


def test_remove_small_regions_on_a_scene(noisy_scene: Labels) -> None:
    _, clean = street_scene(90, 120, seed=4)
    out = remove_small_regions(noisy_scene, 6)
    np.testing.assert_array_equal(out, ref_remove_small(noisy_scene, 6, 8, None))
    # Isolated noise pixels are gone; what remains wrong is near true boundaries or clustered.
    assert (out != clean).mean() < 0.4 * (noisy_scene != clean).mean()


def test_small_region_surrounded_by_small_regions_uses_all_voters() -> None:
    labels = np.array([[1, 2], [3, 4]], np.uint8)  # every region is small: nobody stays
    out = remove_small_regions(labels, 2, connectivity=4)
    # (0,0) borders 2 and 3 -> 2; (0,1) borders 1,4 -> 1; (1,0) borders 1,4 -> 1; (1,1) -> 2
    assert out.tolist() == [[2, 1], [1, 2]]
    whole = np.full((2, 3), 5, np.uint8)  # one region, no boundary: kept
    np.testing.assert_array_equal(remove_small_regions(whole, 100), whole)


@given(st.data(), any_map, connectivities)
def test_fill_regions_equals_reference(
    st_data: st.DataObject, labels: Labels, connectivity: int
) -> None:
    mask = st_data.draw(hnp.arrays(np.bool_, labels.shape))
    got = fill_regions(labels, mask, connectivity=connectivity)
    np.testing.assert_array_equal(got, ref_fill_regions(labels, mask, connectivity))


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [np.zeros((3, 3), np.int32), np.zeros((3, 3, 1), np.uint8), [[1, 2]], np.zeros(3, np.uint8)],
)
def test_bad_label_maps_are_refused(bad: object) -> None:
    for call in (
        lambda: opening(bad, 1),  # type: ignore[arg-type]
        lambda: closing(bad, 1),  # type: ignore[arg-type]
        lambda: majority_filter(bad, 3),  # type: ignore[arg-type]
        lambda: remove_small_regions(bad, 3),  # type: ignore[arg-type]
        lambda: label_regions(bad),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidImageError, match="HxW uint8"):
            call()


def test_bad_options_are_config_errors() -> None:
    labels = np.zeros((3, 3), np.uint8)
    with pytest.raises(ConfigError, match="shape must be one of"):
        opening(labels, 1, shape="hexagon")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="radius must be"):
        closing(labels, -1)
    with pytest.raises(ConfigError, match="must be odd"):
        majority_filter(labels, 4)
    with pytest.raises(ConfigError, match="connectivity must be 4 or 8"):
        remove_small_regions(labels, 3, connectivity=6)
    with pytest.raises(ConfigError, match="classes must be label ids"):
        opening(labels, 1, classes=[300])
    with pytest.raises(ConfigError, match="fill must be"):
        opening(labels, 1, fill=256)
    with pytest.raises(InvalidImageError, match="mask must be bool"):
        fill_regions(labels, np.zeros((3, 3), np.uint8))


def test_inputs_are_not_modified() -> None:
    _, labels = street_scene(30, 40, seed=2)
    before = labels.copy()
    for out in (
        opening(labels, 1),
        closing(labels, 1),
        majority_filter(labels, 3),
        remove_small_regions(labels, 50),
        CleanupConfig(opening=1, closing=1, min_region=20, majority=3).apply(labels),
    ):
        assert out is not labels
    np.testing.assert_array_equal(labels, before)


# -- CleanupConfig ---------------------------------------------------------------------------------


@given(
    st.builds(
        CleanupConfig,
        opening=st.integers(0, 2),
        closing=st.integers(0, 2),
        shape=shapes,
        min_region=st.integers(0, 20),
        connectivity=connectivities,
        majority=st.sampled_from([0, 1, 3, 5]),
        classes=st.one_of(st.none(), st.lists(st.integers(0, 255), max_size=4)),
    ),
    any_map,
)
def test_config_round_trips_and_applies_the_steps_in_order(
    config: CleanupConfig, labels: Labels
) -> None:
    assert CleanupConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    expected = labels.copy()
    if config.opening:
        expected = opening(
            expected,
            config.opening,
            shape=config.shape,
            classes=config.classes,
            connectivity=config.connectivity,
        )
    if config.closing:
        expected = closing(expected, config.closing, shape=config.shape, classes=config.classes)
    expected = remove_small_regions(
        expected, config.min_region, connectivity=config.connectivity, classes=config.classes
    )
    expected = majority_filter(expected, max(1, config.majority))
    np.testing.assert_array_equal(config.apply(labels), expected)


def test_default_config_is_identity(noisy_scene: Labels) -> None:
    config = CleanupConfig()
    assert not config.enabled
    np.testing.assert_array_equal(config.apply(noisy_scene), noisy_scene)
    assert config.to_dict() == {
        "opening": 0,
        "closing": 0,
        "shape": "square",
        "min_region": 0,
        "connectivity": 8,
        "majority": 0,
        "classes": None,
    }


def test_config_cleans_a_noisy_scene(noisy_scene: Labels) -> None:
    _, clean = street_scene(90, 120, seed=4)
    out = CleanupConfig(min_region=8, majority=3).apply(noisy_scene)
    assert (out != clean).mean() < 0.3 * (noisy_scene != clean).mean()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_region": -1}, "min_region must be an integer >= 0"),
        ({"majority": 4}, "majority must be 0"),
        ({"shape": "blob"}, "shape must be one of"),
        ({"connectivity": 6}, "connectivity must be 4 or 8"),
        ({"classes": "road"}, "classes must be a list"),
        ({"classes": [1.5]}, "classes must be integers"),
        ({"opening": True}, "opening must be an integer"),
        ({"kernel": 3}, "unknown cleanup option"),
    ],
)
def test_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CleanupConfig.from_dict(data)


def test_config_from_dict_refuses_non_mappings() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        CleanupConfig.from_dict([1, 2])  # type: ignore[arg-type]
