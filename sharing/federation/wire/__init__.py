"""The PostgreSQL wire-protocol endpoint of federated queries: psql, DBeaver, Metabase and
any PostgreSQL driver connect with a portal username and one of its API tokens as the
password, and see the products they may see as tables `<domain>.<product>`
(docs/query.md). `manage.py sql_server` runs it (PORTAL_SQL_HOST, PORTAL_SQL_PORT).

    server.py      the asyncio server (pg-mimic): sessions, statements, what clients send
                   besides queries (SET, SHOW, BEGIN, catalog queries), errors as SQLSTATEs
    answers.py     a statement run through the one governed path (query_start +
                   query_batches, channel "wire"), refusals and failures as PostgreSQL errors
    parameters.py  bound parameters of the extended protocol as typed SQL literals
    catalog.py     the tables a person sees (visible products, default port's columns) as
                   pg_catalog and information_schema rows
    auth.py        the password: an API token of the user, checked as the API checks it
    threads.py     Django calls made from the server's worker threads

Nothing here is imported by the URLs or the worker (pg-mimic loads sqlglot at import):
only the management command imports it.
"""
