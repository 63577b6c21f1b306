from tests.verify.conftest import extra_database, pair  # noqa: F401  (fresh database pairs)
