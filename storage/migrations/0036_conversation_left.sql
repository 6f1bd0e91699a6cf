-- The conversation a user's last message left open ('' for none), written
-- with last_seen_at on every turn. The conversation itself lives in Redis;
-- when Redis has lost it (restarted empty), this is how the next message
-- knows there was one and can say so instead of not understanding.
ALTER TABLE wechat_users ADD COLUMN conversation TEXT NOT NULL DEFAULT '';
