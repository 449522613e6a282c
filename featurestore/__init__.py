"""A Spark-native lakehouse feature store on Apache Hudi."""

__version__ = "0.1.0"

from featurestore.config import Config, load_config  # noqa: E402
from featurestore.errors import ConfigError, FeatureStoreError, ServiceError  # noqa: E402

__all__ = ["Config", "ConfigError", "FeatureStoreError", "ServiceError", "__version__", "load_config"]
