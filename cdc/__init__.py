"""cdc: change-data-capture from PostgreSQL and MySQL/MariaDB through Kafka into target databases."""

from cdc.impl import IMPL as __impl__

__version__ = "0.1.0"

__all__ = ["__impl__", "__version__"]
