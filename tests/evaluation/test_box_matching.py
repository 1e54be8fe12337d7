"""Per-image matching with ignore regions (Caltech ``bbGt evalRes`` rules)."""
import numpy as np
import pytest

from fusion_mamba.evaluation.functional import (FALSE_POSITIVE, IGNORED, TRUE_POSITIVE,
                                                caltech_overlaps, match_detections)


def test_overlap_is_iou_for_regular_and_intersection_over_detection_for_ignore():
    det = [[0, 0, 10, 10]]
    gt = [[5, 0, 15, 10], [5, 0, 15, 10]]
    overlaps = caltech_overlaps(det, gt, [False, True])
    np.testing.assert_allclose(overlaps, [[50 / 150, 50 / 100]])


def test_degenerate_detection_has_zero_overlap():
    assert caltech_overlaps([[3, 3, 3, 3]], [[0, 0, 10, 10]], [True])[0, 0] == 0.0


def test_iou_threshold_is_inclusive():
    status = match_detections([[0, 0, 10, 10]], [0.9], [[0, 0, 10, 20]], [False])
    assert status.tolist() == [TRUE_POSITIVE]


def test_higher_score_matches_first_and_duplicate_is_false_positive():
    gt = [[0, 0, 10, 20]]
    dets = [[0, 0, 10, 16], [0, 0, 10, 20]]  # IoU .8 (higher score), IoU 1 (lower score)
    status = match_detections(dets, [0.9, 0.5], gt, [False])
    assert status.tolist() == [TRUE_POSITIVE, FALSE_POSITIVE]


def test_detection_takes_the_regular_box_of_highest_iou():
    gts = [[0, 0, 10, 20], [0, 4, 10, 24]]
    # The first detection overlaps both boxes (IoU .74 and .90) and takes the second; the
    # second detection then matches the first box (IoU .67; .43 with the second box).
    dets = [[0, 3, 10, 23], [0, -4, 10, 16]]
    status = match_detections(dets, [0.9, 0.8], gts, [False, False])
    assert status.tolist() == [TRUE_POSITIVE, TRUE_POSITIVE]


def test_detection_inside_ignore_region_is_ignored_even_with_low_iou():
    crowd = [[0, 0, 100, 100]]
    status = match_detections([[10, 10, 20, 40], [90, 90, 120, 120]], [0.9, 0.8], crowd, [True])
    # the first lies inside (ratio 1, IoU .03); the second is 100/900 inside
    assert status.tolist() == [IGNORED, FALSE_POSITIVE]


def test_regular_match_is_preferred_over_ignore_region():
    gts = [[0, 0, 10, 20], [0, 0, 100, 100]]
    status = match_detections([[0, 0, 10, 18]], [0.9], gts, [False, True])
    assert status.tolist() == [TRUE_POSITIVE]


def test_ignore_region_absorbs_detections_once_regular_box_is_taken():
    gts = [[0, 0, 10, 20], [0, 0, 10, 20]]
    status = match_detections([[0, 0, 10, 20]] * 3, [0.9, 0.8, 0.7], gts, [False, True])
    assert status.tolist() == [TRUE_POSITIVE, IGNORED, IGNORED]


@pytest.mark.parametrize('dets, gts, expected', [
    (np.zeros((0, 4)), [[0, 0, 10, 20]], []),
    ([[0, 0, 10, 20]], np.zeros((0, 4)), [FALSE_POSITIVE]),
])
def test_empty_inputs(dets, gts, expected):
    status = match_detections(dets, np.ones(len(dets)), gts, np.zeros(len(gts), bool))
    assert status.tolist() == expected
