"""History: the Parquet archive of every topic, queries over it, and findings across nights.

- :mod:`pipeline.history.layout` — tables, columns and the Hive-style directory layout;
- :mod:`pipeline.history.offsets` — the per-partition offset log that makes a restart
  neither lose nor duplicate rows;
- :mod:`pipeline.history.writer` — buffered, size- and time-bounded Parquet files;
- :mod:`pipeline.history.archiver` — the ``shorewatch archive`` Kafka consumer;
- :mod:`pipeline.history.query` — DuckDB over the archive (``shorewatch history``);
- :mod:`pipeline.history.source` — archived inputs for ``shorewatch replay --from-archive``;
- :mod:`pipeline.history.landing` — hidden landing sites across nights.
"""
