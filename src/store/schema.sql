-- seedprobe store, schema version 1. Times are Unix milliseconds (UTC).
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,          -- ULID
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,                   -- NULL while messages still await a verdict
    config_path TEXT NOT NULL,
    transport   TEXT NOT NULL,             -- direct | relay
    sender_from TEXT NOT NULL,
    ehlo        TEXT NOT NULL,
    timeout_ms  INTEGER NOT NULL           -- accepted but unseen after this: missing
);

CREATE TABLE messages (
    token           TEXT PRIMARY KEY,      -- also in X-Probe-Id, Message-ID and subject
    run_id          TEXT NOT NULL REFERENCES runs(id),
    seed            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    address         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,      -- when the SMTP transaction ended
    smtp_host       TEXT,                  -- the last host tried
    smtp_stage      TEXT,                  -- where the transaction ended
    smtp_code       INTEGER,
    smtp_enhanced   TEXT,
    smtp_text       TEXT,
    smtp_error      TEXT,                  -- when no reply ended it
    smtp_error_kind TEXT,
    tls_json        TEXT,
    verdict         TEXT,                  -- NULL: accepted, not decided yet
    verdict_reason  TEXT,
    decided_at      INTEGER,
    folder          TEXT,
    folder_role     TEXT,
    seen_at         INTEGER,
    headers_json    TEXT,
    poll_error      TEXT                   -- the last polling problem for its seed
);
CREATE INDEX messages_run ON messages(run_id);

-- One row per host tried, with its whole transcript (every reply received is in it).
CREATE TABLE smtp_attempts (
    token      TEXT NOT NULL REFERENCES messages(token),
    attempt    INTEGER NOT NULL,
    host       TEXT NOT NULL,
    addr       TEXT,
    ending     TEXT NOT NULL,
    tls_json   TEXT,
    transcript TEXT NOT NULL,              -- JSON list of lines
    PRIMARY KEY (token, attempt)
);

-- Everything polling noticed, in order: folders chosen, sightings, errors.
CREATE TABLE observations (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    token  TEXT,
    seed   TEXT,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,                  -- junk_folder | found | poll_error
    detail TEXT NOT NULL                   -- JSON
);
CREATE INDEX observations_run ON observations(run_id);
