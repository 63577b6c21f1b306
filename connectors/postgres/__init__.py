"""PostgreSQL: logical replication source (pgoutput), snapshot, decoder twin, types, target writer."""
