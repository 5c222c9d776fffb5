-- 017_events_write: what storing a tracking hit costs PostgreSQL, cut
-- once more (after 013 and 015).
--
-- 1. events keep their lead's ON DELETE CASCADE as a statement trigger on
-- leads instead of a foreign key on events. The key's check (a statement
-- per row, taking FOR KEY SHARE on the lead's row) was the largest single
-- cost of a stored hit left after 015: ~4 us of PostgreSQL's ~17 per row
-- in a batch of 1,000, more when concurrent batches share a lead and its
-- row lock becomes a multixact. Every writer of events takes lead_id from
-- a row it reads in the same statement (the delivery, the lead, the offer,
-- the enrollment, the subscription) or from a function's caller that has
-- just read or locked the lead (lead_take, leads_capture); leadcast never
-- deletes a lead. What the key still did was the cascade of an
-- administrator's DELETE, which the lead's deletion trigger of 014 now
-- does too, once per statement.
ALTER TABLE events DROP CONSTRAINT events_lead_id_fkey;

CREATE OR REPLACE FUNCTION leadcast_leads_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE deliveries SET lead_id = NULL
	WHERE lead_id IN (SELECT id FROM gone);
	DELETE FROM events WHERE lead_id IN (SELECT id FROM gone);
	RETURN NULL;
END $$;

-- 2. events_type_time (type, created_at), from 003, serves no query:
-- every reader of events selects by lead, campaign, delivery or hit id
-- (the indexes kept), and the period reports select a campaign's
-- deliveries first. Each row paid for its entry.
DROP INDEX events_type_time;
