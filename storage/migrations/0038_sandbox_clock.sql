-- The sandbox clock's lead over the real time, kept with the data whose
-- times it stamped, so a restart does not take the clock back behind them
-- (on PostgreSQL as on SQLite). One row; only sandbox mode writes it.
CREATE TABLE sandbox_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ahead_us BIGINT NOT NULL
);
