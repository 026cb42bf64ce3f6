-- One round trip for a whole commit batch (group commit): the checks, the seq and the insert of every
-- message run inside the server, in the order given, instead of five round trips per message. The
-- caller sorts by room, so concurrent writers lock rooms in the same order and never deadlock. One row
-- per input, in input order: o_outcome is ok, duplicate (the first message with that sender and
-- clientId, whole), not_found, forbidden or muted. For ok, o_body is NULL (the caller has it).
CREATE FUNCTION append_batch(p_rooms text[], p_senders text[], p_client_ids text[], p_bodies text[])
RETURNS TABLE (o_outcome text, o_room text, o_seq bigint, o_id text, o_client_id text, o_sender text,
               o_body text, o_kind text, o_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
  i int;
  v_system boolean;
  v_kind text;
  v_member boolean;
  v_seq bigint;
  v_id text;
  v_us bigint;
  v_found boolean;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_rooms, 1), 0) LOOP
    RETURN QUERY
      SELECT 'duplicate'::text, m.room, m.seq, m.id::text, m.client_id, m.sender, m.body, m.kind,
             (extract(epoch FROM m.created_at) * 1000000)::bigint
      FROM messages m WHERE m.sender = p_senders[i] AND m.client_id = p_client_ids[i];
    IF FOUND THEN CONTINUE; END IF;

    v_system := p_senders[i] = '';
    SELECT r.kind, mem.user_id IS NOT NULL INTO v_kind, v_member
      FROM rooms r LEFT JOIN room_members mem ON mem.room = r.id AND mem.user_id = p_senders[i]
      WHERE r.id = p_rooms[i];
    v_found := FOUND;
    IF NOT v_found THEN
      RETURN QUERY SELECT 'not_found'::text, p_rooms[i], 0::bigint, NULL::text, NULL::text, NULL::text,
                          NULL::text, NULL::text, 0::bigint;
      CONTINUE;
    END IF;
    IF NOT v_system AND NOT v_member AND v_kind <> 'public' THEN
      RETURN QUERY SELECT 'forbidden'::text, p_rooms[i], 0::bigint, NULL::text, NULL::text, NULL::text,
                          NULL::text, NULL::text, 0::bigint;
      CONTINUE;
    END IF;
    IF NOT v_system AND EXISTS (SELECT 1 FROM mutes mu WHERE mu.user_id = p_senders[i]
                                AND (mu.room = p_rooms[i] OR mu.room = '*')
                                AND (mu.until IS NULL OR mu.until > now())) THEN
      RETURN QUERY SELECT 'muted'::text, p_rooms[i], 0::bigint, NULL::text, NULL::text, NULL::text,
                          NULL::text, NULL::text, 0::bigint;
      CONTINUE;
    END IF;
    IF NOT v_system AND NOT v_member THEN
      INSERT INTO room_members (room, user_id) VALUES (p_rooms[i], p_senders[i]) ON CONFLICT DO NOTHING;
    END IF;
    UPDATE rooms SET last_seq = last_seq + 1 WHERE id = p_rooms[i] RETURNING last_seq INTO v_seq;
    INSERT INTO messages (room, seq, id, sender, client_id, body, kind)
      VALUES (p_rooms[i], v_seq, gen_random_uuid(), p_senders[i], p_client_ids[i], p_bodies[i],
              CASE WHEN v_system THEN 'system' ELSE 'user' END)
      RETURNING id::text, (extract(epoch FROM created_at) * 1000000)::bigint INTO v_id, v_us;
    RETURN QUERY SELECT 'ok'::text, p_rooms[i], v_seq, v_id, p_client_ids[i], p_senders[i], NULL::text,
                        CASE WHEN v_system THEN 'system' ELSE 'user' END, v_us;
  END LOOP;
END;
$$;
