"""Training datasets: materialized, immutable, reproducible rows cut from a query.

Public surface: :class:`TrainingDataset`, :func:`create` (``fs.create_training_dataset``),
:class:`FeatureView` (``fs.create_feature_view``), :data:`FORMATS` and the errors.
"""

from featurestore.training.dataset import TrainingDataset, TrainingDatasetError, create
from featurestore.training.feature_view import FeatureView, FeatureViewError
from featurestore.training.formats import FORMATS, FormatError
from featurestore.training.splits import SplitError

__all__ = ["FORMATS", "FeatureView", "FeatureViewError", "FormatError", "SplitError", "TrainingDataset",
           "TrainingDatasetError", "create"]
