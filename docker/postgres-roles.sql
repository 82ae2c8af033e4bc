-- Runs once, when the database volume is first created (docker-entrypoint-initdb.d), as the
-- superuser. Two roles (README, "Database roles"):
--   activity_owner owns the database and every table; `manage.py migrate --database owner` runs
--                  as it and grants the app's role what the app needs.
--   activity_app   is what web, worker and beat connect as: it may add and read events, never
--                  change, delete or own them.
-- Development passwords: set your own in production (and in docker-compose.yml).
CREATE ROLE activity_owner LOGIN PASSWORD 'activity-owner';
CREATE ROLE activity_app LOGIN PASSWORD 'activity-app';
CREATE DATABASE activity_monitor OWNER activity_owner;
-- PostgreSQL 15+ already keeps PUBLIC from creating objects in the public schema, whose owner
-- is the database's owner; say so anyway for older servers.
\connect activity_monitor
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
