-- 008_sms_leads: texts to leads (SMS campaigns, drip steps). Such a text
-- carries an idempotency key (one message per key, ever: a campaign's
-- text to a lead, a drip step of an enrollment), needs the lead's consent
-- at the moment it goes out (a STOP suppresses what is still queued), and
-- may wait out quiet hours in a time zone. Its price is known when queued.

ALTER TABLE sms
	ADD COLUMN idem_key          text,
	ADD COLUMN campaign_id       integer REFERENCES campaigns
	                                 ON DELETE SET NULL,
	ADD COLUMN consent_required  boolean NOT NULL DEFAULT false,
	-- quiet hours as minutes after local midnight in time_zone
	ADD COLUMN quiet_from        integer,
	ADD COLUMN quiet_to          integer,
	ADD COLUMN time_zone         text,
	ADD COLUMN cost              numeric,   -- segments x the gateway's price
	-- a text to a lead is marked (committed) just before its request
	-- goes out; a node that dies then leaves its outcome unknown, and it
	-- is not sent again (never twice), but failed as unknown
	ADD COLUMN handed_at         timestamptz;

-- suppressed: the lead had no consent (STOP) when it was to go out;
-- cancelled: its campaign was cancelled.
ALTER TABLE sms DROP CONSTRAINT sms_status_check;
ALTER TABLE sms ADD CONSTRAINT sms_status_check CHECK (status IN
	('queued', 'sending', 'sent', 'delivered', 'failed', 'suppressed',
	 'cancelled'));

CREATE UNIQUE INDEX sms_idem ON sms (idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX sms_campaign ON sms (campaign_id, status)
	WHERE campaign_id IS NOT NULL;
CREATE INDEX sms_lead_queued ON sms (lead_id)
	WHERE status IN ('queued', 'sending') AND consent_required;

-- SMS campaigns (kind 'sms'): how far the audience has been queued (the
-- last lead id; filled_at once all of it is).
ALTER TABLE campaigns
	ADD COLUMN fill_cursor  bigint NOT NULL DEFAULT 0,
	ADD COLUMN filled_at    timestamptz;
