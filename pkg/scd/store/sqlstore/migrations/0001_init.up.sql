-- Schema 1 of the SCD tables on PostgreSQL (spec §11).
--
-- Instants: a timestamptz column (microseconds, what operators' SQL tools
-- read and index) plus a smallint *_ns column holding the nanoseconds below
-- the microsecond (0..999). Together they restore the exact instant the
-- operation wrote: versions and OVNs derive from UpdatedAt formatted with
-- nanoseconds, and the §4 time comparisons must agree with the in-memory
-- store to the nanosecond. A single bigint of Unix nanoseconds would only
-- cover the years 1678-2262, while RFC 3339 input may name any year 0-9999.
--
-- Only the integrity rules the in-memory store also keeps are enforced
-- (primary keys, the OIR -> subscription reference with ON DELETE CASCADE):
-- a CHECK that memstore lacks would make the two backends answer the same
-- operation differently. Value rules (time order, notify flags, states) are
-- enforced by the operations before they write.
--
-- Cell indexes are GIN with fastupdate off: with the pending list, every
-- insert conflicts with every SERIALIZABLE reader of the index, turning
-- disjoint writes into serialization failures.

CREATE TABLE scd_subscriptions (
    id                     uuid PRIMARY KEY,
    owner                  text NOT NULL,
    version                int4 NOT NULL DEFAULT 0, -- unused (reference parity); the version derives from updated_at
    url                    text NOT NULL,
    notification_index     int4 NOT NULL DEFAULT 0,
    notify_for_operations  bool NOT NULL,
    notify_for_constraints bool NOT NULL,
    implicit               bool NOT NULL,
    starts_at              timestamptz NOT NULL,
    starts_at_ns           int2 NOT NULL CHECK (starts_at_ns BETWEEN 0 AND 999),
    ends_at                timestamptz NOT NULL,
    ends_at_ns             int2 NOT NULL CHECK (ends_at_ns BETWEEN 0 AND 999),
    cells                  int8[] NOT NULL,
    updated_at             timestamptz NOT NULL,
    updated_at_ns          int2 NOT NULL CHECK (updated_at_ns BETWEEN 0 AND 999)
);
CREATE INDEX scd_subscriptions_cells_idx ON scd_subscriptions USING gin (cells) WITH (fastupdate = off);
CREATE INDEX scd_subscriptions_ends_at_idx ON scd_subscriptions (ends_at);

CREATE TABLE scd_operations (
    id                uuid PRIMARY KEY,
    owner             text NOT NULL,
    version           int4 NOT NULL,
    url               text NOT NULL,
    altitude_lower    real NOT NULL,
    altitude_upper    real NOT NULL,
    starts_at         timestamptz NOT NULL,
    starts_at_ns      int2 NOT NULL CHECK (starts_at_ns BETWEEN 0 AND 999),
    ends_at           timestamptz NOT NULL,
    ends_at_ns        int2 NOT NULL CHECK (ends_at_ns BETWEEN 0 AND 999),
    subscription_id   uuid NULL REFERENCES scd_subscriptions (id) ON DELETE CASCADE,
    updated_at        timestamptz NOT NULL,
    updated_at_ns     int2 NOT NULL CHECK (updated_at_ns BETWEEN 0 AND 999),
    state             text NOT NULL,
    cells             int8[] NOT NULL,
    uss_requested_ovn text NULL CHECK (uss_requested_ovn <> ''),
    past_ovns         text[] NOT NULL DEFAULT '{}' CHECK (array_position(past_ovns, NULL) IS NULL)
);
CREATE INDEX scd_operations_cells_idx ON scd_operations USING gin (cells) WITH (fastupdate = off);
CREATE INDEX scd_operations_ends_at_idx ON scd_operations (ends_at);
CREATE INDEX scd_operations_updated_at_idx ON scd_operations (updated_at);
CREATE INDEX scd_operations_subscription_id_idx ON scd_operations (subscription_id);

CREATE TABLE scd_constraints (
    id             uuid PRIMARY KEY,
    owner          text NOT NULL,
    version        int4 NOT NULL,
    url            text NOT NULL,
    altitude_lower real NULL,
    altitude_upper real NULL,
    starts_at      timestamptz NOT NULL,
    starts_at_ns   int2 NOT NULL CHECK (starts_at_ns BETWEEN 0 AND 999),
    ends_at        timestamptz NOT NULL,
    ends_at_ns     int2 NOT NULL CHECK (ends_at_ns BETWEEN 0 AND 999),
    cells          int8[] NOT NULL,
    updated_at     timestamptz NOT NULL,
    updated_at_ns  int2 NOT NULL CHECK (updated_at_ns BETWEEN 0 AND 999)
);
CREATE INDEX scd_constraints_cells_idx ON scd_constraints USING gin (cells) WITH (fastupdate = off);
CREATE INDEX scd_constraints_ends_at_idx ON scd_constraints (ends_at);

CREATE TABLE scd_uss_availability (
    id            text PRIMARY KEY, -- the USS id (token subject)
    availability  text NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_at_ns int2 NOT NULL CHECK (updated_at_ns BETWEEN 0 AND 999)
);

-- One row; Migrate keeps schema_version current, Open refuses any other.
CREATE TABLE schema_versions (
    onerow_enforcer bool PRIMARY KEY DEFAULT true CHECK (onerow_enforcer),
    schema_version  text NOT NULL
);
