"""Deployment: the detector as a graph of standard operators (ONNX) and its checks."""
from .exportable import EXPORT_SCAN_BACKEND, ExportableDetector, export_scan
from .nms import onnx_nms

__all__ = ['EXPORT_SCAN_BACKEND', 'ExportableDetector', 'export_scan', 'onnx_nms']
