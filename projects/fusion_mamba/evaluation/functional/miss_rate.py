"""Log-average miss rate (MR^-2) of the Caltech / KAIST pedestrian protocol.

The miss rate versus false positives per image (FPPI) curve is built from the detections
pooled over all evaluated images, sorted by decreasing score (stable for equal scores).
At each reference FPPI ``f`` the recall is that of the last curve point whose FPPI is
``<= f`` (0 when no point qualifies); MR^-2 is the geometric mean of the miss rates
``1 - recall`` at the 9 reference FPPIs evenly spaced in log space over [1e-2, 1e0], each
clamped below at 1e-10 (Caltech ``bbGt compRoc`` and ``dbEval``).
"""
import numpy as np

#: The 9 reference FPPIs of MR^-2: 10 ** (-2, -1.75, ..., 0).
REFERENCE_FPPI = np.logspace(-2.0, 0.0, 9)

_MIN_MISS_RATE = 1e-10


def miss_rate_curve(scores: np.ndarray, is_tp: np.ndarray, num_gt: int,
                    num_images: int) -> tuple:
    """Miss rate versus FPPI curve.

    Args:
        scores: (N,) scores of the non-ignored detections of all images.
        is_tp: (N,) bool, True for true positives, False for false positives.
        num_gt: number of regular (non-ignored) ground truth boxes; > 0.
        num_images: number of evaluated images, the FPPI denominator; > 0.

    Returns:
        ``(fppi, miss_rate)``: two (N,) float64 arrays, one point after each detection in
        order of decreasing score; FPPI is non-decreasing.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind='stable')
    is_tp = np.asarray(is_tp, dtype=bool)[order]
    fppi = np.cumsum(~is_tp) / num_images
    miss_rate = 1.0 - np.cumsum(is_tp) / num_gt
    return fppi, miss_rate


def log_average_miss_rate(scores: np.ndarray, is_tp: np.ndarray, num_gt: int,
                          num_images: int, reference_fppi: np.ndarray = REFERENCE_FPPI) -> float:
    """MR^-2 as a fraction in [0, 1].

    Args:
        scores: (N,) scores of the non-ignored detections of all images.
        is_tp: (N,) bool, True for true positives, False for false positives.
        num_gt: number of regular ground truth boxes.
        num_images: number of evaluated images, the FPPI denominator; > 0.
        reference_fppi: (R,) FPPIs at which the miss rate is sampled.

    Returns:
        The log-average miss rate: 0 (to 1e-10) for a perfect detector, 1 when no detection
        is a true positive below the largest reference FPPI; NaN when ``num_gt`` is 0.
    """
    if num_gt == 0:
        return float('nan')
    fppi, miss_rate = miss_rate_curve(scores, is_tp, num_gt, num_images)
    # A leading point (FPPI -inf, miss rate 1) covers references left of the first point.
    last = np.searchsorted(fppi, reference_fppi, side='right')
    sampled = np.concatenate([[1.0], miss_rate])[last]
    return float(np.exp(np.mean(np.log(np.maximum(sampled, _MIN_MISS_RATE)))))
