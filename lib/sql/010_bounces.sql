-- 010_bounces: bounces, complaints and auto-replies, from the bounce
-- mailboxes (daemon/bounces.c) and from the SMTP transport's answers
-- (daemon/sender.c), recorded the same way by leadcast_bounce().
--
-- mailbox_messages is every message the reader has looked at, keyed by
-- mailbox and UID, with the report's own key (its Message-ID, else a
-- digest of it): a message is recorded once, whatever crashes or restarts
-- come between recording it and deleting it, and a copy of a report that
-- reached two mailboxes counts once. bounces is one row per recipient of
-- a report (and one per report that could not be read), the source of
-- `leadcast bounces review` and of the soft-bounce window.

ALTER TABLE leads
	ADD COLUMN hard_bounces    integer NOT NULL DEFAULT 0,
	ADD COLUMN soft_bounces    integer NOT NULL DEFAULT 0,
	ADD COLUMN complaints      integer NOT NULL DEFAULT 0,
	ADD COLUMN last_bounce_at  timestamptz;

CREATE TABLE mailbox_messages (
	mailbox     text NOT NULL,
	uid         text NOT NULL,      -- IMAP "UIDVALIDITY:UID", POP3 UIDL
	msg_key     text NOT NULL,      -- "<message-id>" or "sha256:HEX"
	outcome     text NOT NULL CHECK (outcome IN
	                ('recorded', 'duplicate', 'review', 'ignored')),
	created_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (mailbox, uid)
);
CREATE INDEX mailbox_messages_key ON mailbox_messages (msg_key);

CREATE TABLE bounces (
	id            bigserial PRIMARY KEY,
	source        text NOT NULL CHECK (source IN ('mailbox', 'smtp')),
	mailbox       text,
	msg_key       text,
	kind          text NOT NULL,    -- dsn, text, arf, ses, autoreply,
	                                -- none (not understood), smtp
	format        text,             -- rfc3464, arf, exim, postfix, ...
	class         text NOT NULL CHECK (class IN ('hard', 'soft',
	                  'complaint', 'auto_reply', 'delivered', 'unknown')),
	reason        text,
	email         text,
	status        text,             -- RFC 3463 enhanced code
	smtp_code     integer,
	diagnostic    text,
	remote_mta    text,
	matched_by    text,             -- verp, message_id, references,
	                                -- header, recipient; NULL: unmatched
	delivery_id   bigint REFERENCES deliveries ON DELETE SET NULL,
	lead_id       bigint REFERENCES leads ON DELETE SET NULL,
	campaign_id   integer REFERENCES campaigns ON DELETE SET NULL,
	counted       boolean NOT NULL DEFAULT false,  -- in the soft window
	review        boolean NOT NULL DEFAULT false,  -- unknown or unmatched
	report_from   text,
	report_subject text,
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bounces_soft ON bounces (lower(email), created_at)
	WHERE class = 'soft' AND counted;
CREATE INDEX bounces_review ON bounces (created_at) WHERE review;
CREATE INDEX bounces_created ON bounces (created_at);
CREATE INDEX deliveries_email ON deliveries (lower(email), id);

-- The delivery a report is about: the first of the VERP token's delivery,
-- the original's Message-ID, one of its References, the delivery of its
-- List-Unsubscribe token, its Feedback-ID's campaign with the recipient,
-- and the latest delivery to the recipient (within 60 days). m is the
-- "match" object daemon/bounces.c builds.
CREATE FUNCTION leadcast_bounce_match(m jsonb, p_email text,
    OUT delivery_id bigint, OUT matched_by text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	SELECT d.id, 'verp' INTO delivery_id, matched_by FROM deliveries d
	WHERE d.id = (m->>'verp')::bigint;
	IF FOUND THEN RETURN; END IF;
	IF coalesce(m->>'message_id', '') <> '' THEN
		SELECT d.id, 'message_id' INTO delivery_id, matched_by
		FROM deliveries d WHERE d.message_id = m->>'message_id'
		ORDER BY d.id DESC LIMIT 1;
		IF FOUND THEN RETURN; END IF;
	END IF;
	IF jsonb_typeof(m->'references') = 'array' THEN
		SELECT d.id, 'references' INTO delivery_id, matched_by
		FROM deliveries d WHERE d.message_id IN (SELECT
		    jsonb_array_elements_text(m->'references'))
		ORDER BY d.id DESC LIMIT 1;
		IF FOUND THEN RETURN; END IF;
	END IF;
	SELECT d.id, 'header' INTO delivery_id, matched_by FROM deliveries d
	WHERE d.id = (m->>'unsubscribe')::bigint;
	IF FOUND THEN RETURN; END IF;
	IF p_email IS NOT NULL AND m->>'campaign' IS NOT NULL THEN
		SELECT d.id, 'header' INTO delivery_id, matched_by
		FROM deliveries d WHERE d.campaign_id = (m->>'campaign')::integer
		AND lower(d.email) = lower(p_email) ORDER BY d.id DESC LIMIT 1;
		IF FOUND THEN RETURN; END IF;
	END IF;
	IF p_email IS NOT NULL THEN
		SELECT d.id, 'recipient' INTO delivery_id, matched_by
		FROM deliveries d WHERE lower(d.email) = lower(p_email)
		AND d.status IN ('sent', 'bounced', 'failed')
		AND d.created_at > now() - interval '60 days'
		ORDER BY d.id DESC LIMIT 1;
		IF FOUND THEN RETURN; END IF;
	END IF;
	delivery_id := NULL;
	matched_by := NULL;
END $$;

-- Record one recipient of a report and apply its effects. r: {"class",
-- "reason", "email", "status", "code", "diagnostic", "remote_mta"}; m:
-- the match object (mailbox reports) or NULL with p_delivery (the SMTP
-- transport's answer about that delivery). Effects, for a matched
-- recipient: hard and soft mark the delivery bounced (mailbox reports),
-- count on the lead and make a 'bounce' event; hard suppresses at once,
-- soft once p_soft_limit counted soft bounces fall within p_soft_window;
-- a complaint unsubscribes the lead from every list, suppresses the
-- address everywhere and makes a 'complaint' event; an auto-reply makes a
-- 'reply' event. An unmatched or unknown recipient only waits for review.
-- Returns true when it needs review.
CREATE FUNCTION leadcast_bounce(p_source text, p_mailbox text, p_key text,
    p_kind text, p_format text, p_from text, p_subject text, r jsonb,
    m jsonb, p_delivery bigint, p_soft_limit integer,
    p_soft_window interval) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_cls text := r->>'class';
	v_reason text := nullif(r->>'reason', '');
	v_email text := nullif(r->>'email', '');
	v_del bigint;
	v_by text;
	d record;
	v_review boolean;
	v_counted boolean := false;
	v_hard boolean := v_cls = 'hard';
BEGIN
	IF p_delivery IS NOT NULL THEN
		v_del := p_delivery;
		v_by := 'smtp';
	ELSIF m IS NOT NULL AND v_cls <> 'unknown' THEN
		SELECT x.delivery_id, x.matched_by INTO v_del, v_by
		FROM leadcast_bounce_match(m, v_email) x;
	END IF;
	SELECT dd.id, dd.lead_id, dd.campaign_id, dd.email INTO d
	FROM deliveries dd WHERE dd.id = v_del;
	IF NOT FOUND THEN
		v_del := NULL;
		v_by := NULL;
	END IF;
	v_email := coalesce(v_email, d.email);
	v_review := v_cls = 'unknown' OR v_del IS NULL;
	IF v_cls = 'delivered' THEN
		RETURN false;
	END IF;
	v_counted := NOT v_review AND v_cls = 'soft' AND
	    coalesce(v_reason, '') <> 'delayed';
	INSERT INTO bounces (source, mailbox, msg_key, kind, format, class,
	    reason, email, status, smtp_code, diagnostic, remote_mta,
	    matched_by, delivery_id, lead_id, campaign_id, counted, review,
	    report_from, report_subject)
	VALUES (p_source, p_mailbox, p_key, p_kind, nullif(p_format, ''),
	    v_cls, v_reason, v_email, nullif(r->>'status', ''),
	    nullif((r->>'code')::integer, 0), nullif(r->>'diagnostic', ''),
	    nullif(r->>'remote_mta', ''), CASE WHEN v_by = 'smtp' THEN NULL
	    ELSE v_by END, v_del, d.lead_id, d.campaign_id, v_counted,
	    v_review, nullif(p_from, ''), nullif(p_subject, ''));
	IF v_review AND (v_del IS NULL OR v_by <> 'smtp') THEN
		RETURN true;
	END IF;
	IF v_cls = 'unknown' THEN
		-- an SMTP failure nothing explains: a bounce in the campaign's
		-- report, counted nowhere
		INSERT INTO events (type, lead_id, delivery_id, campaign_id, data)
		VALUES ('bounce', d.lead_id, v_del, d.campaign_id,
		    jsonb_build_object('class', v_cls, 'reason', v_reason,
		    'hard', false, 'status', nullif(r->>'status', ''), 'code',
		    nullif((r->>'code')::integer, 0), 'message',
		    left(r->>'diagnostic', 1000), 'stage', 'smtp'));
		RETURN true;
	END IF;
	IF v_hard OR v_counted THEN
		IF p_source = 'mailbox' THEN
			UPDATE deliveries SET status = 'bounced',
			    smtp_code = nullif((r->>'code')::integer, 0),
			    smtp_status = nullif(r->>'status', ''),
			    smtp_message = left(r->>'diagnostic', 1000),
			    updated_at = now()
			WHERE id = v_del AND status NOT IN ('queued', 'sending',
			    'deferred');
		END IF;
		UPDATE leads SET hard_bounces = hard_bounces + v_hard::integer,
		    soft_bounces = soft_bounces + (NOT v_hard)::integer,
		    last_bounce_at = now()
		WHERE id = d.lead_id;
		INSERT INTO events (type, lead_id, delivery_id, campaign_id, data)
		VALUES ('bounce', d.lead_id, v_del, d.campaign_id,
		    jsonb_build_object('class', v_cls, 'reason', v_reason,
		    'hard', v_hard, 'status', nullif(r->>'status', ''), 'code',
		    nullif((r->>'code')::integer, 0), 'message',
		    left(r->>'diagnostic', 1000), 'stage', CASE WHEN
		    p_source = 'smtp' THEN 'smtp' ELSE 'report' END, 'format',
		    nullif(p_format, '')));
		IF v_hard THEN
			INSERT INTO suppressions (email, reason)
			VALUES (v_email, 'hard_bounce')
			ON CONFLICT (lower(email), coalesce(list_id, 0)) DO NOTHING;
		ELSIF p_soft_limit > 0 AND (SELECT count(*) FROM bounces b
		    WHERE lower(b.email) = lower(v_email) AND b.class = 'soft'
		    AND b.counted AND b.created_at > now() - p_soft_window)
		    >= p_soft_limit THEN
			INSERT INTO suppressions (email, reason)
			VALUES (v_email, 'soft_bounce')
			ON CONFLICT (lower(email), coalesce(list_id, 0)) DO NOTHING;
		END IF;
	ELSIF v_cls = 'complaint' THEN
		UPDATE subscriptions SET status = 'unsubscribed',
		    unsubscribed_at = now()
		WHERE lead_id = d.lead_id AND status <> 'unsubscribed';
		INSERT INTO suppressions (email, reason)
		VALUES (v_email, 'complaint')
		ON CONFLICT (lower(email), coalesce(list_id, 0)) DO UPDATE
		SET reason = 'complaint';
		UPDATE leads SET complaints = complaints + 1 WHERE id = d.lead_id;
		INSERT INTO events (type, lead_id, delivery_id, campaign_id, data)
		VALUES ('complaint', d.lead_id, v_del, d.campaign_id,
		    jsonb_build_object('feedback_type', nullif(r->>'reason', ''),
		    'format', nullif(p_format, '')));
	ELSIF v_cls = 'auto_reply' THEN
		INSERT INTO events (type, lead_id, delivery_id, campaign_id, data)
		VALUES ('reply', d.lead_id, v_del, d.campaign_id,
		    jsonb_build_object('auto', true, 'from', nullif(p_from, ''),
		    'subject', nullif(p_subject, '')));
	END IF;
	RETURN false;
END $$;

-- One message of a mailbox: recorded once. rep: {"kind", "format", "from",
-- "subject", "match": {...}, "recipients": [r, ...]}. Returns what became
-- of it: recorded, review (kept for a person), ignored (not a report:
-- left alone), duplicate (the same report seen before elsewhere); for a
-- message recorded before (a crash between recording and deleting), the
-- outcome recorded then.
CREATE FUNCTION leadcast_bounce_message(p_mailbox text, p_uid text,
    p_key text, rep jsonb, p_soft_limit integer, p_soft_window interval)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v_out text := 'recorded';
	v_n integer := 0;
	r jsonb;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('bounce:' || p_key));
	INSERT INTO mailbox_messages (mailbox, uid, msg_key, outcome)
	VALUES (p_mailbox, p_uid, p_key, 'recorded')
	ON CONFLICT (mailbox, uid) DO NOTHING;
	IF NOT FOUND THEN
		RETURN (SELECT outcome FROM mailbox_messages
		    WHERE mailbox = p_mailbox AND uid = p_uid);
	END IF;
	IF EXISTS (SELECT 1 FROM mailbox_messages WHERE msg_key = p_key
	    AND (mailbox, uid) <> (p_mailbox, p_uid)
	    AND outcome IN ('recorded', 'review', 'duplicate')) THEN
		v_out := 'duplicate';
	ELSIF rep->>'kind' = 'none' THEN
		v_out := 'ignored';
	ELSE
		FOR r IN SELECT * FROM jsonb_array_elements(rep->'recipients')
		LOOP
			v_n := v_n + 1;
			IF leadcast_bounce('mailbox', p_mailbox, p_key,
			    rep->>'kind', rep->>'format', rep->>'from',
			    rep->>'subject', r, rep->'match', NULL, p_soft_limit,
			    p_soft_window) THEN
				v_out := 'review';
			END IF;
		END LOOP;
		IF v_n = 0 THEN
			PERFORM leadcast_bounce('mailbox', p_mailbox, p_key,
			    rep->>'kind', rep->>'format', rep->>'from',
			    rep->>'subject', '{"class": "unknown"}', NULL, NULL,
			    0, p_soft_window);
			v_out := 'review';
		END IF;
	END IF;
	UPDATE mailbox_messages SET outcome = v_out
	WHERE mailbox = p_mailbox AND uid = p_uid;
	RETURN v_out;
END $$;
