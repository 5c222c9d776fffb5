-- 001_core: the daemons sharing this database. Each leadcastd registers a
-- row at start and refreshes heartbeat_at; work-item leases (later
-- migrations) name the node that holds them, so a node whose heartbeat is
-- stale has its leases taken over.
CREATE TABLE nodes (
	id            bigserial PRIMARY KEY,
	hostname      text NOT NULL,
	pid           integer NOT NULL,
	version       text NOT NULL,
	started_at    timestamptz NOT NULL DEFAULT now(),
	heartbeat_at  timestamptz NOT NULL DEFAULT now(),
	stopped_at    timestamptz
);
CREATE INDEX nodes_alive ON nodes (heartbeat_at) WHERE stopped_at IS NULL;
