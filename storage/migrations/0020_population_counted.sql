-- When a community's population (and its priority_counts) was counted:
-- the signing rates' denominators are only as good as their date.
ALTER TABLE communities ADD COLUMN counted_on TEXT NOT NULL DEFAULT '';
