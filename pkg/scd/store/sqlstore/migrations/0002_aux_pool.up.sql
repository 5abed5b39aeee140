-- The pool of the auxiliary API (docs/spec/aux.md): the DSS instances with
-- their latest heartbeat, and the identity of this database's DSS Airspace
-- Representation.

CREATE TABLE aux_dss_instances (
    id              text PRIMARY KEY,
    public_endpoint text NOT NULL,
    hb_timestamp    timestamptz NOT NULL,
    hb_timestamp_ns int2 NOT NULL CHECK (hb_timestamp_ns BETWEEN 0 AND 999),
    hb_reporter     text NOT NULL,
    hb_source       text NOT NULL,
    hb_index        int8 NOT NULL CHECK (hb_index >= 0),
    -- NULL when the reporter gave no next_heartbeat_expected_before.
    hb_next_before    timestamptz,
    hb_next_before_ns int2 NOT NULL CHECK (hb_next_before_ns BETWEEN 0 AND 999)
);

-- One row, created here with a random ID: the pool's dar_id. Every node
-- using this database reports the same one; another database another.
CREATE TABLE aux_pool (
    onerow_enforcer bool PRIMARY KEY DEFAULT true CHECK (onerow_enforcer),
    dar_id          uuid NOT NULL
);
INSERT INTO aux_pool (dar_id) VALUES (gen_random_uuid());
