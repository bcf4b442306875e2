from tests.vendors.conftest import fleet  # noqa: F401  (the fleet fixture, shared)
