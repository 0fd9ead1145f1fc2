"""The public registers: organisation numbers, synthetic data, the local service and the clients."""
