-- Residents' control over unprompted reminders (提醒设置).
ALTER TABLE wechat_users ADD COLUMN seasonal_reminders BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE wechat_users ADD COLUMN personal_reminders BOOLEAN NOT NULL DEFAULT TRUE;
