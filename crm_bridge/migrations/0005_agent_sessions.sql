-- Agent desktops (cti/desktop): one session per logged-in agent, so a second login replaces
-- the first, and a restarted daemon still knows its desktops and what they were showing.
CREATE TABLE agent_sessions (
    agent_id     text        PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token: the token itself (256 random bits) is never stored.
    token_sha256 bytea       NOT NULL UNIQUE,
    started_at   timestamptz NOT NULL DEFAULT now(),
    -- The desk's state to restore after a restart: the agent's chosen state, a call in progress.
    desk         jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(desk) = 'object')
);
