-- 009_tracking: tracking hits as events, each with a unique hit id (a
-- spooled batch replayed twice counts once), the class of the client that
-- made it, and whether it still waits to be scored.
--
-- events.class: 'human', 'machine' (a mail provider's image proxy: Apple
-- Mail Privacy Protection, Gmail, Yahoo) or 'scanner' (a security link
-- scanner, a crawler, a script); NULL for events that are not tracking
-- hits (captures, routing steps, API events). Only human events score and
-- may satisfy drip conditions. events.reason says why a hit is not human.
ALTER TABLE events ADD COLUMN hit_id uuid;
ALTER TABLE events ADD COLUMN class text
	CHECK (class IN ('human', 'machine', 'scanner'));
ALTER TABLE events ADD COLUMN reason text;
ALTER TABLE events ADD COLUMN score_due boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX events_hit ON events (hit_id) WHERE hit_id IS NOT NULL;
CREATE INDEX events_score_due ON events (id) WHERE score_due;
CREATE INDEX events_delivery ON events (delivery_id, type)
	WHERE delivery_id IS NOT NULL;
