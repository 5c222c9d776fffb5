-- 002_messaging: leads (who are also subscribers), lists, suppressions,
-- campaigns with their link tables, one delivery row per recipient, and
-- the events that come back (opens, clicks, unsubscribes, bounces).

-- Shared secrets every node must agree on (the URL-token key).
CREATE TABLE settings (
	name   text PRIMARY KEY,
	value  text NOT NULL
);

CREATE TABLE leads (
	id            bigserial PRIMARY KEY,
	email         text,
	phone         text,
	first_name    text,
	last_name     text,
	company       text,
	title         text,
	country       text,
	region        text,
	city          text,
	postal_code   text,
	product       text,
	budget        numeric,
	timeframe     text,
	authority     text,
	company_size  integer,
	industry      text,
	language      text,
	source        text,
	campaign      text,
	time_zone     text,
	fields        jsonb NOT NULL DEFAULT '{}',
	score         integer NOT NULL DEFAULT 0,
	status        text NOT NULL DEFAULT 'new',
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX leads_email ON leads (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX leads_phone ON leads (phone) WHERE phone IS NOT NULL;

-- Lists are declared in the configuration; rows are made at start.
CREATE TABLE lists (
	id            serial PRIMARY KEY,
	name          text NOT NULL UNIQUE,
	created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
	list_id          integer NOT NULL REFERENCES lists ON DELETE CASCADE,
	lead_id          bigint NOT NULL REFERENCES leads ON DELETE CASCADE,
	status           text NOT NULL CHECK (status IN
	                     ('unconfirmed', 'confirmed', 'unsubscribed')),
	created_at       timestamptz NOT NULL DEFAULT now(),
	confirmed_at     timestamptz,
	unsubscribed_at  timestamptz,
	PRIMARY KEY (list_id, lead_id)
);
CREATE INDEX subscriptions_lead ON subscriptions (lead_id);

-- Addresses never to send to: everywhere (list_id NULL) or on one list.
CREATE TABLE suppressions (
	id          bigserial PRIMARY KEY,
	email       text NOT NULL,
	list_id     integer REFERENCES lists ON DELETE CASCADE,
	reason      text NOT NULL CHECK (reason IN
	                ('hard_bounce', 'soft_bounce', 'complaint',
	                 'unsubscribe', 'manual')),
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX suppressions_addr
	ON suppressions (lower(email), coalesce(list_id, 0));

CREATE TABLE campaigns (
	id            serial PRIMARY KEY,
	name          text NOT NULL UNIQUE,
	kind          text NOT NULL DEFAULT 'newsletter',
	status        text NOT NULL DEFAULT 'draft' CHECK (status IN
	                  ('draft', 'scheduled', 'running', 'paused',
	                   'cancelled', 'done')),
	list_ids      integer[] NOT NULL DEFAULT '{}',
	scheduled_at  timestamptz,
	started_at    timestamptz,
	finished_at   timestamptz,
	created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaign_links (
	id           bigserial PRIMARY KEY,
	campaign_id  integer NOT NULL REFERENCES campaigns ON DELETE CASCADE,
	url          text NOT NULL,
	tag          text NOT NULL DEFAULT '',
	UNIQUE (campaign_id, url, tag)
);

-- One row per recipient of a campaign: the unit of work, claimed with
-- FOR UPDATE SKIP LOCKED and a lease; a lapsed lease is claimable again.
CREATE TABLE deliveries (
	id               bigserial PRIMARY KEY,
	campaign_id      integer NOT NULL REFERENCES campaigns ON DELETE CASCADE,
	lead_id          bigint REFERENCES leads ON DELETE SET NULL,
	email            text NOT NULL,
	status           text NOT NULL DEFAULT 'queued' CHECK (status IN
	                     ('queued', 'sending', 'sent', 'deferred', 'failed',
	                      'bounced', 'suppressed', 'cancelled')),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT now(),
	lease_until      timestamptz,
	node_id          bigint,
	message_id       text,
	smtp_code        integer,
	smtp_status      text,
	smtp_message     text,
	vars             jsonb,
	created_at       timestamptz NOT NULL DEFAULT now(),
	sent_at          timestamptz,
	updated_at       timestamptz NOT NULL DEFAULT now()
);
-- A newsletter reaches a lead once. Notifications and test copies carry
-- vars (their template data) and may repeat.
CREATE UNIQUE INDEX deliveries_once ON deliveries (campaign_id, lead_id)
	WHERE vars IS NULL;
-- Claims walk this in id order from a cursor (see sender.c), so the
-- entries of rows already sent, dead until vacuum, are not walked again.
CREATE INDEX deliveries_due ON deliveries (id)
	WHERE status IN ('queued', 'deferred', 'sending');
CREATE INDEX deliveries_campaign ON deliveries (campaign_id, status);
CREATE INDEX deliveries_message_id ON deliveries (message_id)
	WHERE message_id IS NOT NULL;

CREATE TABLE events (
	id           bigserial PRIMARY KEY,
	type         text NOT NULL,
	lead_id      bigint REFERENCES leads ON DELETE CASCADE,
	delivery_id  bigint REFERENCES deliveries ON DELETE SET NULL,
	campaign_id  integer REFERENCES campaigns ON DELETE SET NULL,
	link_id      bigint REFERENCES campaign_links ON DELETE SET NULL,
	ip           inet,
	user_agent   text,
	data         jsonb,
	created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_lead ON events (lead_id, created_at);
CREATE INDEX events_campaign ON events (campaign_id, type);
