"""The connection budget: what the configuration allows at worst, what the server allows, what is in use."""
