"""The demo's data: a shop on PostgreSQL and an inventory on MariaDB, with rich types and a mixed write load.

Both sources get a seed and then a stream of small transactions (inserts, updates, deletes) while the
chain replicates them: PostgreSQL -> Kafka -> MariaDB and MariaDB -> Kafka -> PostgreSQL.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

PG_SCHEMA = [
    """CREATE TABLE customers (
        id bigint PRIMARY KEY,
        email text NOT NULL,
        name varchar(80) NOT NULL,
        balance numeric(12,2) NOT NULL DEFAULT 0,
        vip boolean NOT NULL DEFAULT false,
        birthday date,
        created_at timestamptz NOT NULL DEFAULT now(),
        profile jsonb,
        api_key uuid,
        avatar bytea)""",
    """CREATE TABLE orders (
        id bigint PRIMARY KEY,
        customer_id bigint NOT NULL,
        total numeric(12,2) NOT NULL,
        weight_kg double precision,
        status varchar(16) NOT NULL,
        placed_at timestamp(6) NOT NULL,
        note text)""",
]

MARIADB_SCHEMA = [
    """CREATE TABLE products (
        id int unsigned PRIMARY KEY,
        sku varchar(32) NOT NULL,
        name varchar(200) NOT NULL,
        price decimal(10,2) NOT NULL,
        qty int NOT NULL,
        weight double,
        released date,
        updated_at datetime(6) NOT NULL,
        status enum('active','discontinued') NOT NULL,
        attrs json) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE stock_moves (
        id bigint PRIMARY KEY,
        product_id int unsigned NOT NULL,
        delta int NOT NULL,
        reason varchar(40),
        moved_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) DEFAULT CHARSET=utf8mb4""",
]

NAMES = ["Ann", "Bob", "Chloé", "Dmitrij", "Eve", "François", "Grace", "Håkon", "Ingrid", "Jürgen", "Kenji 健二"]
PRODUCTS = ["lamp", "chair", "desk", "mug", "kettle", "rug", "shelf", "clock", "vase", "pillow"]


@dataclass(slots=True)
class LoadCounts:
    """How many changes the load made on one source."""

    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    transactions: int = 0
    ids: dict[str, int] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.deletes


def _customer(rng: random.Random, customer_id: int) -> tuple:
    name = rng.choice(NAMES)
    profile = {"lang": rng.choice(["en", "fr", "de", "ja"]), "newsletter": rng.random() < 0.5,
               "score": round(rng.uniform(0, 100), 2), "tags": rng.sample(["a", "b", "c", "d"], 2)}
    birthday = date(1950, 1, 1) + timedelta(days=rng.randrange(25000)) if rng.random() < 0.8 else None
    avatar = rng.randbytes(rng.randrange(0, 48)) if rng.random() < 0.7 else None
    return (customer_id, f"{name.split()[0].lower()}{customer_id}@example.com", name,
            f"{rng.uniform(-500, 5000):.2f}", rng.random() < 0.2, birthday,
            datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(60_000_000), microseconds=rng.randrange(10**6)),
            json.dumps(profile), uuid.UUID(int=rng.getrandbits(128)), avatar)


def _order(rng: random.Random, order_id: int, customers: int) -> tuple:
    return (order_id, rng.randrange(1, customers + 1), f"{rng.uniform(1, 2000):.2f}",
            round(rng.uniform(0.1, 40), 3) if rng.random() < 0.9 else None,
            rng.choice(["new", "paid", "shipped", "returned"]),
            datetime(2024, 6, 1) + timedelta(seconds=rng.randrange(20_000_000), microseconds=rng.randrange(10**6)),
            rng.choice([None, "", "leave at the door", "gift — wrap it", "fragile\nhandle with care"]))


def _product(rng: random.Random, product_id: int) -> tuple:
    attrs = {"color": rng.choice(["red", "green", "blue"]), "sizes": rng.sample(["S", "M", "L", "XL"], 2),
             "eco": rng.random() < 0.3}
    released = date(2015, 1, 1) + timedelta(days=rng.randrange(3500)) if rng.random() < 0.9 else None
    return (product_id, f"SKU-{product_id:06d}", f"{rng.choice(PRODUCTS)} «{rng.choice(NAMES)}»",
            f"{rng.uniform(1, 999):.2f}", rng.randrange(0, 500), round(rng.uniform(0.05, 30), 4) if rng.random() < 0.9 else None,
            released, datetime(2024, 3, 1) + timedelta(seconds=rng.randrange(20_000_000), microseconds=rng.randrange(10**6)),
            rng.choice(["active", "discontinued"]), json.dumps(attrs))


PG_CUSTOMER_INSERT = ("INSERT INTO customers (id, email, name, balance, vip, birthday, created_at, profile, api_key, avatar)"
                      " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
PG_ORDER_INSERT = "INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s, %s)"
MY_PRODUCT_INSERT = "INSERT INTO products VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
MY_MOVE_INSERT = "INSERT INTO stock_moves (id, product_id, delta, reason) VALUES (%s, %s, %s, %s)"


def seed_postgres(conn, rng: random.Random, customers: int = 2000, orders: int = 5000) -> LoadCounts:
    """Create the shop schema and its first rows (these reach the target through the snapshot)."""
    for statement in PG_SCHEMA:
        conn.execute(statement)
    with conn.cursor() as cursor:
        cursor.executemany(PG_CUSTOMER_INSERT, [_customer(rng, i) for i in range(1, customers + 1)])
        cursor.executemany(PG_ORDER_INSERT, [_order(rng, i, customers) for i in range(1, orders + 1)])
    return LoadCounts(inserts=customers + orders, ids={"customers": customers, "orders": orders})


def seed_mariadb(conn, rng: random.Random, products: int = 1500, moves: int = 4000) -> LoadCounts:
    """Create the inventory schema and its first rows."""
    with conn.cursor() as cursor:
        for statement in MARIADB_SCHEMA:
            cursor.execute(statement)
        cursor.executemany(MY_PRODUCT_INSERT, [_product(rng, i) for i in range(1, products + 1)])
        cursor.executemany(MY_MOVE_INSERT, [(i, rng.randrange(1, products + 1), rng.randrange(-5, 20),
                                             rng.choice(["sale", "restock", None])) for i in range(1, moves + 1)])
    conn.commit()
    return LoadCounts(inserts=products + moves, ids={"products": products, "moves": moves})


def postgres_transaction(conn, rng: random.Random, counts: LoadCounts) -> None:
    """One small shop transaction: new orders, balance and status updates, now and then a delete."""
    with conn.transaction(), conn.cursor() as cursor:
        for _ in range(rng.randrange(1, 4)):
            counts.ids["orders"] += 1
            cursor.execute(PG_ORDER_INSERT, _order(rng, counts.ids["orders"], counts.ids["customers"]))
            counts.inserts += 1
        cursor.execute("UPDATE customers SET balance = balance + %s, vip = %s WHERE id = %s",
                       (f"{rng.uniform(-50, 50):.2f}", rng.random() < 0.2, rng.randrange(1, counts.ids["customers"] + 1)))
        cursor.execute("UPDATE orders SET status = %s, note = %s WHERE id = %s",
                       (rng.choice(["paid", "shipped"]), rng.choice([None, "updated ✓"]), rng.randrange(1, counts.ids["orders"] + 1)))
        counts.updates += 2
        if rng.random() < 0.3:
            cursor.execute("DELETE FROM orders WHERE id = %s", (rng.randrange(1, counts.ids["orders"] + 1),))
            counts.deletes += 1
        if rng.random() < 0.1:
            counts.ids["customers"] += 1
            cursor.execute(PG_CUSTOMER_INSERT, _customer(rng, counts.ids["customers"]))
            counts.inserts += 1
    counts.transactions += 1


def mariadb_transaction(conn, rng: random.Random, counts: LoadCounts) -> None:
    """One small inventory transaction: stock moves, quantity/price updates, now and then a delete."""
    with conn.cursor() as cursor:
        product = rng.randrange(1, counts.ids["products"] + 1)
        counts.ids["moves"] += 1
        delta = rng.randrange(-5, 20)
        cursor.execute(MY_MOVE_INSERT, (counts.ids["moves"], product, delta, rng.choice(["sale", "restock"])))
        cursor.execute("UPDATE products SET qty = qty + %s, updated_at = %s WHERE id = %s",
                       (delta, datetime.now(UTC).replace(tzinfo=None), product))
        counts.inserts += 1
        counts.updates += 1
        if rng.random() < 0.3:
            cursor.execute("UPDATE products SET price = %s, attrs = JSON_SET(attrs, '$.eco', %s) WHERE id = %s",
                           (f"{rng.uniform(1, 999):.2f}", rng.random() < 0.5, rng.randrange(1, counts.ids["products"] + 1)))
            counts.updates += 1
        if rng.random() < 0.2:
            cursor.execute("DELETE FROM stock_moves WHERE id = %s", (rng.randrange(1, counts.ids["moves"] + 1),))
            counts.deletes += 1
    conn.commit()
    counts.transactions += 1


def run_load(pg_conn, my_conn, seconds: float, rate_per_second: float, seed: int = 7,
             pg_counts: LoadCounts | None = None, my_counts: LoadCounts | None = None,
             tick=lambda elapsed: None) -> tuple[LoadCounts, LoadCounts]:
    """Interleave shop and inventory transactions at about `rate_per_second` each for `seconds`."""
    rng = random.Random(seed)
    pg_counts = pg_counts or LoadCounts()
    my_counts = my_counts or LoadCounts()
    started = time.monotonic()
    step = 1.0 / rate_per_second
    next_at = started
    while (now := time.monotonic()) - started < seconds:
        if now < next_at:
            time.sleep(min(next_at - now, 0.05))
            continue
        postgres_transaction(pg_conn, rng, pg_counts)
        mariadb_transaction(my_conn, rng, my_counts)
        next_at += step
        tick(now - started)
    return pg_counts, my_counts
