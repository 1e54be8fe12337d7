"""Converters from each benchmark's official layout to paired COCO json."""
from .common import (ConversionError, ConversionReport, PairedCocoBuilder, fail, finish,
                     save_results, write_outputs)
from .flir_aligned import convert_flir_aligned
from .kaist import convert_kaist_json, convert_kaist_txt
from .llvip import convert_llvip
from .m3fd import convert_m3fd, seeded_split
from .yolo_paired import convert_yolo_paired, read_classes

__all__ = [
    'ConversionError', 'ConversionReport', 'PairedCocoBuilder', 'write_outputs',
    'save_results', 'finish', 'fail', 'convert_llvip', 'convert_m3fd', 'seeded_split',
    'convert_flir_aligned', 'convert_kaist_txt', 'convert_kaist_json', 'convert_yolo_paired',
    'read_classes'
]
