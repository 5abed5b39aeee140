-- Removes everything 0001_init.up.sql created (back to an empty database).
DROP TABLE IF EXISTS scd_operations;
DROP TABLE IF EXISTS scd_subscriptions;
DROP TABLE IF EXISTS scd_constraints;
DROP TABLE IF EXISTS scd_uss_availability;
DROP TABLE IF EXISTS schema_versions;
