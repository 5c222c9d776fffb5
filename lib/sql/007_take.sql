-- 007_take: a rep takes a lead from a queue (next, claim) in one function,
-- so that the rep's capacity holds against parallel pulls: the rep's row
-- is locked first (the router locks it too while it offers), and the
-- open leads are counted after the lock, in a statement of their own
-- (whose snapshot sees the takes that committed while it waited).
-- p_capacity 0: no limit. Returns the lead taken, or NULL with the rep's
-- open count (at capacity) or NULL open (somebody else took the lead).
CREATE FUNCTION leadcast_take(p_lead bigint, p_rep text, p_queue text,
    p_how text, p_capacity integer, OUT lead jsonb, OUT open bigint)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM reps WHERE id = p_rep FOR UPDATE;
	IF p_capacity > 0 THEN
		SELECT (SELECT count(*) FROM leads l WHERE l.owner = p_rep AND
		        l.status IN ('assigned', 'contacted', 'qualified')) +
		       (SELECT count(*) FROM offers o WHERE o.rep_id = p_rep AND
		        o.status = 'pending' AND o.kind = 'single')
		  INTO open;
		IF open >= p_capacity THEN
			RETURN;
		END IF;
		open := NULL;
	END IF;
	UPDATE leads l SET owner = p_rep, status = 'assigned',
	    assigned_at = now(), status_at = now(), queue = NULL,
	    route_at = NULL, route_team = NULL, updated_at = now()
	 WHERE l.id = p_lead AND l.owner IS NULL AND l.queue = p_queue
	RETURNING to_jsonb(l) INTO lead;
	IF lead IS NULL THEN
		RETURN;
	END IF;
	UPDATE offers SET status = 'withdrawn', answered_at = now()
	 WHERE lead_id = p_lead AND status = 'pending';
	INSERT INTO events (type, lead_id, data)
	VALUES ('claimed', p_lead, jsonb_build_object('rep', p_rep, 'how',
	    p_how, 'queue', p_queue));
END
$$;
