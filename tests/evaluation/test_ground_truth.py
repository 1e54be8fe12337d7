"""Which ground truth boxes are regular and which are ignore regions under a setting."""
import numpy as np
import pytest

from fusion_mamba.evaluation.functional import PedestrianSetting, parse_coco_ground_truth

CATEGORIES = [{'id': 1, 'name': 'person'}, {'id': 2, 'name': 'people'}]


def _ignored(ann, image=None, setting=PedestrianSetting()):
    """Ignore flag of one annotation of a 640 x 512 image (or of ``image``)."""
    image = image or {'id': 0, 'width': 640, 'height': 512}
    ann = {'image_id': image['id'], 'category_id': 1, **ann}
    coco = {'images': [image], 'annotations': [ann], 'categories': CATEGORIES}
    return bool(parse_coco_ground_truth(coco, setting)[image['id']].ignore[0])


def test_missing_fields_read_as_visible_unflagged_box_of_bbox_height():
    assert not _ignored({'bbox': [100, 100, 30, 60]})
    assert _ignored({'bbox': [100, 100, 30, 50]})


@pytest.mark.parametrize('field', [{'ignore': 1}, {'iscrowd': 1}, {'category_id': 2}])
def test_flagged_and_ignore_label_boxes_are_ignore_regions(field):
    assert _ignored({'bbox': [100, 100, 30, 60], **field})


@pytest.mark.parametrize('height, ignored', [(54.9, True), (55, False), (300, False)])
def test_height_field_decides_the_height_range(height, ignored):
    assert _ignored({'bbox': [100, 100, 30, 60], 'height': height}) is ignored


@pytest.mark.parametrize('occlusion, ignored', [(0, False), (1, False), (2, True)])
def test_heavy_occlusion_is_ignored(occlusion, ignored):
    assert _ignored({'bbox': [100, 100, 30, 60], 'occlusion': occlusion}) is ignored


@pytest.mark.parametrize('bbox, ignored', [
    ([5, 5, 30, 60], False), ([4.9, 100, 30, 60], True), ([100, 4, 30, 60], True),
    ([605, 447, 30, 60], False), ([606, 100, 30, 60], True), ([100, 448, 30, 60], True)])
def test_boxes_leaving_the_5px_inner_border_are_ignored(bbox, ignored):
    assert _ignored({'bbox': bbox}) is ignored


def test_border_check_needs_the_image_size_and_can_be_disabled():
    assert not _ignored({'bbox': [0, 0, 30, 60]}, image={'id': 3})
    assert not _ignored({'bbox': [0, 0, 30, 60]}, setting=PedestrianSetting(border_margin=None))


def test_boxes_are_xyxy_and_conditions_are_kept():
    coco = {
        'images': [{'id': 1, 'condition': 'night'}, {'id': 2}],
        'annotations': [{'image_id': 1, 'bbox': [10, 20, 30, 60], 'category_id': 1}],
        'categories': CATEGORIES}
    gt = parse_coco_ground_truth(coco, PedestrianSetting())
    np.testing.assert_allclose(gt[1].boxes, [[10, 20, 40, 80]])
    assert gt[1].condition == 'night' and gt[2].condition is None
    assert gt[2].boxes.shape == (0, 4) and gt[2].ignore.shape == (0,)


def test_detection_height_filter_is_off_by_default_and_caltech_expands_by_1_25():
    dets = np.array([[0, 0, 10, 43.9], [0, 0, 10, 44], [0, 0, 10, 500]])
    assert PedestrianSetting().keep_detections(dets).tolist() == [True, True, True]
    caltech = PedestrianSetting(det_height_expand=1.25)
    assert caltech.keep_detections(dets).tolist() == [False, True, True]
    bounded = PedestrianSetting(height_range=(55, 100), det_height_expand=1.25)
    assert bounded.keep_detections([[0, 0, 10, 124.9], [0, 0, 10, 125]]).tolist() == [True, False]


@pytest.mark.parametrize('image, condition', [
    ({'im_name': 'set06/V000/I00019'}, 'day'),  # KAIST test sets 06-08: day
    ({'im_name': 'set08/V002/I01239'}, 'day'),
    ({'im_name': 'set09/V000/I00019'}, 'night'),  # sets 09-11: night
    ({'im_name': 'set11/V001/I00059'}, 'night'),
    ({'file_name': 'images/set02/V001/visible/I00000.jpg'}, 'day'),  # train sets 00-02
    ({'file_name': 'images/set03/V000/lwir/I00000.jpg'}, 'night'),  # train sets 03-05
    ({'file_name': 'set10_V001_I00019.txt'}, 'night'),  # the devkit's detection file names
    ({'im_name': 'set06/V000/I00019', 'condition': 'night'}, 'night'),  # the field wins
    ({'file_name': 'visible/train/set06.jpg'}, None),
    ({'im_name': 'set12/V000/I00019'}, None),
    ({}, None),
])
def test_condition_from_the_field_or_the_kaist_frame_name(image, condition):
    coco = {'images': [{'id': 0, **image}], 'annotations': [], 'categories': CATEGORIES}
    assert parse_coco_ground_truth(coco, PedestrianSetting())[0].condition == condition
