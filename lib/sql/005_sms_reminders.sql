-- 005_sms_reminders: when a rep told of an offer by SMS was reminded that
-- its window is closing (sms.conf's reminder); at most once per offer.
ALTER TABLE offers ADD COLUMN reminded_at timestamptz;
CREATE INDEX offers_remind ON offers (deadline)
	WHERE status = 'pending' AND code IS NOT NULL AND reminded_at IS NULL;
