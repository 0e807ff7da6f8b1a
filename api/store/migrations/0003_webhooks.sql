-- Webhook subscriptions and where each one's delivery stands (the file store's webhooks/ folder),
-- shared by every node: whichever node holds a subscription's lease delivers to it. The outbox
-- itself is medkb_changes: a subscription keeps only a cursor into it.
CREATE TABLE medkb_webhooks (
    id text PRIMARY KEY,
    url text NOT NULL,
    events json NOT NULL,
    types json NOT NULL,
    secret text NOT NULL,  -- in clear: signing needs it
    created_at text NOT NULL,
    description text NOT NULL,
    state json NOT NULL,   -- DeliveryState: cursor, status, failures, replays, ...
    state_version bigint NOT NULL DEFAULT 0  -- moves on every state write: a cheap "did it change?"
);

-- Moves whenever a subscription is added or removed: a cheap check for cached lists.
CREATE TABLE medkb_webhooks_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version bigint NOT NULL
);
INSERT INTO medkb_webhooks_version (version) VALUES (0);

-- Every delivery attempt, kept until its subscription is removed.
CREATE TABLE medkb_webhook_attempts (
    subscription text NOT NULL REFERENCES medkb_webhooks (id) ON DELETE CASCADE,
    attempt bigint GENERATED ALWAYS AS IDENTITY,
    entry json NOT NULL,
    PRIMARY KEY (subscription, attempt)
);
