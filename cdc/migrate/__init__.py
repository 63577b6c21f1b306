"""`cdc migrate`: one named workflow from a source to a target database, switched over and back with a journal.

One module per job: `workflow` (what a workflow is: its two databases, tables, prefixes), `state`
(the `cdc_migrations` and `cdc_migration_journal` tables in the target and the state machine),
`catchup` (has replication reached a position), `initial_copy` (the direct copy the runner runs
first), `runner` (`cdc migrate run`: the pipeline the state asks for), `cutover` (switch and reverse,
step by step, crash-safe), `grants` (what a `--freeze revoke` took, to give it back), `status`,
`report` (the journal page).
Engine SQL lives in `connectors/<engine>/migrate.py` (through `cdc.registry.migrate_module`).
"""
