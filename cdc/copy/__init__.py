"""`cdc copy`: the initial copy of a migration, straight from the source's snapshot into the target."""
