"""Output formats of `mdstream query` (a light module: the command line lists them before loading any data library)."""

FORMATS = ("table", "csv", "json", "parquet")
