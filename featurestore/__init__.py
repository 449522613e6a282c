"""A Spark-native lakehouse feature store on Apache Hudi.

    import featurestore
    fs = featurestore.connect()
    fg = fs.create_feature_group("clicks", primary_key=["user_id"], event_time="ts")
    fg.insert(df)
"""

__version__ = "0.1.0"

from featurestore.config import Config, load_config  # noqa: E402
from featurestore.errors import ConfigError, FeatureStoreError, ServiceError  # noqa: E402
from featurestore.feature_group import (  # noqa: E402
    ExternalFeatureGroup,
    Feature,
    FeatureGroup,
    FeatureGroupError,
    WriteResult,
)
from featurestore.feature_store import FeatureStore, connect  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "ExternalFeatureGroup",
    "Feature",
    "FeatureGroup",
    "FeatureGroupError",
    "FeatureStore",
    "FeatureStoreError",
    "ServiceError",
    "WriteResult",
    "__version__",
    "connect",
    "load_config",
]
