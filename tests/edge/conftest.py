from tests.edge.gateways import opcua_server, start_gateway  # noqa: F401  (shared fixtures)
from tests.vendors.conftest import fleet  # noqa: F401  (the fleet fixture, shared)
