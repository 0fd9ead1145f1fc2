"""The bulk dump: where it comes from, how units stream out of it, how they reach `companies`."""
