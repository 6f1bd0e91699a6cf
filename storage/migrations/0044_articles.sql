-- Articles (图文) admins compose for broadcasts: a title, the body, an
-- optional source link and a cover image (base64, at most 2 MB before
-- encoding). cover_media_id is the permanent image WeChat made of the
-- cover at the first preview or send, reused by every draft after.
CREATE TABLE articles (
    id             {{id}},
    institution_id BIGINT,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    source_url     TEXT NOT NULL,
    cover          TEXT NOT NULL,
    cover_name     TEXT NOT NULL,
    cover_media_id TEXT NOT NULL DEFAULT '',
    created_by     TEXT NOT NULL,
    created_at     {{timestamp}} NOT NULL
);

ALTER TABLE broadcasts ADD COLUMN article_id BIGINT; -- NULL: a text
