-- A join in one round trip: the access check, membership for a public room and the room's info, in
-- one statement (its own transaction), instead of BEGIN, three or four statements and COMMIT.
-- o_outcome is ok, not_found or forbidden; the other columns are set for ok.
CREATE FUNCTION join_room(p_room text, p_user text)
RETURNS TABLE (o_outcome text, o_kind text, o_last_seq bigint, o_cleared_seq bigint, o_members bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_kind text;
  v_member boolean;
BEGIN
  SELECT r.kind, mem.user_id IS NOT NULL INTO v_kind, v_member
    FROM rooms r LEFT JOIN room_members mem ON mem.room = r.id AND mem.user_id = p_user
    WHERE r.id = p_room;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::text, 0::bigint, 0::bigint, 0::bigint;
    RETURN;
  END IF;
  IF NOT v_member AND v_kind <> 'public' THEN
    RETURN QUERY SELECT 'forbidden'::text, NULL::text, 0::bigint, 0::bigint, 0::bigint;
    RETURN;
  END IF;
  IF NOT v_member THEN
    INSERT INTO room_members (room, user_id) VALUES (p_room, p_user) ON CONFLICT DO NOTHING;
  END IF;
  RETURN QUERY
    SELECT 'ok'::text, r.kind, r.last_seq, r.cleared_seq,
           (SELECT count(*) FROM room_members m WHERE m.room = r.id)
    FROM rooms r WHERE r.id = p_room;
END;
$$;
