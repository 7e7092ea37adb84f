import numpy as np
import pytest

from hw2lib.data import build_faces, build_mnistm, build_svhn, count_table
from hw2lib.data.cache import cached_arrays, fingerprint
from hw2lib.data.embedded import blend_mnistm
from hw2lib.data.split import stratified_split

SMALL_MNISTM = dict(n_test_per_class=20, train_copies=1)
SMALL_SVHN = dict(n_train_per_class=8, n_test_per_class=4)


@pytest.fixture(scope="module")
def mnistm():
    return build_mnistm(seed=3, **SMALL_MNISTM)


@pytest.fixture(scope="module")
def svhn():
    return build_svhn(seed=3, **SMALL_SVHN)


@pytest.mark.parametrize("name", ["mnistm", "svhn"])
def test_shapes_dtypes_balance(name, request):
    ds = request.getfixturevalue(name)
    for split in ("train", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28, 3) and len(x) == len(y)
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
        counts = np.bincount(y, minlength=10)
        assert counts.min() == counts.max(), f"{split} not balanced: {counts}"
        assert x.std() > 20, "images look flat"


def test_mnistm_sizes(mnistm):
    assert len(mnistm.y_test) == 200 and len(mnistm.y_train) == 4800


def test_same_seed_same_arrays(mnistm, svhn):
    assert build_mnistm(seed=3, **SMALL_MNISTM).fingerprint == mnistm.fingerprint
    assert build_svhn(seed=3, **SMALL_SVHN).fingerprint == svhn.fingerprint
    assert build_svhn(seed=4, **SMALL_SVHN).fingerprint != svhn.fingerprint


def test_split_indices_disjoint_and_complete():
    y = np.repeat(np.arange(10), 7)
    tr, te = stratified_split(y, 2, np.random.default_rng(0))
    assert not set(tr) & set(te) and len(tr) + len(te) == len(y)
    assert np.bincount(y[te]).tolist() == [2] * 10


@pytest.mark.parametrize("name", ["mnistm", "svhn"])
def test_no_test_image_in_train(name, request):
    ds = request.getfixturevalue(name)
    train = {x.tobytes() for x in ds.x_train}
    assert not any(x.tobytes() in train for x in ds.x_test)


def test_mnistm_blend_is_abs_difference():
    digit = np.array([[0, 255]], np.uint8)
    patch = np.array([[[10, 200, 255], [10, 200, 255]]], np.uint8)
    np.testing.assert_array_equal(blend_mnistm(digit, patch), [[[10, 200, 255], [245, 55, 0]]])


def test_faces():
    f = build_faces()
    assert f.shape == (100, 25, 25) and f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    with pytest.raises(ValueError):
        build_faces(101)


def test_cache_reads_back_without_rebuilding(tmp_path):
    arrays = {"a": np.arange(6).reshape(2, 3)}
    first = cached_arrays("t", {"k": 1}, lambda: arrays, tmp_path)

    def fail():
        raise AssertionError("rebuilt although cached")
    again = cached_arrays("t", {"k": 1}, fail, tmp_path)
    assert fingerprint(first) == fingerprint(again)
    assert list(tmp_path.glob("*.tmp*")) == []


def test_count_table(mnistm):
    t = count_table({"mnistm": mnistm})
    assert t.loc["mnistm, test", "total"] == 200 and t.loc["mnistm, train", "3"] == 480
    named = count_table({"mnistm": mnistm}, {"mnistm": "MNIST-M-like"})
    assert named.loc["MNIST-M-like, train", "total"] == t.loc["mnistm, train", "total"]


def test_mnistm_train_digits_are_the_builders_training_split_and_reblend_stays_in_train_band():
    """The digit CNN's fresh blends use exactly build_mnistm's training digits (labels in its
    order, none of the held-out ones) and crops of the training band only."""
    from hw2lib.data import embedded
    ds = build_mnistm(seed=3, **SMALL_MNISTM)
    digits, labels = embedded.mnistm_train_digits(seed=3, n_test_per_class=20)
    assert len(digits) == len(ds.x_train) and (labels == ds.y_train).all()  # one copy each
    x = embedded.reblend(digits[:8], np.random.default_rng(0))
    assert x.shape == (8, 28, 28, 3) and x.dtype == np.uint8
    assert (x == embedded.reblend(digits[:8], np.random.default_rng(0))).all()
    seen = []  # every crop's top row lies above the test band
    real = embedded._random_patch
    try:
        def spy(rng, split, size=28):
            seen.append(split)
            return real(rng, split, size)
        embedded._random_patch = spy
        embedded.reblend(digits[:20], np.random.default_rng(1))
    finally:
        embedded._random_patch = real
    assert seen == ["train"] * 20
