"""`cdc copy`: the initial copy of a migration, from the source's snapshot straight into the target."""

from __future__ import annotations

import sys

import click

from cdc.commands.options import kafka_option, prefix_option, source_option, tables_option, target_option
from cdc.copy.run import copy_tables
from cdc.errors import CdcError


@click.command(name="copy")
@source_option()
@target_option()
@tables_option("Tables to copy (into empty target tables of the same name), e.g. public.orders.")
@prefix_option(help="The prefix `cdc capture` will use: its slot / stored position starts where the copy ends.")
@kafka_option(required=False, help="Kafka bootstrap servers (needed for a MySQL/MariaDB source: the capture's "
                                   "start position is stored there).")
@click.option("--workers", type=int, default=4, show_default=True, help="Parallel connections per side.")
@click.option("--create-tables", is_flag=True,
              help="Create missing target tables from the source's schema (as `cdc apply --create-tables`); "
                   "their keys and indexes are built after the load.")
def command(source_url: str, target_url: str, tables: tuple[str, ...], prefix: str, kafka: str | None,
            workers: int, create_tables: bool) -> None:
    """Copy the tables from one consistent snapshot of the source, and leave `cdc capture --prefix` ready to
    stream from exactly that snapshot's position (PG: the slot cdc_<prefix>, created here; MySQL/MariaDB:
    the snapshot's binlog/GTID position, stored as the capture's).

    \b
    Example:
      cdc copy --source postgresql://app@pg1/shop --target mysql://app@db2/shop \\
               --tables public.orders,public.items --prefix shop
      cdc capture --source postgresql://app@pg1/shop --kafka k:9092 --prefix shop --tables ... --snapshot never
    """
    try:
        result = copy_tables(source_url, target_url, list(tables), prefix, workers=workers, kafka=kafka,
                             create_tables=create_tables)
    except CdcError as exc:
        click.echo(f"cdc copy: {exc}", err=True)
        sys.exit(2)
    total = sum(result.rows.values())
    click.echo(f"copied {total:,} rows of {len(result.rows)} table(s) in {result.seconds:.1f}s; "
               f"capture of prefix {prefix!r} starts at {result.position}")
    if result.created:
        click.echo(f"created {len(result.created)} target table(s): {', '.join(result.created)}")
    for table, skipped in result.skipped_indexes.items():
        for index, why in skipped:
            click.echo(f"index {index} of {table} not created: {why}", err=True)
