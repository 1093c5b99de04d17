"""`python manage.py seed_demo`: the demo people, domains, products and warehouse data,
with checks, SLOs, 30 days of check and monitor history, and one real check run per port
(so that trust scores differ and incidents are open).

Idempotent: running it again changes nothing (within the hour the data was generated for).
The logins it creates (password `portal-demo`) exist only through this command.
"""

from django.core.management.base import BaseCommand, CommandError

from products.demo.catalog import PASSWORD, USERS
from products.demo.data import DEFAULT_SEED
from products.demo.seed import DemoSeedError, demo_seed


class Command(BaseCommand):
    help = "Create or update the demo: users, domains, data products and warehouse data."

    def add_arguments(self, parser):
        parser.add_argument(
            "--warehouse",
            choices=["auto", "duckdb", "postgresql", "spark"],
            default="auto",
            help="Where the demo tables go. auto: a `warehouse` schema when the metadata "
            "database is PostgreSQL, else the DuckDB file at DEMO_DUCKDB_PATH. spark: the "
            "`warehouse` database of the Spark Connect server at --spark-url.",
        )
        parser.add_argument(
            "--spark-url",
            default="",
            help="With --warehouse spark: a running Spark Connect server, sc://host:port "
            "(python -m products.connectors.spark_server starts one on sc://127.0.0.1:15002).",
        )
        parser.add_argument(
            "--rows-scale",
            type=float,
            default=1.0,
            help="Multiply generated row counts (default 1: 120,000 order lines). "
            "Tests use smaller values.",
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Random seed.")
        parser.add_argument(
            "--force", action="store_true", help="Rewrite the warehouse even if up to date."
        )

    def handle(self, *args, warehouse, spark_url, rows_scale, seed, force, verbosity, **options):
        log = self.stdout.write if verbosity > 1 else (lambda line: None)
        if spark_url and warehouse != "spark":
            raise CommandError("--spark-url goes with --warehouse spark.")
        if warehouse == "spark" and not spark_url:
            raise CommandError(
                "--warehouse spark needs --spark-url sc://host:port, a running Spark Connect "
                "server (python -m products.connectors.spark_server starts one)."
            )
        try:
            result = demo_seed(
                warehouse=warehouse,
                rows_scale=rows_scale,
                seed=seed,
                force=force,
                spark_url=spark_url,
                log=log,
            )
        except DemoSeedError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity == 0:
            return
        created = ", ".join(f"{n} {what}" for what, n in sorted(result.created.items()))
        updated = ", ".join(f"{n} {what}" for what, n in sorted(result.updated.items()))
        largest_key, largest_rows = max(result.row_counts.items(), key=lambda item: item[1])
        state = "rebuilt" if result.warehouse_rebuilt else "already up to date"
        write = self.stdout.write
        write(self.style.SUCCESS(f"Demo seeded in {result.seconds:.1f} s."))
        write(f"  created: {created or 'nothing'}")
        write(f"  updated: {updated or 'nothing'}")
        write(f"  warehouse ({result.warehouse}, {state}): {result.warehouse_location}")
        if result.files_written:
            write(f"  files written to storage: {', '.join(result.files_written)}")
        write(
            f"  {len(result.row_counts)} products; largest table {largest_key} "
            f"with {largest_rows:,} rows"
        )
        if result.check_runs:
            passed, failed, errored = (
                sum(r[i] for r in result.check_runs.values()) for i in (0, 1, 2)
            )
            write(
                f"  checks run on {len(result.check_runs)} ports: {passed} passed, "
                f"{failed} failed, {errored} could not be evaluated"
            )
        else:
            write("  checks not run: no new data since the last run")
        if result.trust_scores:
            scores = ", ".join(
                f"{key} {score:.0f}" for key, score in sorted(result.trust_scores.items())
            )
            write(f"  trust scores: {scores}")
        write(f"  open incidents: {result.open_incidents}")
        write(f"  logins ({PASSWORD}): {', '.join(user.username for user in USERS)}")
