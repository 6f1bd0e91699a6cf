-- Wrong doctor binding codes per WeChat user and day, to slow down guessing.
CREATE TABLE binding_failures (
    openid TEXT NOT NULL,
    day    TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (openid, day)
);
