-- 012_sweep: the pending offers of a lead, for the router's sweeper (one
-- index probe per lead it walks, instead of a scan of the rep index).
CREATE INDEX offers_pending_lead ON offers (lead_id) WHERE status = 'pending';
