"""Sources: where ticks come from."""
