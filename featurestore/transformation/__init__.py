"""Transformation functions (hsfs's model-dependent transformations): built-in scalers and encoders and
user-defined ``@udf`` functions, attached to a feature view, fitted on its training dataset and applied
the same way to training data, batch data and serving vectors.

Public surface: :func:`udf`, :class:`TransformationFunction`, the built-ins :data:`min_max_scaler`,
:data:`standard_scaler`, :data:`robust_scaler`, :data:`label_encoder`, :data:`one_hot_encoder`, and
:class:`TransformationError`.
"""

from featurestore.transformation.functions import (
    BUILTIN_FUNCTIONS,
    TransformationError,
    TransformationFunction,
    label_encoder,
    min_max_scaler,
    one_hot_encoder,
    robust_scaler,
    standard_scaler,
    udf,
)

__all__ = ["BUILTIN_FUNCTIONS", "TransformationError", "TransformationFunction", "label_encoder", "min_max_scaler",
           "one_hot_encoder", "robust_scaler", "standard_scaler", "udf"]
