-- join_rooms: many joins in one statement, for a storm of them (a gateway restarting: every client
-- reconnects and joins its rooms again). The contract of join_room (003) for each (room, user) pair,
-- without the member count: one row per input, in input order; o_outcome ok, not_found or forbidden;
-- kind, last_seq and cleared_seq set for ok. A public room makes its joiner a member.
-- Profiled at ~3,500 joins/s, join_room (a statement, a transaction and a round trip each) kept
-- PostgreSQL at ~48 % of a core. Here the fixed costs are shared by the batch, and nothing is counted:
-- counting a room's members reads all of them (a heap fetch each while the visibility map lags behind
-- a storm of inserts), per join, for a number the gateway does not use.
CREATE FUNCTION join_rooms(p_rooms text[], p_users text[])
RETURNS TABLE (o_outcome text, o_kind text, o_last_seq bigint, o_cleared_seq bigint)
LANGUAGE plpgsql AS $$
BEGIN
  -- Inserted in (room, user) order: two batches that overlap wait for each other, never in a cycle.
  INSERT INTO room_members (room, user_id)
  SELECT DISTINCT x.room, x.usr
  FROM unnest(p_rooms, p_users) AS x (room, usr)
  CROSS JOIN LATERAL (SELECT 1 FROM rooms ro WHERE ro.id = x.room AND ro.kind = 'public' LIMIT 1) pub
  ORDER BY x.room, x.usr
  ON CONFLICT DO NOTHING;
  -- A new statement: it sees the rows just inserted.
  -- LATERAL ... LIMIT 1: one index probe per join. (An EXISTS here was planned, while room_members was
  -- still small, as a hashed subplan: the whole table read into a hash on every call.)
  RETURN QUERY
  SELECT CASE WHEN r.kind IS NULL THEN 'not_found' WHEN mem.member IS NULL THEN 'forbidden' ELSE 'ok' END,
         CASE WHEN mem.member THEN r.kind END,
         CASE WHEN mem.member THEN r.last_seq ELSE 0::bigint END,
         CASE WHEN mem.member THEN r.cleared_seq ELSE 0::bigint END
  FROM unnest(p_rooms, p_users) WITH ORDINALITY AS x (room, usr, i)
  LEFT JOIN LATERAL (SELECT ro.kind, ro.last_seq, ro.cleared_seq FROM rooms ro WHERE ro.id = x.room LIMIT 1) r
    ON true
  LEFT JOIN LATERAL (
    SELECT true AS member FROM room_members rm WHERE rm.room = x.room AND rm.user_id = x.usr LIMIT 1) mem ON true
  ORDER BY x.i;
END;
$$;
-- Planned once, like append_batch (005): array parameters never let the generic plan win on its own.
ALTER FUNCTION join_rooms(text[], text[]) SET plan_cache_mode = force_generic_plan;
