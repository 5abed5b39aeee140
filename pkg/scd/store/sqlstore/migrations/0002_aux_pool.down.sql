-- Removes what 0002_aux_pool.up.sql created.
DROP TABLE IF EXISTS aux_dss_instances;
DROP TABLE IF EXISTS aux_pool;
