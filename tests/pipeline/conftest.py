"""The pipeline tests use the search tests' tiny demo cohort."""

from tests.search.conftest import tiny_demo  # noqa: F401
