-- The URL WeChat's permanent QR code for a doctor encodes (scene
-- doctor_ID): asked for once, since an account has a limited number of
-- permanent codes, and drawn by the server.
ALTER TABLE doctors ADD COLUMN qr_url TEXT NOT NULL DEFAULT '';
