"""The demo: people, domains, data products and generated warehouse data.

`catalog` declares what the demo contains (the words people read), `data` generates the
rows (numpy, fixed seed), `warehouse` writes them where the ports read them (a DuckDB
file, a PostgreSQL schema, files in storage), and `seed` puts it all together for the
`seed_demo` command.
"""
