/**
 * Schema migrations, applied in order by `PRAGMA user_version` (liteque's and undici's approach).
 * Never edit a shipped migration; add the next one.
 */
export const migrations: readonly string[] = [
  // 1: the ring buffer and everything around it
  `
  -- Readings waiting for (or recently delivered to) the sinks. AUTOINCREMENT: ids are never reused,
  -- so a sink cursor (last id passed) stays meaningful across deletes and restarts.
  CREATE TABLE readings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device      TEXT    NOT NULL,
    boot        INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    ts_us       INTEGER NOT NULL,   -- point timestamp, unique and increasing per device
    received_at INTEGER NOT NULL,   -- ms since epoch
    pot         INTEGER NOT NULL,
    switch      INTEGER NOT NULL,
    led         INTEGER,
    payload     BLOB    NOT NULL,   -- raw bytes as received
    UNIQUE (device, boot, seq)      -- (device, boot, seq) identifies a reading: redeliveries are stored once
  );
  -- Per-device last point timestamp, so timestamps stay strictly increasing after rows are pruned.
  CREATE TABLE device_clock (device TEXT PRIMARY KEY, last_ts_us INTEGER NOT NULL) WITHOUT ROWID;
  -- One cursor per sink: every reading with id <= cursor has been accepted or dead-lettered by it.
  CREATE TABLE sink_state (
    name            TEXT PRIMARY KEY,
    cursor          INTEGER NOT NULL,
    sent_total      INTEGER NOT NULL DEFAULT 0,
    rejected_total  INTEGER NOT NULL DEFAULT 0,
    last_ok_at      INTEGER,
    last_error_code TEXT,
    last_error      TEXT,
    last_error_at   INTEGER
  ) WITHOUT ROWID;
  -- Ring overflow: undelivered readings dropped to make room, per device. Survives restarts.
  CREATE TABLE drops (device TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
  -- Messages that could not be stored as readings (ingest) or that a sink refused (sink:<name>).
  CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    topic       TEXT,
    device      TEXT,
    reading_id  INTEGER,
    reason      TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    requeued_at INTEGER
  );
  -- Device messages that are not readings: status (LWT), led/state, ota/status. Bounded by count.
  CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    device      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    payload     BLOB    NOT NULL
  );
  CREATE INDEX events_device ON events (device, id);
  -- Latest known state per device, for status and the API.
  CREATE TABLE devices (
    device         TEXT PRIMARY KEY,
    last_seen      INTEGER NOT NULL,
    online         INTEGER,
    status_at      INTEGER,
    last_reading   TEXT,
    last_reading_at INTEGER,
    led_state      TEXT,
    ota_state      TEXT
  ) WITHOUT ROWID;
  -- Small facts that must survive restarts (recoveries, last error).
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  `,
  // 2: LED commands (TalkBack, API, dashboard) and what became of them; see led/store.ts
  `
  CREATE TABLE commands (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    cmd          TEXT    NOT NULL UNIQUE, -- id sent to the device in led/set and echoed in led/state
    source       TEXT    NOT NULL,        -- 'api' | 'talkback'
    source_ref   TEXT,                    -- e.g. the TalkBack command id
    raw          TEXT,                    -- the command as received, for the audit trail
    device       TEXT,                    -- null when the command could not be read
    brightness   INTEGER,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    state        TEXT    NOT NULL,        -- pending|published|confirmed|superseded|expired|rejected|failed
    reason       TEXT,
    published_at INTEGER,
    confirmed_at INTEGER,
    confirmed_brightness INTEGER,
    cleared_at   INTEGER                  -- when the retained led/set was removed from the broker
  );
  CREATE INDEX commands_device ON commands (device, seq);
  `,
  // 3: the per-device clock moves into `devices`, so a group commit touches one small table per batch
  // instead of two (fewer pages written per commit; see bench/README.md, write amplification).
  `
  ALTER TABLE devices ADD COLUMN last_ts_us INTEGER;
  INSERT INTO devices (device, last_seen) SELECT device, 0 FROM device_clock WHERE device NOT IN (SELECT device FROM devices);
  UPDATE devices SET last_ts_us = (SELECT last_ts_us FROM device_clock WHERE device_clock.device = devices.device);
  DROP TABLE device_clock;
  `,
  // 4: a sink no longer in FERRY_SINKS is retired, so its cursor stops holding readings
  // (RingBuffer.configureSinks); a dead letter from a sink keeps the point time of the reading it
  // refused, so a requeue gives it back (dead-letters.ts).
  `
  ALTER TABLE sink_state ADD COLUMN retired_at INTEGER;
  ALTER TABLE dead_letters ADD COLUMN ts_us INTEGER;
  UPDATE dead_letters SET ts_us = (SELECT ts_us FROM readings WHERE readings.id = dead_letters.reading_id) WHERE reading_id IS NOT NULL;
  `,
  // 5: FERRY_BUFFER_MAX_AGE: undelivered readings removed for their age, per device (RingBuffer.expire),
  // kept apart from drops (ring overflow). Survives restarts.
  `
  CREATE TABLE expired (device TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
  `,
  // 6: dead letters get a bound of their own (dead-letter-store.ts): what is not kept is counted per
  // device and reason ('over-share': over the device's share, never stored; 'evicted': deleted,
  // oldest first, for the total cap); a payload cut to FERRY_INGEST_MAX_PAYLOAD_BYTES keeps the length
  // it had (null: kept whole).
  `
  CREATE TABLE dead_letter_discards (device TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (device, reason)) WITHOUT ROWID;
  ALTER TABLE dead_letters ADD COLUMN payload_bytes INTEGER;
  `,
  // 7: fewer bytes written per reading (docs/buffer-storage.md). A reading is stored as its parsed
  // columns; its raw bytes only when they say more than the columns (extra fields, no or a moved
  // `ts`: ring-buffer.ts `keepsRawPayload`); `size` keeps the received length that
  // FERRY_BUFFER_MAX_BYTES counts. Device ids become small integers (`device_ids`), in the rows and
  // in the dedupe index. `readings` stays as a view with the columns it always had (the payload
  // rebuilt from the columns where it was not kept), for the read-only tools and for people.
  // AUTOINCREMENT's high-water mark moves over, so ids are never reused and sink cursors stay valid.
  `
  CREATE TABLE device_ids (id INTEGER PRIMARY KEY, device TEXT NOT NULL UNIQUE);
  INSERT INTO device_ids (device) SELECT DISTINCT device FROM readings ORDER BY device;
  CREATE TABLE reading_rows (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device      INTEGER NOT NULL,   -- device_ids.id
    boot        INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    ts_us       INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    pot         INTEGER NOT NULL,
    switch      INTEGER NOT NULL,
    led         INTEGER,
    size        INTEGER NOT NULL,   -- bytes of the payload as received
    payload     BLOB,               -- raw bytes; NULL when the columns say all of it
    UNIQUE (device, boot, seq)
  );
  INSERT INTO reading_rows (id, device, boot, seq, ts_us, received_at, pot, switch, led, size, payload)
    SELECT r.id, d.id, r.boot, r.seq, r.ts_us, r.received_at, r.pot, r.switch, r.led, length(r.payload), r.payload
    FROM readings r JOIN device_ids d ON d.device = r.device ORDER BY r.id;
  DELETE FROM sqlite_sequence WHERE name = 'reading_rows';
  INSERT INTO sqlite_sequence (name, seq) SELECT 'reading_rows', seq FROM sqlite_sequence WHERE name = 'readings';
  DROP TABLE readings;
  CREATE VIEW readings AS
    SELECT r.id, d.device, r.boot, r.seq, r.ts_us, r.received_at, r.pot, r.switch, r.led, r.size,
      coalesce(r.payload, CAST('{"seq":' || r.seq || ',"boot":' || r.boot || ',"ts":' || (r.ts_us / 1000) || ',"pot":' || r.pot ||
        ',"switch":' || r.switch || coalesce(',"led":' || r.led, '') || '}' AS BLOB)) AS payload
    FROM reading_rows r JOIN device_ids d ON d.id = r.device;
  `,
]
