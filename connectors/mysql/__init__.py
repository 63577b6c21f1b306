"""MySQL/MariaDB: binlog source, snapshot, row decoder twin, types, target writer."""
