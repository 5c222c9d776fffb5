-- 003_routing: lead capture, scoring and the routing engine: who owns a
-- lead, the offers made to reps (each with its deadline: the database,
-- not a timer, is what makes an offer expire), the reps' routing state
-- (availability and stride pass), and the score history of each lead.

ALTER TABLE leads
	ADD COLUMN owner        text,           -- rep id, NULL = nobody
	ADD COLUMN team         text,           -- the team routing/holding it
	ADD COLUMN rule         text,           -- the rule that chose the team
	ADD COLUMN priority     integer NOT NULL DEFAULT 50,
	ADD COLUMN round        integer NOT NULL DEFAULT 0,
	ADD COLUMN route_at     timestamptz,    -- due for routing: a work item
	ADD COLUMN route_team   text,           -- the next routing goes here
	ADD COLUMN queue        text,           -- team whose queue holds it
	ADD COLUMN queued_at    timestamptz,
	ADD COLUMN assigned_at  timestamptz,
	ADD COLUMN status_at    timestamptz NOT NULL DEFAULT now();
-- new: captured, not (yet) routed (subscribers stay new); routing: being
-- routed or waiting in a queue; offered: an offer is open; assigned and
-- after: owned. recycled: sent back to routing.
ALTER TABLE leads ADD CONSTRAINT leads_status CHECK (status IN
	('new', 'routing', 'offered', 'assigned', 'contacted', 'qualified',
	 'won', 'lost', 'recycled'));
CREATE INDEX leads_route_due ON leads (route_at) WHERE route_at IS NOT NULL;
CREATE INDEX leads_owner ON leads (owner) WHERE owner IS NOT NULL;
CREATE INDEX leads_queue ON leads (queue, priority DESC, queued_at, id)
	WHERE queue IS NOT NULL;
-- the sweeper's candidates: in routing with nobody and nothing due
CREATE INDEX leads_unowned ON leads (id)
	WHERE owner IS NULL AND status IN ('routing', 'offered', 'recycled');

-- Reps: those of routing.conf (origin config, made at start and reload)
-- and those added through the API (origin api, their settings in
-- profile). profile also holds what a config rep changed of its own
-- (skills, territories, hours...): it overrides the file.
CREATE TABLE reps (
	num         bigserial UNIQUE,           -- in signed tokens
	id          text PRIMARY KEY,
	origin      text NOT NULL DEFAULT 'config'
	                CHECK (origin IN ('config', 'api')),
	profile     jsonb NOT NULL DEFAULT '{}',
	on_duty     boolean NOT NULL DEFAULT true,
	pass        double precision NOT NULL DEFAULT 0,
	stride      double precision NOT NULL DEFAULT 1,  -- 1/weight, in force
	away        boolean NOT NULL DEFAULT true,
	token_gen   integer NOT NULL DEFAULT 1, -- bump to revoke the rep's token
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- An offer of a lead to a rep: single (exclusive for its window) or
-- broadcast (to every eligible rep at once, the first accept wins).
CREATE TABLE offers (
	id           bigserial PRIMARY KEY,
	lead_id      bigint NOT NULL REFERENCES leads ON DELETE CASCADE,
	rep_id       text NOT NULL,
	team         text NOT NULL,
	rule         text,
	round        integer NOT NULL,
	kind         text NOT NULL CHECK (kind IN ('single', 'broadcast')),
	status       text NOT NULL DEFAULT 'pending' CHECK (status IN
	                 ('pending', 'accepted', 'rejected', 'expired',
	                  'withdrawn')),
	created_at   timestamptz NOT NULL DEFAULT now(),
	deadline     timestamptz NOT NULL,
	answered_at  timestamptz
);
CREATE INDEX offers_due ON offers (deadline) WHERE status = 'pending';
CREATE INDEX offers_lead ON offers (lead_id, round);
CREATE INDEX offers_rep ON offers (rep_id) WHERE status = 'pending';
CREATE INDEX offers_created ON offers (created_at);

CREATE TABLE score_history (
	id         bigserial PRIMARY KEY,
	lead_id    bigint NOT NULL REFERENCES leads ON DELETE CASCADE,
	kind       text NOT NULL CHECK (kind IN ('profile', 'behavior', 'manual')),
	rule       text,
	points     integer NOT NULL,
	reason     text NOT NULL,
	earned_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX score_history_lead ON score_history (lead_id, earned_at);

CREATE INDEX events_type_time ON events (type, created_at);

-- The one-off notification call (sender.c): queue notification `name`
-- to several people at once, durable like any delivery. A function so
-- that the router queues offers in the same transaction as it makes them.
CREATE FUNCTION leadcast_notify(name text, leads bigint[], emails text[],
    vars jsonb[]) RETURNS bigint LANGUAGE sql AS $$
	WITH c AS (INSERT INTO campaigns AS c (name, kind, status, started_at)
	           VALUES ('notify/' || name, 'notification', 'running', now())
	           ON CONFLICT (name) DO UPDATE SET status = 'running'
	           RETURNING id),
	ins AS (INSERT INTO deliveries (campaign_id, lead_id, email, vars)
	        SELECT c.id, x.lead, x.email, x.vars FROM c,
	        unnest(leads, emails, vars) AS x(lead, email, vars)
	        RETURNING 1)
	SELECT count(*) FROM ins
$$;

-- A lead as capture takes it: the standard fields and the custom ones.
CREATE TYPE leadcast_lead AS (email text, phone text, first_name text,
	last_name text, company text, title text, country text, region text,
	city text, postal_code text, product text, budget numeric,
	timeframe text, authority text, company_size integer, industry text,
	language text, source text, campaign text, time_zone text,
	fields jsonb);

-- Capture: insert a lead or merge it into the one with the same email (or,
-- failing that, phone). Merging fills in and updates what the new data
-- has, keeps the first source and campaign, and adds custom fields.
-- p_history: the score rows of a new lead ([{kind, rule, points,
-- reason}]); p_score its score; p_route: whether a new lead enters
-- routing; p_event: an event to record ({type, ...}) or NULL.
-- Returns the lead, whether it was created, and (merged leads) its score
-- history, for the caller to score the merged lead.
CREATE FUNCTION leadcast_capture(p jsonb, p_score integer,
    p_history jsonb, p_route boolean, p_event jsonb,
    OUT lead jsonb, OUT created boolean, OUT history jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	lid bigint;
	r leads;
	x leadcast_lead := jsonb_populate_record(NULL::leadcast_lead, p);
BEGIN
	-- serialize captures of the same person (on every node)
	IF p->>'email' IS NOT NULL THEN
		PERFORM pg_advisory_xact_lock(hashtextextended(
		    'lead:' || lower(p->>'email'), 0));
	END IF;
	IF p->>'phone' IS NOT NULL THEN
		PERFORM pg_advisory_xact_lock(hashtextextended(
		    'lead:' || (p->>'phone'), 0));
	END IF;
	SELECT id INTO lid FROM leads
	 WHERE (p->>'email' IS NOT NULL AND lower(email) = lower(p->>'email'))
	    OR (p->>'phone' IS NOT NULL AND phone = p->>'phone')
	 ORDER BY (p->>'email' IS NOT NULL AND lower(email) =
	           lower(p->>'email')) DESC, id
	 LIMIT 1 FOR UPDATE;
	IF lid IS NULL THEN
		INSERT INTO leads AS l (email, phone, first_name, last_name,
		    company, title, country, region, city, postal_code, product,
		    budget, timeframe, authority, company_size, industry,
		    language, source, campaign, time_zone, fields, score,
		    status, route_at, route_team)
		VALUES (x.email, x.phone, x.first_name, x.last_name, x.company,
		    x.title, x.country, x.region, x.city, x.postal_code,
		    x.product, x.budget, x.timeframe, x.authority,
		    x.company_size, x.industry, x.language, x.source,
		    x.campaign, x.time_zone, coalesce(x.fields, '{}'), p_score,
		    CASE WHEN p_route THEN 'routing' ELSE 'new' END,
		    CASE WHEN p_route THEN now() END, NULL)
		RETURNING * INTO r;
		INSERT INTO score_history (lead_id, kind, rule, points, reason)
		SELECT r.id, h.kind, h.rule, h.points, h.reason
		  FROM jsonb_to_recordset(coalesce(p_history, '[]')) AS
		       h(kind text, rule text, points integer, reason text);
		INSERT INTO events (type, lead_id, data)
		VALUES ('captured', r.id, jsonb_build_object('source', r.source));
		created := true;
		history := '[]';
	ELSE
		UPDATE leads AS l SET
		    email = coalesce(l.email, x.email),
		    phone = coalesce(x.phone, l.phone),
		    first_name = coalesce(x.first_name, l.first_name),
		    last_name = coalesce(x.last_name, l.last_name),
		    company = coalesce(x.company, l.company),
		    title = coalesce(x.title, l.title),
		    country = coalesce(x.country, l.country),
		    region = coalesce(x.region, l.region),
		    city = coalesce(x.city, l.city),
		    postal_code = coalesce(x.postal_code, l.postal_code),
		    product = coalesce(x.product, l.product),
		    budget = coalesce(x.budget, l.budget),
		    timeframe = coalesce(x.timeframe, l.timeframe),
		    authority = coalesce(x.authority, l.authority),
		    company_size = coalesce(x.company_size, l.company_size),
		    industry = coalesce(x.industry, l.industry),
		    language = coalesce(x.language, l.language),
		    source = coalesce(l.source, x.source),
		    campaign = coalesce(l.campaign, x.campaign),
		    time_zone = coalesce(x.time_zone, l.time_zone),
		    fields = l.fields || coalesce(x.fields, '{}'),
		    updated_at = now()
		WHERE l.id = lid
		RETURNING l.* INTO r;
		INSERT INTO events (type, lead_id, data)
		VALUES ('merged', r.id, p);
		created := false;
		SELECT coalesce(jsonb_agg(jsonb_build_object('kind', h.kind,
		    'rule', h.rule, 'points', h.points, 'earned_at',
		    extract(epoch FROM h.earned_at)::bigint)), '[]')
		  INTO history FROM score_history h
		 WHERE h.lead_id = r.id;
	END IF;
	IF p_event IS NOT NULL THEN
		INSERT INTO events (type, lead_id, data)
		VALUES (p_event->>'type', r.id, p_event - 'type');
	END IF;
	lead := to_jsonb(r);
END
$$;
