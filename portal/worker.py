"""`python -m portal.worker [options of celery worker]`: the portal's Celery worker.

The same worker as `celery -A portal worker`, without Celery's command-line program:
that program imports every sub-command first, and its `amqp` shell imports click_repl
and prompt_toolkit, ~7 MB an idle worker would hold for nothing (bench/memory.py).
Options are those of `celery worker` (`--pool`, `--concurrency`, `-Q`, `-n`,
`--loglevel`...); deploy/ starts workers this way.
"""

from __future__ import annotations

import sys

from celery.bin.base import CLIContext
from celery.bin.worker import worker

from portal.celery import app


def main(argv: list[str] | None = None) -> None:

    # What `celery -A portal worker` does before it runs the worker command.
    worker.params.extend(app.user_options.get("worker", []))
    worker.main(
        args=sys.argv[1:] if argv is None else argv,
        obj=CLIContext(app=app, no_color=None, workdir=None, quiet=False),
        prog_name="python -m portal.worker",
    )


if __name__ == "__main__":
    main()
