-- 016_fill: a started newsletter's audience becomes delivery rows in steps
-- (daemon/sender.c, "filling"), as an SMS campaign's becomes texts (008):
-- fill_cursor is the last lead id done, filled_at is set once all of the
-- audience is. fill_upto is the last lead id when a newsletter started
-- (leads created later are not in its audience); NULL for the campaigns
-- that are not filled by steps (drip steps, notifications, those started
-- before this migration). A newsletter is done only once filled.
ALTER TABLE campaigns ADD COLUMN fill_upto bigint;
