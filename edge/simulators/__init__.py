"""Machine simulators that speak the factory protocols (OPC UA, Modbus TCP)."""
