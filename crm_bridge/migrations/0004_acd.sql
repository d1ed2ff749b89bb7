-- The ACD's definitions, editable at run time (crm_bridge.acd_store): queues, agents' devices and
-- proficiencies, customer tier priorities, and which file content was imported last.
-- JSON documents use the format of the ACD file (acd.config.queue_to_dict / agent_to_dict).

CREATE TABLE acd_queues (
    name       text        PRIMARY KEY,
    definition jsonb       NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL
);

-- An agent belongs to the ACD once it has an interface. skills (text[]) stays for the CRM's
-- listings; acd_store writes it as the keys of proficiency.
ALTER TABLE agents
    ADD COLUMN interface   text,
    ADD COLUMN device      text,                  -- device-state name; NULL: derived, '': none
    ADD COLUMN proficiency jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(proficiency) = 'object'),
    ADD COLUMN updated_at  timestamptz,
    ADD COLUMN updated_by  text;

CREATE TABLE acd_imports (
    source      text        PRIMARY KEY,          -- the file, as the daemon names it
    sha256      text        NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE acd_settings (
    key        text        PRIMARY KEY,           -- 'tier_priorities'
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL
);
