-- Rooms, membership and messages. Seq is per room, assigned at commit from rooms.last_seq.
CREATE TABLE rooms (
  id          text PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('public', 'private', 'dm')),
  last_seq    bigint NOT NULL DEFAULT 0,
  cleared_seq bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE room_members (
  room          text NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  user_id       text NOT NULL,
  role          text NOT NULL DEFAULT 'member',
  last_read_seq bigint NOT NULL DEFAULT 0,
  joined_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id);

CREATE TABLE messages (
  room       text NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  seq        bigint NOT NULL,
  id         uuid NOT NULL,
  sender     text NOT NULL,
  client_id  text NOT NULL,
  body       text NOT NULL,
  kind       text NOT NULL DEFAULT 'user',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room, seq),
  UNIQUE (sender, client_id)
);

CREATE TABLE mutes (
  room       text NOT NULL,
  user_id    text NOT NULL,
  until      timestamptz,
  created_by text NOT NULL DEFAULT '',
  PRIMARY KEY (room, user_id)
);
