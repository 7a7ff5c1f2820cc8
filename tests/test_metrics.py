import math

import numpy as np
import pytest

from segaug.errors import SegaugError
from segaug.metrics import ConfusionMeter, confusion_csv, confusion_matrix, jsonable, scores

NAMES = ("a", "b", "c")


def test_confusion_matrix_counts_and_ignore():
    target = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 0]], dtype=np.uint8)
    conf = confusion_matrix(pred, target, 3)
    assert conf.dtype == np.int64
    # rows = ground truth, cols = prediction; the 255 pixel (pred 0) is not counted
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])


def test_scores_hand_checked():
    # gt a: 4 px (3 -> a, 1 -> b); gt b: 2 px (both -> b); gt c: 2 px (1 -> c, 1 -> a)
    conf = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 1]])
    s = scores(conf, NAMES)
    # a: TP 3, FP 1, FN 1 ; b: TP 2, FP 1, FN 0 ; c: TP 1, FP 0, FN 1
    assert s["iou"]["a"] == pytest.approx(3 / 5)
    assert s["iou"]["b"] == pytest.approx(2 / 3)
    assert s["iou"]["c"] == pytest.approx(1 / 2)
    assert s["precision"] == pytest.approx({"a": 3 / 4, "b": 2 / 3, "c": 1.0})
    assert s["recall"] == pytest.approx({"a": 3 / 4, "b": 1.0, "c": 1 / 2})
    assert s["f1"] == pytest.approx({"a": 6 / 8, "b": 4 / 5, "c": 2 / 3})
    assert s["support"] == {"a": 4, "b": 2, "c": 2}
    assert s["miou"] == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    assert s["mean_acc"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    assert s["pixel_acc"] == pytest.approx(6 / 8)
    assert s["num_pixels"] == 8
    assert s["class_names"] == list(NAMES)


def test_class_absent_from_both_is_nan_and_excluded():
    conf = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    s = scores(conf, NAMES)
    assert math.isnan(s["iou"]["c"]) and math.isnan(s["f1"]["c"])
    assert math.isnan(s["precision"]["c"]) and math.isnan(s["recall"]["c"])
    assert s["support"]["c"] == 0
    assert s["miou"] == pytest.approx((5 / 8 + 4 / 7) / 2)
    assert not math.isnan(s["mean_f1"])


def test_predicted_but_absent_class_counts_as_zero_iou():
    # class c never in the ground truth but predicted once: IoU 0 counts in mIoU, recall NaN
    conf = np.array([[2, 0, 1], [0, 2, 0], [0, 0, 0]])
    s = scores(conf, NAMES)
    assert s["iou"]["c"] == 0.0 and s["precision"]["c"] == 0.0
    assert math.isnan(s["recall"]["c"])
    assert s["miou"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert s["mean_acc"] == pytest.approx((2 / 3 + 1) / 2)  # over classes in the ground truth
    # a class in the ground truth never predicted: IoU 0, recall 0, precision NaN
    s2 = scores(conf.T, NAMES)
    assert s2["iou"]["c"] == 0.0 and s2["recall"]["c"] == 0.0 and math.isnan(s2["precision"]["c"])


def test_meter_accumulates_and_errors():
    m = ConfusionMeter(2)
    m.update(np.array([0, 1, 1]), np.array([0, 1, 255]))
    m.update(np.array([1]), np.array([0]))
    np.testing.assert_array_equal(m.conf, [[1, 1], [0, 1]])
    m.reset()
    assert m.conf.sum() == 0
    with pytest.raises(SegaugError, match="outside the class table"):
        confusion_matrix(np.array([0]), np.array([7]), 2)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)


def test_jsonable_and_csv():
    s = scores(np.zeros((3, 3), dtype=np.int64), NAMES)
    j = jsonable(s)
    assert j["miou"] is None and j["iou"]["a"] is None and j["pixel_acc"] is None
    text = confusion_csv(np.array([[1, 2], [3, 4]]), ["x", "y"])
    assert text == "gt\\pred,x,y\nx,1,2\ny,3,4\n"
