"""Bulk loading: `warmup suppress import` and `warmup enqueue` of 1,000,000 rows,
and the per-batch suppression filter against 1,000,000 suppressed addresses.

Each figure is printed next to a baseline measured in the same run on the same
data: plain `csv` + `sqlite3.executemany` into a bare table with the same unique
index (the least any loader must do), and a raw sqlite3 IN-query for the filter.

    .venv/bin/python -m bench.enqueue [--rows 1000000] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import WARMUP, run_measured, write_config
from warmup.adapters.db.store import SQLStore
from warmup.core.recipients.suppression import lookup_keys
from warmup.testing.postgres import PostgresUnavailable, start_postgres

TEMPLATE = (
    b"From: a@shop.example\nSubject: Hi {{ first_name }}\n\nHello {{ first_name }}\n"
)
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "example.org"]


def make_files(directory: Path, rows: int, rng: random.Random) -> tuple[Path, Path]:
    recipients = directory / "list.csv"
    suppressed = directory / "suppressed.csv"
    with recipients.open("w", newline="") as rfile, suppressed.open("w") as sfile:
        writer = csv.writer(rfile)
        writer.writerow(["email", "first_name", "score", "last_open_at"])
        sfile.write("address\n")
        for index in range(rows):
            address = f"user{index}@{DOMAINS[index % len(DOMAINS)]}"
            writer.writerow([address, f"Name{index}", rng.randint(0, 99), "2026-10-01"])
            # The suppression list: 1 % of the recipients plus other addresses.
            other = address if index % 100 == 0 else f"gone{index}@old.example"
            sfile.write(other + "\n")
    return recipients, suppressed


def baseline_load(path: Path, db_path: Path, columns: int) -> float:
    start = time.perf_counter()
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, c INTEGER, address TEXT, "
        "data TEXT, UNIQUE (c, address))"
    )
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[tuple[int, str, str]] = []
        for row in reader:
            batch.append((1, row[0], ",".join(row[1:columns])))
            if len(batch) == 2000:
                db.executemany(
                    "INSERT OR IGNORE INTO t (c, address, data) VALUES (?, ?, ?)", batch
                )
                db.commit()
                batch = []
        db.executemany(
            "INSERT OR IGNORE INTO t (c, address, data) VALUES (?, ?, ?)", batch
        )
        db.commit()
    db.close()
    return time.perf_counter() - start


async def filter_latency(url: str, rows: int, runs: int = 50) -> list[float]:
    store = await SQLStore.open(url)
    rng = random.Random(3)
    timings = []
    try:
        for _ in range(runs):
            batch = [
                f"user{rng.randrange(rows)}@{rng.choice(DOMAINS)}" for _ in range(1000)
            ]
            start = time.perf_counter()
            await store.suppressed_keys(sorted(lookup_keys(batch)))
            timings.append(time.perf_counter() - start)
    finally:
        await store.close()
    return timings


def baseline_filter(db_path: Path, rows: int, runs: int = 50) -> list[float]:
    db = sqlite3.connect(db_path)
    rng = random.Random(3)
    timings = []
    for _ in range(runs):
        batch = [
            f"user{rng.randrange(rows)}@{rng.choice(DOMAINS)}" for _ in range(1000)
        ]
        start = time.perf_counter()
        marks = ",".join("?" * len(batch))
        query = f"SELECT address FROM t WHERE c = 1 AND address IN ({marks})"
        db.execute(query, batch).fetchall()
        timings.append(time.perf_counter() - start)
    db.close()
    return timings


def bench_backend(
    name: str,
    url: str,
    directory: Path,
    files: tuple[Path, Path],
    rows: int,
    baselines: dict[str, float],
) -> None:
    recipients, suppressed = files
    config = write_config(directory, url)
    template = directory / "t.eml"
    template.write_bytes(TEMPLATE)
    imported = run_measured(
        [*WARMUP, "-c", str(config), "suppress", "import", str(suppressed), "--json"]
    )
    queued = run_measured(
        [
            *WARMUP,
            "-c",
            str(config),
            "enqueue",
            str(recipients),
            "--template",
            str(template),
            "--campaign",
            "bench",
            "--json",
        ]
    )
    timings = asyncio.run(filter_latency(url, rows))
    print(f"\n[{name}]")
    print(
        f"  suppress import {rows:,}: {imported.seconds:6.1f} s  "
        f"{rows / imported.seconds:9,.0f} rows/s  peak {imported.peak_mb:5.0f} MB  "
        f"= {imported.seconds / baselines['suppress']:.2f}x baseline"
    )
    print(f"    {imported.output.strip().splitlines()[-1]}")
    print(
        f"  enqueue {rows:,}:         {queued.seconds:6.1f} s  "
        f"{rows / queued.seconds:9,.0f} rows/s  peak {queued.peak_mb:5.0f} MB  "
        f"= {queued.seconds / baselines['enqueue']:.2f}x baseline "
        f"(target < 60 s, < 300 MB)"
    )
    print(f"    {queued.output.strip().splitlines()[-1]}")
    print(
        f"  suppression filter, 1,000 recipients vs {rows:,} suppressed: median "
        f"{statistics.median(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms "
        f"= {statistics.median(timings) / baselines['filter']:.2f}x raw query "
        "(target < 20 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="warmup-bench-") as tmp:
        directory = Path(tmp)
        files = make_files(directory, args.rows, rng)
        base_db = directory / "baseline.db"
        baselines = {
            "enqueue": baseline_load(files[0], base_db, 4),
            "suppress": baseline_load(files[1], directory / "baseline2.db", 1),
        }
        baselines["filter"] = statistics.median(
            baseline_filter(directory / "baseline2.db", args.rows)
        )
        print(
            f"baseline (csv + sqlite3.executemany, bare table): recipients "
            f"{baselines['enqueue']:.1f} s, suppressions {baselines['suppress']:.1f} s;"
            f" raw IN-query of 1,000 addresses {baselines['filter'] * 1000:.1f} ms"
        )
        sqlite_dir = directory / "sqlite"
        sqlite_dir.mkdir()
        bench_backend(
            "sqlite",
            f"sqlite:///{sqlite_dir}/warmup.db",
            sqlite_dir,
            files,
            args.rows,
            baselines,
        )
        if args.postgres:
            run_postgres(directory, files, args.rows, baselines)


def run_postgres(
    directory: Path, files: tuple[Path, Path], rows: int, baselines: dict[str, float]
) -> None:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        print(f"\n[postgres] skipped: {exc}")
        return
    try:
        import psycopg

        with psycopg.connect(
            server.admin_url.replace("+psycopg", ""), autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE bench")
        pg_dir = directory / "pg"
        pg_dir.mkdir()
        bench_backend("postgres", server.url("bench"), pg_dir, files, rows, baselines)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
