-- A read-only database role for one portal data source (defence in depth).
--
-- The portal refuses ports on relations a domain was not allowed (Admin > Source
-- allowances), but the database should refuse them too: register each PostgreSQL data
-- source with a role that may only read the schemas its allowances name.
--
-- Run as the owner of the schema's tables (or a superuser), once per schema, on the
-- source's database:
--
--   psql "postgres://admin@dwh.internal/dwh" \
--     -v role=portal_reader_sales -v schema=warehouse -v password="$READER_PASSWORD" \
--     -f deploy/readonly-role.sql
--
-- then register the source with username `portal_reader_sales` and, in "password
-- environment variable", the name of the variable holding that password on the web and
-- worker hosts. Running it again is harmless (it re-grants; with a new password it
-- changes it). Omit `-v password=...` for a role that signs in by other means (trust,
-- peer, certificate). Leave it out for a schema the role must not read.
--
-- What the role gets: LOGIN, no other attribute; read-only transactions by default;
-- CONNECT on this database; USAGE on the schema; SELECT on its tables, views and
-- sequences, now and (default privileges) on those the running role creates later.
-- What it does not get: anything on the schema `public` or other schemas, so the
-- portal's own tables (if the source shares its database) stay out of reach.

\set ON_ERROR_STOP on
\if :{?role}
\else
  \echo 'Give the role: -v role=portal_reader_<name>'
  \quit
\endif
\if :{?schema}
\else
  \echo 'Give the schema: -v schema=<schema>'
  \quit
\endif

BEGIN;

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
              'NOBYPASSRLS NOINHERIT', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'role')
\gexec

\if :{?password}
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password')
\gexec
\endif

-- Every transaction it opens is read-only unless it asks otherwise (the portal opens
-- its reads read-only as well).
SELECT format('ALTER ROLE %I SET default_transaction_read_only = on', :'role')
\gexec

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role')
\gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', :'schema', :'role')
\gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', :'schema', :'role')
\gexec
SELECT format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', :'schema', :'role')
\gexec
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
              :'schema', :'role')
\gexec

COMMIT;
