"""Log-average miss rate on hand-made MR-FPPI curves with known answers."""
import math

import numpy as np
import pytest

from fusion_mamba.evaluation.functional import (REFERENCE_FPPI, log_average_miss_rate,
                                                miss_rate_curve)


def test_reference_fppi_are_nine_log_spaced_points_from_1e_2_to_1():
    assert len(REFERENCE_FPPI) == 9
    np.testing.assert_allclose(np.log10(REFERENCE_FPPI), np.arange(-2.0, 0.01, 0.25))


def test_perfect_detector_has_zero_miss_rate():
    mr = log_average_miss_rate([0.9, 0.8, 0.7], [True, True, True], num_gt=3, num_images=2)
    assert mr == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize('scores, is_tp', [([], []), ([0.9, 0.5], [False, False])])
def test_no_true_positive_gives_miss_rate_one(scores, is_tp):
    assert log_average_miss_rate(scores, is_tp, num_gt=4, num_images=3) == 1.0


def test_hand_computed_curve():
    # 5 pedestrians in 4 images; by score: TP FP TP FP FP TP -> (FPPI, recall) points
    # (0, .2) (.25, .2) (.25, .4) (.5, .4) (.75, .4) (.75, .6).
    # References 0.01 .. 0.178 see FPPI 0 (miss .8), 0.316 and 0.562 see .4 recall (miss .6),
    # 1.0 sees .6 recall (miss .4).
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    is_tp = [True, False, True, False, False, True]
    expected = (0.8 ** 6 * 0.6 ** 2 * 0.4) ** (1 / 9)
    assert expected == pytest.approx(0.6948291755922805)
    assert log_average_miss_rate(scores, is_tp, num_gt=5, num_images=4) == pytest.approx(expected)


def test_input_order_does_not_matter():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    is_tp = np.array([True, False, True, False, False, True])
    perm = np.array([3, 0, 5, 1, 4, 2])
    assert log_average_miss_rate(scores[perm], is_tp[perm], 5, 4) == pytest.approx(
        log_average_miss_rate(scores, is_tp, 5, 4))


def test_fppi_divides_by_number_of_images():
    scores, is_tp = [0.9, 0.8, 0.7], [True, False, True]
    # One image: the FP reaches FPPI 1, so only the reference 1.0 sees recall 2/5.
    one = log_average_miss_rate(scores, is_tp, num_gt=5, num_images=1)
    assert one == pytest.approx((0.8 ** 8 * 0.6) ** (1 / 9))
    # Four images: FPPI 0.25, references 0.316 .. 1.0 see recall 2/5.
    four = log_average_miss_rate(scores, is_tp, num_gt=5, num_images=4)
    assert four == pytest.approx((0.8 ** 6 * 0.6 ** 3) ** (1 / 9))


def test_reference_on_a_curve_point_counts_it_and_zero_miss_rate_is_clamped():
    # 10 images: the FP sits at FPPI exactly 0.1, a reference; the TP after it shares that FPPI.
    mr = log_average_miss_rate([0.9, 0.8], [False, True], num_gt=1, num_images=10)
    assert mr == pytest.approx(math.exp(5 * math.log(1e-10) / 9))


def test_no_ground_truth_gives_nan():
    assert math.isnan(log_average_miss_rate([0.9], [False], num_gt=0, num_images=1))


def test_curve_points():
    fppi, miss = miss_rate_curve([0.2, 0.9, 0.5], [True, False, True], num_gt=4, num_images=2)
    np.testing.assert_allclose(fppi, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(miss, [1.0, 0.75, 0.5])
