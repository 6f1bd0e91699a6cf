-- Segments that recur (a priority group, a community) mirrored into WeChat
-- user tags, so a tip to one goes in one mass-send call by tag. wechat_tags
-- names the tag WeChat made for each; wechat_tag_members is who jiayi has
-- told WeChat carries it, which a sync compares with who should.
CREATE TABLE wechat_tags (
    segment   TEXT PRIMARY KEY, -- group:CODE or community:ID
    tag_id    BIGINT NOT NULL UNIQUE,
    name      TEXT NOT NULL,
    synced_at {{timestamp}}
);

CREATE TABLE wechat_tag_members (
    tag_id BIGINT NOT NULL,
    openid TEXT NOT NULL,
    PRIMARY KEY (tag_id, openid)
);

ALTER TABLE broadcast_batches ADD COLUMN tag_id BIGINT; -- sent to a tag's members; NULL: to the batch's openid list
