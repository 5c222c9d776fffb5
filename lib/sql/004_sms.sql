-- 004_sms: text messages. The sms table is the durable queue of messages
-- to send (claimed with SKIP LOCKED and a lease, like deliveries) and the
-- record of what became of each (the gateway's answer, its delivery
-- report); sms_in records every message received. Offers get the code a
-- rep texts back ("Y 4821"); leads get their consent to SMS.

-- NULL: never asked; true: consented (START, a form's box); false: STOP.
ALTER TABLE leads
	ADD COLUMN sms_consent     boolean,
	ADD COLUMN sms_consent_at  timestamptz;

-- 4 digits, unique among the pending offers of the rep (see
-- leadcast_sms_queue); set when the offer's SMS is queued.
ALTER TABLE offers ADD COLUMN code text;
CREATE INDEX offers_rep_code ON offers (rep_id, code) WHERE code IS NOT NULL;

CREATE TABLE sms (
	id               bigserial PRIMARY KEY,
	gateway          text NOT NULL,         -- the one in use (fail-over
	                                        -- changes it)
	first_gateway    text NOT NULL,
	to_number        text NOT NULL CHECK (to_number ~ '^\+[1-9][0-9]{5,14}$'),
	body             text NOT NULL,
	encoding         text NOT NULL CHECK (encoding IN ('gsm7', 'ucs2')),
	segments         integer NOT NULL CHECK (segments BETWEEN 1 AND 10),
	kind             text NOT NULL DEFAULT 'message',  -- offer, reply, ...
	status           text NOT NULL DEFAULT 'queued' CHECK (status IN
	                     ('queued', 'sending', 'sent', 'delivered',
	                      'failed')),
	attempts         integer NOT NULL DEFAULT 0,  -- on the current gateway
	next_attempt_at  timestamptz NOT NULL DEFAULT now(),
	lease_until      timestamptz,
	node_id          bigint,
	gateway_msgid    text,                  -- the gateway's id
	dlr_status       text,                  -- the last report, as sent
	error            text,                  -- the last failure
	offer_id         bigint REFERENCES offers ON DELETE SET NULL,
	lead_id          bigint REFERENCES leads ON DELETE SET NULL,
	rep_id           text,
	-- the offer email to queue should this fail ({"email", "vars"}), for
	-- reps told by SMS only; fallback_at once it was queued
	fallback         jsonb,
	fallback_at      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT now(),
	sent_at          timestamptz,
	delivered_at     timestamptz,
	updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_due ON sms (next_attempt_at, id)
	WHERE status IN ('queued', 'sending');
CREATE INDEX sms_msgid ON sms (gateway, gateway_msgid)
	WHERE gateway_msgid IS NOT NULL;
CREATE INDEX sms_offer ON sms (offer_id) WHERE offer_id IS NOT NULL;
CREATE INDEX sms_created ON sms (created_at);

CREATE TABLE sms_in (
	id           bigserial PRIMARY KEY,
	gateway      text NOT NULL,
	from_number  text NOT NULL,
	to_number    text,
	body         text NOT NULL,
	sender       text NOT NULL CHECK (sender IN ('rep', 'lead', 'unknown')),
	rep_id       text,
	lead_id      bigint REFERENCES leads ON DELETE SET NULL,
	command      text,                      -- what it was taken as
	created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_in_created ON sms_in (created_at);

-- Queue messages: one row per element of the arrays. A body of an offer
-- (offer_id set) holds the placeholder §§§§ where the offer's code goes:
-- the offer gets a code unless it has one, 4 digits none of the rep's
-- other pending offers has (serialized per rep). Wakes the senders.
CREATE FUNCTION leadcast_sms_queue(p_gateway text[], p_to text[],
    p_body text[], p_encoding text[], p_segments integer[], p_kind text[],
    p_offer bigint[], p_lead bigint[], p_rep text[], p_fallback jsonb[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	x record;
	c text;
	n integer := 0;
	tries integer;
BEGIN
	FOR x IN SELECT * FROM unnest(p_gateway, p_to, p_body, p_encoding,
	    p_segments, p_kind, p_offer, p_lead, p_rep, p_fallback) AS
	    t(gateway, to_number, body, encoding, segments, kind, offer_id,
	      lead_id, rep_id, fallback)
	LOOP
		c := NULL;
		IF x.offer_id IS NOT NULL AND position('§§§§' IN x.body) > 0 THEN
			SELECT code INTO c FROM offers WHERE id = x.offer_id;
			IF c IS NULL THEN
				PERFORM pg_advisory_xact_lock(hashtextextended(
				    'smscode:' || x.rep_id, 0));
				tries := 0;
				LOOP
					c := (1000 + floor(random() * 9000))::int::text;
					tries := tries + 1;
					EXIT WHEN tries > 200 OR NOT EXISTS (SELECT 1
					    FROM offers WHERE rep_id = x.rep_id AND
					    status = 'pending' AND code = c);
				END LOOP;
				UPDATE offers SET code = c WHERE id = x.offer_id;
			END IF;
			x.body := replace(x.body, '§§§§', c);
		END IF;
		INSERT INTO sms (gateway, first_gateway, to_number, body,
		    encoding, segments, kind, offer_id, lead_id, rep_id, fallback)
		VALUES (x.gateway, x.gateway, x.to_number, x.body, x.encoding,
		    x.segments, coalesce(x.kind, 'message'), x.offer_id,
		    x.lead_id, x.rep_id, x.fallback);
		n := n + 1;
	END LOOP;
	IF n > 0 THEN
		PERFORM pg_notify('leadcast_sms', 'queued');
	END IF;
	RETURN n;
END
$$;
