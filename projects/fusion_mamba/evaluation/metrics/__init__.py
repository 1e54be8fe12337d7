"""MMDetection metrics of the project."""
from .kaist_mr_metric import KAISTMissRateMetric

__all__ = ['KAISTMissRateMetric']
