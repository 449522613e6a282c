"""A Spark-native lakehouse feature store on Apache Hudi.

    import featurestore
    fs = featurestore.connect()
    fg = fs.create_feature_group("clicks", primary_key=["user_id"], event_time="ts")
    fg.insert(df)
"""

__version__ = "0.1.0"

from featurestore.config import Config, load_config  # noqa: E402
from featurestore.errors import ConfigError, FeatureGroupError, FeatureStoreError, ServiceError  # noqa: E402
from featurestore.feature_group import ExternalFeatureGroup, FeatureGroup  # noqa: E402
from featurestore.feature_store import FeatureStore, connect  # noqa: E402
from featurestore.model import Feature, FeatureGroupRecord, WriteResult  # noqa: E402
from featurestore.online import OnlineStoreError  # noqa: E402
from featurestore.quality import Check, CheckLevel, ExpectationSuite, ValidationError, ValidationReport  # noqa: E402
from featurestore.query import Query, QueryError  # noqa: E402
from featurestore.training import FeatureView, FeatureViewError, TrainingDataset, TrainingDatasetError  # noqa: E402
from featurestore.transformation import TransformationError, TransformationFunction, udf  # noqa: E402

__all__ = [
    "Check",
    "CheckLevel",
    "Config",
    "ConfigError",
    "ExpectationSuite",
    "ExternalFeatureGroup",
    "Feature",
    "FeatureGroup",
    "FeatureGroupError",
    "FeatureGroupRecord",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FeatureViewError",
    "OnlineStoreError",
    "Query",
    "QueryError",
    "ServiceError",
    "TrainingDataset",
    "TrainingDatasetError",
    "TransformationError",
    "TransformationFunction",
    "ValidationError",
    "ValidationReport",
    "WriteResult",
    "connect",
    "load_config",
    "udf",
    "__version__",
]
