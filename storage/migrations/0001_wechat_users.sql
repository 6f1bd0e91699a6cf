-- Everyone who has written to or followed the Official Account.
-- subscribed follows the newest event by WeChat's CreateTime (state_time,
-- unix seconds), so a late retry of an old message cannot undo an unfollow.
CREATE TABLE wechat_users (
    openid          TEXT PRIMARY KEY,
    subscribed      BOOLEAN NOT NULL,
    state_time      BIGINT NOT NULL,
    scene           TEXT NOT NULL DEFAULT '',
    first_seen_at   {{timestamp}} NOT NULL,
    last_seen_at    {{timestamp}} NOT NULL,
    unsubscribed_at {{timestamp}}
);

CREATE INDEX wechat_users_subscribed ON wechat_users (subscribed);
