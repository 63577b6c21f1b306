"""The parts of `benchmarks/run.py`: scenarios and what they read from each script, aggregation, tables, charts, publishing."""
