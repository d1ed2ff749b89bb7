-- The interaction log: one row per call, written by the CTI link, queried by CRM apps.
-- Later migrations add customers, agents and the CRM-facing columns.

CREATE TABLE interactions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system_name   text        NOT NULL,            -- Asterisk SystemName
    linkedid      text        NOT NULL,            -- Asterisk Linkedid: one call
    direction     text        NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out', 'internal')),
    channel_type  text        NOT NULL DEFAULT 'voice',
    ani           text,
    caller_name   text,
    dnis          text,
    started_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    ended_at      timestamptz,
    outcome       text,
    hangup_cause  integer,
    data          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Writes are idempotent per call: the same Linkedid on the same system is one interaction.
    UNIQUE (system_name, linkedid)
);

CREATE INDEX interactions_started_at ON interactions (started_at);
CREATE INDEX interactions_ani ON interactions (ani);

CREATE TABLE interaction_events (
    interaction_id bigint      NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    seq            integer     NOT NULL,
    at             timestamptz NOT NULL,
    kind           text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (interaction_id, seq)
);
