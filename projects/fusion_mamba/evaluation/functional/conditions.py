"""Day / night condition of an image, given or derived from its KAIST frame name.

KAIST records frames as ``setXX/VYYY/IZZZZZ`` (the ``im_name`` of the improved test
annotations) and stores them as ``images/setXX/VYYY/{visible,lwir}/IZZZZZ.jpg``. Its sets
were filmed by day or by night as a whole: sets 00-02 (train) and 06-08 (test) by day, sets
03-05 (train) and 09-11 (test) by night (the KAIST devkit's ``kaist_eval_full`` evaluates
``test-day`` on sets 6-8 and ``test-night`` on sets 9-11). The improved test annotations
list their 2252 frames in set order, so MLPD's evaluation script takes the first 1455 image
ids as day and the rest as night; deriving the condition from the names gives the same split
without relying on the order.
"""
import re
from typing import Optional

#: KAIST sets filmed by day; the other sets (03-05, 09-11) were filmed by night.
KAIST_DAY_SETS = frozenset({0, 1, 2, 6, 7, 8})
KAIST_NIGHT_SETS = frozenset({3, 4, 5, 9, 10, 11})
CONDITIONS = ('day', 'night')

# 'set06/V000/...' at the start of a name or after a '/': KAIST's set / video folders.
_KAIST_FRAME = re.compile(r'(?:^|[/\\])set(\d{2})[/\\_]V\d{3}')


def kaist_condition(name: str) -> Optional[str]:
    """'day' / 'night' of a KAIST frame name or path, None when it names no KAIST set.

    Args:
        name: e.g. ``'set06/V000/I00019'``, ``'images/set09/V000/lwir/I00019.jpg'`` or
            ``'set06_V000_I00019'`` (the devkit's detection file names).
    """
    match = _KAIST_FRAME.search(name)
    if match is None:
        return None
    set_id = int(match.group(1))
    if set_id in KAIST_DAY_SETS:
        return 'day'
    if set_id in KAIST_NIGHT_SETS:
        return 'night'
    return None


def image_condition(image: dict) -> Optional[str]:
    """Condition of a COCO image record: its ``condition`` field when present (as given),
    else the KAIST set of its ``im_name`` or ``file_name`` ('day' / 'night'), else None."""
    if image.get('condition') is not None:
        return image['condition']
    for key in ('im_name', 'file_name'):
        if isinstance(image.get(key), str):
            condition = kaist_condition(image[key])
            if condition is not None:
                return condition
    return None
