-- 011_drips: drip (nurture) sequences. Each version of a definition is
-- kept (its file's text), so that enrollments finish on the version they
-- started; an enrollment is one lead in one drip, with its next step and
-- when it is due (a work item claimed with SKIP LOCKED and a lease, like
-- deliveries). drip_log holds one row per step run: its primary key
-- (enrollment, seq) is the idempotency key of what the step did, written
-- in the same statement that advances the enrollment, so a step runs once
-- per enrollment across crashes and daemons. Events that may start or end
-- a drip are copied into drip_inbox by triggers, in the transaction that
-- records them, so that none is missed.

CREATE TABLE drip_versions (
	drip        text NOT NULL,
	version     integer NOT NULL,
	hash        text NOT NULL,
	source      text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (drip, version)
);

-- One row per drip: paused drips run no steps and take no new leads.
CREATE TABLE drips (
	name        text PRIMARY KEY,
	paused      boolean NOT NULL DEFAULT false,
	updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE drip_enrollments (
	id           bigserial PRIMARY KEY,
	drip         text NOT NULL,
	version      integer NOT NULL,
	lead_id      bigint NOT NULL REFERENCES leads ON DELETE CASCADE,
	status       text NOT NULL CHECK (status IN
	                 ('active', 'paused', 'done', 'exited', 'refused')),
	step         text,                      -- the next to run
	seq          integer NOT NULL DEFAULT 0, -- steps run so far
	next_run_at  timestamptz,
	lease_until  timestamptz,
	node_id      bigint,
	trigger      text,                      -- what enrolled the lead
	reason       text,                      -- why it ended or was refused
	goal         text,                      -- the goal that ended it
	entered_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz
);
CREATE UNIQUE INDEX drip_enrollments_current ON drip_enrollments
	(drip, lead_id) WHERE status IN ('active', 'paused');
CREATE INDEX drip_enrollments_due ON drip_enrollments (next_run_at)
	WHERE status = 'active';
CREATE INDEX drip_enrollments_lead ON drip_enrollments (lead_id);
CREATE INDEX drip_enrollments_drip ON drip_enrollments (drip, status);

CREATE TABLE drip_log (
	enrollment_id  bigint NOT NULL REFERENCES drip_enrollments
	                   ON DELETE CASCADE,
	seq            integer NOT NULL,
	drip           text NOT NULL,
	version        integer NOT NULL,
	step           text NOT NULL,
	kind           text NOT NULL,
	outcome        text NOT NULL DEFAULT 'done',  -- done, skipped
	detail         text,
	created_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (enrollment_id, seq)
);
CREATE INDEX drip_log_step ON drip_log (drip, step);

-- A drip email is a delivery of the step's campaign ("drip/NAME/V/STEP")
-- tied to its enrollment and step run: at most one per step run.
ALTER TABLE deliveries
	ADD COLUMN drip_enrollment  bigint,
	ADD COLUMN drip_seq         integer;
CREATE UNIQUE INDEX deliveries_drip ON deliveries (drip_enrollment, drip_seq)
	WHERE drip_enrollment IS NOT NULL;
-- A drip text is an sms row with the idempotency key
-- 'drip:ENROLLMENT:SEQ' (sms_to_lead, 008_sms_leads).

-- Event types that start drips (the daemons keep it to what the loaded
-- definitions' triggers use).
CREATE TABLE drip_watch (
	type  text PRIMARY KEY
);

CREATE TABLE drip_inbox (
	id           bigserial PRIMARY KEY,
	lead_id      bigint NOT NULL,
	type         text NOT NULL,
	data         jsonb,
	created_at   timestamptz NOT NULL DEFAULT now(),
	lease_until  timestamptz,
	node_id      bigint
);

-- Events that may enroll a lead (their type watched) or end an enrollment
-- (the goals: for leads in a drip only).
CREATE FUNCTION leadcast_drip_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.lead_id IS NULL THEN
		RETURN NULL;
	END IF;
	IF EXISTS (SELECT 1 FROM drip_watch w WHERE w.type = NEW.type) OR
	    (NEW.type IN ('click', 'unsubscribe', 'complaint', 'bounce',
	     'reply', 'replied', 'sms_reply', 'accepted', 'claimed', 'status')
	     AND EXISTS (SELECT 1 FROM drip_enrollments e WHERE
	     e.lead_id = NEW.lead_id AND e.status IN ('active', 'paused'))) THEN
		INSERT INTO drip_inbox (lead_id, type, data)
		VALUES (NEW.lead_id, NEW.type, coalesce(NEW.data, '{}') ||
		    CASE WHEN NEW.link_id IS NOT NULL THEN jsonb_build_object(
		    'url', (SELECT url FROM campaign_links WHERE id = NEW.link_id))
		    ELSE '{}' END || CASE WHEN NEW.class IS NOT NULL THEN
		    jsonb_build_object('class', NEW.class) ELSE '{}' END);
		PERFORM pg_notify('leadcast_drip', 'inbox');
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER events_drip AFTER INSERT ON events
	FOR EACH ROW EXECUTE FUNCTION leadcast_drip_event();

-- Joining a list (confirmed) and a score change are events for drips too.
CREATE FUNCTION leadcast_drip_subscribed() RETURNS trigger LANGUAGE plpgsql
AS $$
BEGIN
	IF NEW.status = 'confirmed' AND (TG_OP = 'INSERT' OR
	    OLD.status <> 'confirmed') AND EXISTS (SELECT 1 FROM drip_watch
	    WHERE type = 'subscribed') THEN
		INSERT INTO events (type, lead_id, data)
		SELECT 'subscribed', NEW.lead_id, jsonb_build_object('list', l.name)
		  FROM lists l WHERE l.id = NEW.list_id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER subscriptions_drip AFTER INSERT OR UPDATE OF status
	ON subscriptions FOR EACH ROW EXECUTE FUNCTION leadcast_drip_subscribed();

CREATE FUNCTION leadcast_drip_score() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM drip_watch WHERE type = 'score') THEN
		INSERT INTO drip_inbox (lead_id, type, data)
		VALUES (NEW.id, 'score', jsonb_build_object('from', OLD.score,
		    'to', NEW.score));
		PERFORM pg_notify('leadcast_drip', 'inbox');
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER leads_drip_score AFTER UPDATE OF score ON leads
	FOR EACH ROW WHEN (OLD.score IS DISTINCT FROM NEW.score)
	EXECUTE FUNCTION leadcast_drip_score();

-- Merging jsonb objects over rows (set steps of one batch on one lead).
CREATE AGGREGATE leadcast_jsonb_merge(jsonb) (
	SFUNC = jsonb_concat,
	STYPE = jsonb,
	INITCOND = '{}'
);

-- The version of drip p_drip whose text hashes to p_hash: the latest if
-- it is that text, else a new one (serialized per drip across nodes).
CREATE FUNCTION leadcast_drip_version(p_drip text, p_hash text,
    p_source text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	v integer;
	h text;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('drip:' || p_drip, 0));
	INSERT INTO drips (name) VALUES (p_drip) ON CONFLICT DO NOTHING;
	SELECT version, hash INTO v, h FROM drip_versions WHERE drip = p_drip
	 ORDER BY version DESC LIMIT 1;
	IF v IS NOT NULL AND h = p_hash THEN
		RETURN v;
	END IF;
	v := coalesce(v, 0) + 1;
	INSERT INTO drip_versions (drip, version, hash, source)
	VALUES (p_drip, v, p_hash, p_source);
	PERFORM pg_notify('leadcast_drip', 'versions');
	RETURN v;
END
$$;
