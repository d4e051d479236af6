"""The continuous micro-batch job."""
