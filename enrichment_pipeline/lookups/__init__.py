"""The machinery every register lookup shares."""
