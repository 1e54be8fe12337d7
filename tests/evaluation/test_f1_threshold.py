"""Best-F1 score thresholds against hand-computed examples."""
import numpy as np
import pytest

from fusion_mamba.evaluation.functional import best_f1_threshold, match_image_classes


def test_best_f1_of_a_ranked_list():
    # kept k = 1..5: TP 1, 1, 2, 3, 3 of 4 boxes -> F1 = 2TP / (k + 4) = .4, .333, .571, .75,
    # .667: best after the 4th detection, half-way between .6 and .5.
    cut = best_f1_threshold([0.7, 0.9, 0.5, 0.8, 0.6], [True, True, False, False, True], 4)
    assert cut.score_thr == pytest.approx(0.55)
    assert cut.f1 == pytest.approx(0.75)
    assert (cut.precision, cut.recall) == pytest.approx((0.75, 0.75))
    assert (cut.num_kept, cut.num_gt) == (4, 4)


def test_equal_scores_are_kept_together():
    # Cutting between the two 0.8s would give F1 1.0, but no threshold does that.
    cut = best_f1_threshold([0.8, 0.8], [True, False], 1)
    assert cut.num_kept == 2 and cut.f1 == pytest.approx(2 / 3)
    assert cut.score_thr == pytest.approx(0.4)  # half-way to 0 below the lowest score


def test_equal_f1_takes_the_higher_threshold():
    # k = 1: 2 * 1 / (1 + 2) = 2/3; k = 4: 2 * 2 / (4 + 2) = 2/3.
    cut = best_f1_threshold([0.9, 0.8, 0.7, 0.6], [True, False, False, True], 2)
    assert cut.num_kept == 1 and cut.score_thr == pytest.approx(0.85)


def test_no_threshold_without_ground_truth_or_true_positive():
    assert best_f1_threshold([0.9, 0.5], [False, False], 0) is None
    assert best_f1_threshold([0.9, 0.5], [False, False], 3) is None
    assert best_f1_threshold([], [], 3) is None


def test_matching_by_class_with_an_ignore_region():
    gt_boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    gt_labels = np.array([0, 0, 1])
    dets = [  # box, score, label, expected: TP / FP / ignored
        ([20, 20, 30, 24], 0.95, 0, False),  # IoU 40 / 100 with box 2: below 0.5
        ([0, 0, 10, 10], 0.9, 0, True),
        ([1, 0, 11, 10], 0.8, 0, False),     # IoU 90 / 110 with box 1, already taken
        ([20, 20, 30, 25], 0.7, 0, True),    # IoU 50 / 100 = 0.5 with box 2
        ([60, 60, 70, 70], 0.6, 0, None),    # inside the ignore region
        ([0, 0, 10, 10], 0.5, 1, True),
        ([20, 20, 30, 30], 0.4, 1, False),   # class 1 has no box there
    ]
    matches = match_image_classes(
        [d[0] for d in dets], [d[1] for d in dets], [d[2] for d in dets], gt_boxes, gt_labels,
        ignore_boxes=np.array([[50, 50, 100, 100]]), ignore_labels=np.array([0]))
    assert sorted(matches) == [0, 1]
    for label, num_gt in ((0, 2), (1, 1)):
        expected = [(d[1], d[3]) for d in dets if d[2] == label and d[3] is not None]
        assert matches[label].num_gt == num_gt
        assert matches[label].scores.tolist() == [s for s, _ in expected]
        assert matches[label].true_positive.tolist() == [tp for _, tp in expected]
    # class 0: TP 0, 1, 1, 2 of 2 boxes at k = 1..4 -> F1 0, .5, .4, .667; class 1: F1 1 at k 1
    cut0 = best_f1_threshold(*matches[0])
    assert (cut0.score_thr, cut0.f1, cut0.precision) == pytest.approx((0.35, 2 / 3, 0.5))
    cut1 = best_f1_threshold(*matches[1])
    assert (cut1.score_thr, cut1.f1) == pytest.approx((0.45, 1.0))


def test_an_image_without_detections_counts_its_boxes():
    matches = match_image_classes(np.zeros((0, 4)), [], [], [[0, 0, 5, 5]], [2])
    assert list(matches) == [2] and matches[2].num_gt == 1 and len(matches[2].scores) == 0
